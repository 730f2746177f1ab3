//! Kubernetes' format library (`k8s.io/apiserver/pkg/cel/library/format.go`):
//! `format.<name>()` and `format.named(name)`, and on a format `validate(s)`, which is
//! `optional.none()` for a valid string and otherwise the list of errors, worded as
//! apimachinery's validation functions word them.

use std::sync::Arc;

use cel::Env;
use cel::common::types::{CelOptional, STRING_TYPE, Type};

use super::super::formats::Format as OpenApiFormat;
use super::super::names::{
    dns1035_label, dns1123_label, dns1123_subdomain, label_value, qualified_name,
};
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
