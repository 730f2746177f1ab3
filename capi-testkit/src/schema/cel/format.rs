//! Kubernetes' format library (`k8s.io/apiserver/pkg/cel/library/format.go`):
//! `format.<name>()` and `format.named(name)`, and on a format `validate(s)`, which is
//! `optional.none()` for a valid string and otherwise the list of errors, worded as
//! apimachinery's validation functions word them.

use std::sync::Arc;

use cel::Env;
use cel::common::types::{CelOptional, STRING_TYPE, Type};

use super::super::formats::Format as OpenApiFormat;
use super::support::{Args, Ret, arg, opaque_val, owned, ret, str_arg};

/// `kubernetes.NamedFormat`.
pub(super) static FORMAT_TYPE: Type = Type::new_unspecified_type("kubernetes.NamedFormat");

/// The names `format.named` knows, which are also the `format.<name>()` functions.
pub(crate) const NAMES: &[&str] = &[
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

/// One of the named formats (by its index in [`NAMES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedFormat(pub(crate) &'static str);

opaque_val!(NamedFormat, FORMAT_TYPE);

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

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
fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 63, &mut errs);
    if !label_ok(s) {
        if subdomain_ok(s) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(DNS1123_LABEL_MSG.to_owned());
        }
    }
    errs
}

/// `validation.IsDNS1123Subdomain`.
fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 253, &mut errs);
    if !subdomain_ok(s) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// `validation.IsDNS1035Label`.
fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 63, &mut errs);
    if !(label_ok(s) && s.starts_with(|c: char| c.is_ascii_lowercase())) {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// apimachinery's `maskTrailingDash`, as written (it drops two characters for one `a`).
fn mask_trailing_dash(s: &str) -> String {
    if s.len() > 1 && s.ends_with('-') {
        let cut = s.len() - 2;
        if s.is_char_boundary(cut) {
            return format!("{}a", &s[..cut]);
        }
    }
    s.to_owned()
}

fn qualified_name_part_ok(s: &str) -> bool {
    let ok_end = |c: char| c.is_ascii_alphanumeric();
    s.starts_with(ok_end)
        && s.ends_with(ok_end)
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `validation.IsQualifiedName`.
fn qualified_name(s: &str) -> Vec<String> {
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
fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    max_len(s, 63, &mut errs);
    if !(s.is_empty() || qualified_name_part_ok(s)) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

fn openapi(format: &str, s: &str, msg: &str) -> Vec<String> {
    match OpenApiFormat::supported(format) {
        Some(f) if f.accepts(s) => Vec::new(),
        _ => vec![msg.to_owned()],
    }
}

impl NamedFormat {
    /// The format's `ValidateFunc`.
    pub(crate) fn validate(&self, s: &str) -> Vec<String> {
        match self.0 {
            "dns1123Label" => dns1123_label(s),
            "dns1123Subdomain" => dns1123_subdomain(s),
            "dns1035Label" => dns1035_label(s),
            "qualifiedName" => qualified_name(s),
            "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(s)),
            "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(s)),
            "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(s)),
            "labelValue" => label_value(s),
            "uri" => match super::url::parse_request_uri(s) {
                Ok(_) => Vec::new(),
                Err(e) => vec![e],
            },
            "uuid" => openapi("uuid", s, "does not match the UUID format"),
            "byte" => openapi("byte", s, "invalid base64"),
            "date" => openapi("date", s, "invalid date"),
            "datetime" => openapi("datetime", s, "invalid datetime"),
            _ => Vec::new(),
        }
    }
}

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(FORMAT_TYPE.to_owned())?;
    for name in NAMES {
        let f = format!("format.{name}");
        env.add_overload(&f, &f, vec![], constant(name))?;
    }
    env.add_overload("format.named", "format-named", vec![STRING_TYPE], named)?;
    env.add_member_overload(
        "validate",
        "format-validate",
        FORMAT_TYPE.to_owned(),
        vec![STRING_TYPE],
        validate,
    )?;
    Ok(())
}

/// The zero-argument function of one named format. Overloads are plain `fn`s, so each name has
/// its own.
fn constant(name: &str) -> super::support::Func {
    macro_rules! constants {
        ($($n:literal),*) => {
            match name {
                $($n => |_| owned(NamedFormat($n)),)*
                _ => |_| owned(NamedFormat("")),
            }
        };
    }
    constants!(
        "dns1123Label",
        "dns1123Subdomain",
        "dns1035Label",
        "qualifiedName",
        "dns1123LabelPrefix",
        "dns1123SubdomainPrefix",
        "dns1035LabelPrefix",
        "labelValue",
        "uri",
        "uuid",
        "byte",
        "date",
        "datetime"
    )
}

fn named<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("format.named", &args, 0)?;
    let opt = match NAMES.iter().find(|n| **n == s) {
        Some(n) => CelOptional::of(Box::new(NamedFormat(n))),
        None => CelOptional::none(),
    };
    owned_optional(opt)
}

fn owned_optional<'b, 'v>(opt: CelOptional<'v>) -> Ret<'b, 'v> {
    Ok(cel::common::value::CowVal::owned(opt))
}

fn validate<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let f = arg::<NamedFormat>("validate", &args, 0)?;
    let s = str_arg("validate", &args, 1)?;
    let errs = f.validate(s);
    if errs.is_empty() {
        return owned_optional(CelOptional::none());
    }
    let list = cel::Value::List(Arc::new(
        errs.into_iter()
            .map(|e| cel::Value::String(Arc::new(e)))
            .collect(),
    ));
    let boxed = ret(list)?.into_owned();
    owned_optional(CelOptional::of(boxed))
}
