//! `ObjectMeta` checks, worded as apimachinery's `ValidateObjectMeta` and `util/validation` word them.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrorType};

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn dns1123_label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && l.starts_with(|c: char| c.is_ascii_alphanumeric())
        && l.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `validation.IsDNS1123Subdomain`: the reasons `name` is not a DNS-1123 subdomain (none if it is).
///
/// ```
/// assert!(capi_testkit::schema::dns1123_subdomain("example.com").is_empty());
/// assert_eq!(capi_testkit::schema::dns1123_subdomain("Example").len(), 1);
/// ```
pub fn dns1123_subdomain(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    if !name.split('.').all(dns1123_label_ok) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// `validation.IsDNS1123Label`.
fn dns1123_label(name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !dns1123_label_ok(name) {
        errs.push(DNS1123_LABEL_MSG.to_owned());
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
    if name.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !(dns1123_label_ok(name) && name.starts_with(|c: char| c.is_ascii_lowercase())) {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// `path.IsValidPathSegmentName`, the name rule of embedded resources.
fn path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

fn check_names(
    meta: &Value,
    field: &str,
    namespaced: bool,
    name_rule: fn(&str) -> Vec<String>,
    out: &mut Vec<FieldError>,
) {
    if let Some(name) = meta["name"].as_str().filter(|n| !n.is_empty()) {
        for msg in name_rule(name) {
            out.push(FieldError::new(
                format!("{field}.name"),
                FieldErrorType::Invalid,
                Value::from(name),
                msg,
            ));
        }
    }
    if namespaced && let Some(ns) = meta["namespace"].as_str().filter(|n| !n.is_empty()) {
        for msg in dns1123_label(ns) {
            out.push(FieldError::new(
                format!("{field}.namespace"),
                FieldErrorType::Invalid,
                Value::from(ns),
                msg,
            ));
        }
    }
}

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// `TotalAnnotationSizeLimitB`.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn qualified_name_part_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `validation.IsQualifiedName`: label keys and (lower-cased) annotation keys.
fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
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
fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !(value.is_empty() || qualified_name_part_ok(value)) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

/// Validates `metadata` as kube-apiserver's `ValidateObjectMetaAccessor` does for every object,
/// in its order: `generateName` (as a name prefix) and `name` must be DNS-1123 subdomains, label keys qualified names and label values valid label values,
/// annotation keys qualified names (case aside) with all annotations under 256 KiB.
///
/// Not checked here: `ownerReferences`, `finalizers` and `managedFields`.
///
/// ```
/// use capi_testkit::schema::validate_object_meta;
/// use serde_json::json;
///
/// let meta = json!({"name": "ok", "labels": {"bad key!": "v"}});
/// let errors = validate_object_meta(&meta, true);
/// assert_eq!(errors[0].field, "metadata.labels");
/// ```
pub fn validate_object_meta(meta: &Value, _namespaced: bool) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(prefix) = meta["generateName"].as_str().filter(|g| !g.is_empty()) {
        // `NameIsDNSSubdomain(name, prefix=true)` masks a trailing dash.
        let masked = match prefix.strip_suffix('-') {
            Some(rest) => format!("{rest}a"),
            None => prefix.to_owned(),
        };
        for msg in dns1123_subdomain(&masked) {
            out.push(FieldError::new(
                "metadata.generateName",
                FieldErrorType::Invalid,
                Value::from(prefix),
                msg,
            ));
        }
    }
    // The namespace comes from the URL, checked (and admitted) before this.
    check_names(meta, "metadata", false, dns1123_subdomain, &mut out);
    for (k, v) in meta["labels"].as_object().into_iter().flatten() {
        for msg in qualified_name(k) {
            out.push(FieldError::new(
                "metadata.labels",
                FieldErrorType::Invalid,
                Value::from(k.as_str()),
                msg,
            ));
        }
        let v = v.as_str().unwrap_or_default();
        for msg in label_value(v) {
            out.push(FieldError::new(
                "metadata.labels",
                FieldErrorType::Invalid,
                Value::from(v),
                msg,
            ));
        }
    }
    let annotations = meta["annotations"].as_object();
    let mut size = 0;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in qualified_name(&k.to_lowercase()) {
            out.push(FieldError::new(
                "metadata.annotations",
                FieldErrorType::Invalid,
                Value::from(k.as_str()),
                msg,
            ));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    if size > ANNOTATIONS_SIZE_LIMIT {
        out.push(FieldError::too_long(
            "metadata.annotations",
            ANNOTATIONS_SIZE_LIMIT as i64,
        ));
    }
    out
}

/// The `metadata` checks of an embedded resource (`x-kubernetes-embedded-resource`): name as a
/// path segment, namespace as a DNS-1123 label.
pub(super) fn validate_embedded_meta(meta: &Value, field: &str, out: &mut Vec<FieldError>) {
    let namespaced = meta["namespace"].as_str().is_some_and(|n| !n.is_empty());
    check_names(meta, field, namespaced, path_segment_name, out);
}
