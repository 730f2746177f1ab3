//! apimachinery's name and label checks (`k8s.io/apimachinery/pkg/util/validation`), worded as
//! it words them: object metadata, CRD names and CEL's format library all use these.

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn subdomain_ok(s: &str) -> bool {
    s.split('.').all(label_ok)
}

fn max_len(s: &str, n: usize, errs: &mut Vec<String>) {
    if s.len() > n {
        errs.push(format!("must be no more than {n} characters"));
    }
}

/// `validation.IsDNS1123Label`.
pub(crate) fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 63, &mut errs);
    if !label_ok(s) {
        if subdomain_ok(s) {
            // A subdomain that is no label: its length was checked, so it is the dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(DNS1123_LABEL_MSG.to_owned());
        }
    }
    errs
}

/// `validation.IsDNS1123Subdomain`: the reasons `name` is not a DNS-1123 subdomain (none if it is).
///
/// ```
/// assert!(capi_testkit::schema::dns1123_subdomain("example.com").is_empty());
/// assert_eq!(capi_testkit::schema::dns1123_subdomain("Example").len(), 1);
/// ```
pub fn dns1123_subdomain(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(name, 253, &mut errs);
    if !subdomain_ok(name) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// `validation.IsDNS1035Label`: the reasons `name` is not a DNS-1035 label (none if it is).
///
/// ```
/// assert!(capi_testkit::schema::dns1035_label("v1beta2").is_empty());
/// assert_eq!(capi_testkit::schema::dns1035_label("1v").len(), 1);
/// ```
pub fn dns1035_label(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(name, 63, &mut errs);
    if !(label_ok(name) && name.starts_with(|c: char| c.is_ascii_lowercase())) {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn qualified_name_part_ok(s: &str) -> bool {
    let ok_end = |c: char| c.is_ascii_alphanumeric();
    s.starts_with(ok_end)
        && s.ends_with(ok_end)
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `validation.IsQualifiedName`: label keys and (lower-cased) annotation keys.
pub(crate) fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_owned());
    }
    if !qualified_name_part_ok(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

/// `validation.IsValidLabelValue`.
pub(crate) fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 63, &mut errs);
    if !(s.is_empty() || qualified_name_part_ok(s)) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subdomain_is_no_label_for_its_dots() {
        assert_eq!(dns1123_label("a.b"), ["must not contain dots"]);
        assert_eq!(dns1123_label("A"), [DNS1123_LABEL_MSG]);
        assert!(dns1123_label(&"a".repeat(63)).is_empty());
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert!(qualified_name("example.com/My_Name").is_empty());
        assert_eq!(qualified_name("/x"), ["prefix part must be non-empty"]);
        assert!(label_value("").is_empty());
    }
}
