//! `ObjectMeta` checks, worded as apimachinery's `ValidateObjectMeta` and `util/validation` word them.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrorType};
use super::names::{dns1123_label, dns1123_subdomain, label_value, qualified_name};

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

/// `TotalAnnotationSizeLimitB`.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

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
