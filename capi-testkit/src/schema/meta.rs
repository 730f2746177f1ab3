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

/// `validation.IsDNS1123Subdomain`.
fn dns1123_subdomain(name: &str) -> Vec<String> {
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

/// `validation.IsDNS1035Label`.
pub(super) fn dns1035_label(name: &str) -> Vec<String> {
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

/// Validates `metadata` as kube-apiserver does for every object; implemented: the name must be
/// a DNS-1123 subdomain (labels, annotations and the rest are not checked yet).
pub fn validate_object_meta(meta: &Value, _namespaced: bool) -> Vec<FieldError> {
    let mut out = Vec::new();
    check_names(meta, "metadata", false, dns1123_subdomain, &mut out);
    out
}

/// The `metadata` checks of an embedded resource (`x-kubernetes-embedded-resource`): name as a
/// path segment, namespace as a DNS-1123 label.
pub(super) fn validate_embedded_meta(meta: &Value, field: &str, out: &mut Vec<FieldError>) {
    let namespaced = meta["namespace"].as_str().is_some_and(|n| !n.is_empty());
    check_names(meta, field, namespaced, path_segment_name, out);
}
