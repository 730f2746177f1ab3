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

/// Validates `metadata` as kube-apiserver's `ValidateObjectMetaAccessor` does for every object
/// on create (apimachinery's `api/validation/objectmeta.go`), in its order:
///
/// 1. `generateName` (as a name prefix) and `name` must be DNS-1123 subdomains;
/// 2. label keys must be qualified names and label values valid label values;
/// 3. annotation keys must be qualified names (case aside), all annotations under 256 KiB;
/// 4. `ownerReferences` (`ValidateOwnerReferences`): each needs an `apiVersion` with a version,
///    a `kind`, a `name` and a `uid`; a core `v1` `Event` can't be an owner; at most one
///    reference may have `controller: true`;
/// 5. `finalizers` (`ValidateFinalizers`): each must be a qualified name, and `orphan` and
///    `foregroundDeletion` can't both be set (duplicates are allowed);
/// 6. `managedFields` (`ValidateManagedFields`): operation `Apply` or `Update`, fieldsType
///    `FieldsV1`, manager at most 128 printable characters, subresource at most 256 bytes.
///    Only entries the field manager keeps are checked: when any entry would not decode
///    (an unknown operation or fieldsType), upstream replaces the request's managedFields with
///    the stored ones, so such entries never reach validation.
///
/// Paths are upstream's: `metadata.ownerReferences.uid`, `metadata.finalizers` (not indexed),
/// `metadata.managedFields[0].manager` (indexed). Malformed shapes are read as
/// `unstructured.Unstructured` reads them (a non-list, or a list with a non-object item, is no
/// owner references; a non-string field is empty).
///
/// Not checked here: the namespace (checked against the URL before this), rules of the core
/// types ([`validate_kube_finalizer_names`]), update-only rules ([`validate_object_meta_update`];
/// "no new finalizers" is the store's), warnings ([`finalizer_warnings`],
/// [`dedup_owner_references`]), and where owners live (the garbage collector's concern).
///
/// ```
/// use capi_testkit::schema::validate_object_meta;
/// use serde_json::json;
///
/// let meta = json!({"name": "ok", "labels": {"bad key!": "v"}});
/// let errors = validate_object_meta(&meta, true);
/// assert_eq!(errors[0].field, "metadata.labels");
///
/// let meta = json!({"name": "ok", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o"}]});
/// let errors = validate_object_meta(&meta, true);
/// assert_eq!(errors[0].field, "metadata.ownerReferences.uid");
/// assert_eq!(errors[0].message(), "Invalid value: \"\": must not be empty");
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
    validate_owner_references(&owner_references(meta), &mut out);
    validate_finalizers(&finalizers(meta), &mut out);
    validate_managed_fields(meta, &mut out);
    out
}

/// The `metadata` checks of an embedded resource (`x-kubernetes-embedded-resource`): name as a
/// path segment, namespace as a DNS-1123 label.
pub(super) fn validate_embedded_meta(meta: &Value, field: &str, out: &mut Vec<FieldError>) {
    let namespaced = meta["namespace"].as_str().is_some_and(|n| !n.is_empty());
    check_names(meta, field, namespaced, path_segment_name, out);
}

/// An `Invalid` error whose bad value is printed as apimachinery prints a struct or slice: as its
/// JSON (`field.Error.ErrorBody` marshals complex values).
fn invalid_json(field: &str, rendered: String, detail: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        kind: FieldErrorType::Invalid,
        bad_value: None,
        detail: format!("{rendered}: {detail}"),
    }
}

/// A JSON string as Go's `encoding/json` writes it (`<`, `>`, `&`, U+2028 and U+2029 escaped).
fn go_json_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A `metav1.OwnerReference` as `Unstructured.GetOwnerReferences` reads it.
#[derive(Debug, Clone, PartialEq)]
struct OwnerRef {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    controller: Option<bool>,
    block_owner_deletion: Option<bool>,
}

impl OwnerRef {
    fn read(v: &serde_json::Map<String, Value>) -> Self {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            api_version: s("apiVersion"),
            kind: s("kind"),
            name: s("name"),
            uid: s("uid"),
            controller: v.get("controller").and_then(Value::as_bool),
            block_owner_deletion: v.get("blockOwnerDeletion").and_then(Value::as_bool),
        }
    }

    /// Its JSON, fields in the Go struct's order.
    fn json(&self) -> String {
        let mut out = format!(
            "{{\"apiVersion\":{},\"kind\":{},\"name\":{},\"uid\":{}",
            go_json_string(&self.api_version),
            go_json_string(&self.kind),
            go_json_string(&self.name),
            go_json_string(&self.uid)
        );
        if let Some(c) = self.controller {
            out.push_str(&format!(",\"controller\":{c}"));
        }
        if let Some(b) = self.block_owner_deletion {
            out.push_str(&format!(",\"blockOwnerDeletion\":{b}"));
        }
        out.push('}');
        out
    }
}

/// `metadata.ownerReferences`, or none when it is not a list of objects.
fn owner_references(meta: &Value) -> Vec<OwnerRef> {
    let Some(items) = meta.get("ownerReferences").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|i| i.as_object().map(OwnerRef::read))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// `metadata.finalizers`, or none when it is not a list of strings (`NestedStringSlice`).
fn finalizers(meta: &Value) -> Vec<String> {
    let Some(items) = meta.get("finalizers").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|i| i.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// `schema.ParseGroupVersion(apiVersion)`: `(group, version)`, empty on error.
fn group_version(api_version: &str) -> (&str, &str) {
    if api_version.is_empty() || api_version == "/" {
        return ("", "");
    }
    match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    }
}

/// `ValidateOwnerReferences`.
fn validate_owner_references(refs: &[OwnerRef], out: &mut Vec<FieldError>) {
    const FIELD: &str = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in refs {
        let (group, version) = group_version(&r.api_version);
        let empty = |key: &str, value: &str, detail: &str| {
            FieldError::new(
                format!("{FIELD}.{key}"),
                FieldErrorType::Invalid,
                Value::from(value),
                detail,
            )
        };
        if version.is_empty() {
            out.push(empty(
                "apiVersion",
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            out.push(empty("kind", &r.kind, "must not be empty"));
        }
        if r.name.is_empty() {
            out.push(empty("name", &r.name, "must not be empty"));
        }
        if r.uid.is_empty() {
            out.push(empty("uid", &r.uid, "must not be empty"));
        }
        // `BannedOwners`: only the core v1 Event.
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            out.push(invalid_json(
                FIELD,
                r.json(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => {
                    let list: Vec<String> = refs.iter().map(OwnerRef::json).collect();
                    out.push(invalid_json(
                        FIELD,
                        format!("[{}]", list.join(",")),
                        &format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                        ),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
}

/// `ValidateFinalizers`.
fn validate_finalizers(finalizers: &[String], out: &mut Vec<FieldError>) {
    const FIELD: &str = "metadata.finalizers";
    for f in finalizers {
        for msg in qualified_name(f) {
            out.push(FieldError::new(
                FIELD,
                FieldErrorType::Invalid,
                Value::from(f.as_str()),
                msg,
            ));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        let list: Vec<String> = finalizers.iter().map(|f| go_json_string(f)).collect();
        out.push(invalid_json(
            FIELD,
            format!("[{}]", list.join(",")),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;
/// `MaxSubresourceNameLength`.
const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// Whether Go's `unicode.IsPrint` holds (as `strconv.Quote`, which escapes exactly the others).
fn is_print(c: char) -> bool {
    matches!(c, '"' | '\\') || crate::gofmt::quote(&c.to_string()) == format!("\"{c}\"")
}

/// `ValidateFieldManager`: at most 128 bytes, all printable.
fn validate_field_manager(manager: &str, field: &str, out: &mut Vec<FieldError>) {
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        out.push(FieldError::too_long(field, FIELD_MANAGER_MAX_LENGTH as i64));
    }
    for (i, c) in manager.char_indices() {
        if !is_print(c) {
            out.push(FieldError::new(
                field,
                FieldErrorType::Invalid,
                Value::from(manager),
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
}

/// `ValidateManagedFields` on the entries the field manager keeps from the request (all of
/// them, or none when one would not decode and the stored ones are used instead).
fn validate_managed_fields(meta: &Value, out: &mut Vec<FieldError>) {
    let Some(entries) = meta.get("managedFields").and_then(Value::as_array) else {
        return;
    };
    let decodes = |e: &Value| {
        matches!(e["operation"].as_str(), Some("Apply" | "Update"))
            && e["fieldsType"].as_str() == Some("FieldsV1")
    };
    if !entries.iter().all(decodes) {
        return;
    }
    for (i, e) in entries.iter().enumerate() {
        let field = |k: &str| format!("metadata.managedFields[{i}].{k}");
        let operation = e["operation"].as_str().unwrap_or_default();
        if !matches!(operation, "Apply" | "Update") {
            out.push(FieldError::new(
                field("operation"),
                FieldErrorType::Invalid,
                Value::from(operation),
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = e["fieldsType"].as_str().unwrap_or_default();
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            out.push(FieldError::new(
                field("fieldsType"),
                FieldErrorType::Invalid,
                Value::from(fields_type),
                "must be `FieldsV1`",
            ));
        }
        validate_field_manager(
            e["manager"].as_str().unwrap_or_default(),
            &field("manager"),
            out,
        );
        if e["subresource"].as_str().map_or(0, str::len) > MAX_SUBRESOURCE_NAME_LENGTH {
            out.push(FieldError::too_long(
                field("subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH as i64,
            ));
        }
    }
}

/// The finalizers that need no domain (`helper.IsStandardFinalizerName`).
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

fn is_standard_or_qualified(finalizer: &str) -> bool {
    finalizer.contains('/') || STANDARD_FINALIZERS.contains(&finalizer)
}

/// The finalizer rule the core types (`pkg/apis/core/validation.ValidateObjectMeta`, used by
/// ConfigMaps, Secrets, Namespaces, Leases, Events, RBAC, ...) add after
/// [`validate_object_meta`]: a finalizer without a `/` must be a standard one (`kubernetes`,
/// `orphan`, `foregroundDeletion`). Custom resources only get a warning for this
/// ([`finalizer_warnings`]).
///
/// ```
/// use capi_testkit::schema::validate_kube_finalizer_names;
/// use serde_json::json;
///
/// let errors = validate_kube_finalizer_names(&json!({"finalizers": ["example.com/f", "mine"]}));
/// assert_eq!(errors[0].field, "metadata.finalizers[1]");
/// assert_eq!(
///     errors[0].message(),
///     "Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
/// );
/// ```
pub fn validate_kube_finalizer_names(meta: &Value) -> Vec<FieldError> {
    finalizers(meta)
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_standard_or_qualified(f))
        .map(|(i, f)| {
            FieldError::new(
                format!("metadata.finalizers[{i}]"),
                FieldErrorType::Invalid,
                Value::from(f.as_str()),
                "name is neither a standard finalizer name nor is it fully qualified",
            )
        })
        .collect()
}

/// The warnings a custom resource write gets for the finalizers it adds (all of them on create),
/// sorted, as apiextensions-apiserver's `WarningsOnCreate`/`WarningsOnUpdate`: a finalizer
/// without a `/` that is not a standard one should be domain-qualified.
///
/// ```
/// use capi_testkit::schema::finalizer_warnings;
/// use serde_json::json;
///
/// let old = json!({"finalizers": ["old"]});
/// let new = json!({"finalizers": ["old", "example.com/ok", "mine"]});
/// assert_eq!(
///     finalizer_warnings(&new, Some(&old)),
///     ["metadata.finalizers: \"mine\": prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers"]
/// );
/// ```
pub fn finalizer_warnings(meta: &Value, old: Option<&Value>) -> Vec<String> {
    let before = old.map(finalizers).unwrap_or_default();
    let mut added: Vec<String> = finalizers(meta)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    added.sort();
    added.dedup();
    let mut out = Vec::new();
    for f in &added {
        let quoted = crate::gofmt::quote(f);
        for msg in qualified_name(f) {
            out.push(format!("metadata.finalizers: {quoted}: {msg}"));
        }
        if !is_standard_or_qualified(f) {
            out.push(format!(
                "metadata.finalizers: {quoted}: prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers"
            ));
        }
    }
    out
}

/// `metav1.Time` of a `metadata` timestamp, in its JSON form (RFC 3339, UTC, seconds), or
/// `None` when absent or unparsable (`Unstructured` then reads no time).
fn timestamp_json(v: &Value) -> Option<String> {
    let t: k8s_openapi::jiff::Timestamp = v.as_str().filter(|s| !s.is_empty())?.parse().ok()?;
    Some(format!("\"{}\"", t.strftime("%Y-%m-%dT%H:%M:%SZ")))
}

/// The update-only checks of `ValidateObjectMetaAccessorUpdate` that a client can trip, after
/// `rest.BeforeUpdate` restored what it restores: a new `name` or `uid` (an absent uid is
/// the stored one), a `deletionTimestamp` on an object not being deleted (an existing one is
/// kept), or a `deletionGracePeriodSeconds` other than the stored one (an absent one is kept).
/// Each is `Invalid: field is immutable`.
///
/// kube-apiserver runs this twice per update (once for every kind, once in the kind's
/// strategy), so it reports each error twice. Not here: "no new finalizers can be added if the
/// object is being deleted" (the store checks it), `resourceVersion` (the update handler) and
/// `generation` (never taken from the client).
///
/// ```
/// use capi_testkit::schema::validate_object_meta_update;
/// use serde_json::json;
///
/// let old = json!({"name": "a", "uid": "1"});
/// let new = json!({"name": "a", "uid": "2"});
/// let errors = validate_object_meta_update(&new, &old);
/// assert_eq!(errors[0].field, "metadata.uid");
/// assert_eq!(errors[0].message(), "Invalid value: \"2\": field is immutable");
/// ```
pub fn validate_object_meta_update(meta: &Value, old: &Value) -> Vec<FieldError> {
    const IMMUTABLE: &str = "field is immutable";
    let mut out = Vec::new();
    for key in ["name", "uid"] {
        if let Some(new) = meta[key].as_str().filter(|v| !v.is_empty())
            && Some(new) != old[key].as_str()
        {
            out.push(FieldError::new(
                format!("metadata.{key}"),
                FieldErrorType::Invalid,
                Value::from(new),
                IMMUTABLE,
            ));
        }
    }
    if timestamp_json(&old["deletionTimestamp"]).is_none()
        && let Some(new) = timestamp_json(&meta["deletionTimestamp"])
    {
        out.push(invalid_json("metadata.deletionTimestamp", new, IMMUTABLE));
    }
    if let Some(new) = meta["deletionGracePeriodSeconds"].as_i64()
        && Some(new) != old["deletionGracePeriodSeconds"].as_i64()
    {
        out.push(FieldError::new(
            "metadata.deletionGracePeriodSeconds",
            FieldErrorType::Invalid,
            Value::from(new),
            IMMUTABLE,
        ));
    }
    out
}

/// Drops the owner references of `obj` that repeat an earlier one exactly, as kube-apiserver's
/// handlers do before validating a write, returning the warning they send then (`None` when
/// there were none). `after_admission` picks the wording of the dedup after mutating admission,
/// the only one a PATCH gets.
///
/// ```
/// use capi_testkit::schema::dedup_owner_references;
/// use serde_json::json;
///
/// let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u1"});
/// let mut obj = json!({"metadata": {"name": "a", "ownerReferences": [owner, owner]}});
/// let warning = dedup_owner_references(&mut obj, false);
/// assert_eq!(obj["metadata"]["ownerReferences"].as_array().map(Vec::len), Some(1));
/// assert!(warning.is_some_and(|w| w.ends_with("duplicate UID(s) observed: u1")));
/// ```
pub fn dedup_owner_references(obj: &mut Value, after_admission: bool) -> Option<String> {
    let items = obj
        .get_mut("metadata")?
        .get_mut("ownerReferences")?
        .as_array_mut()?;
    let parsed: Vec<OwnerRef> = items
        .iter()
        .map(|i| i.as_object().map(OwnerRef::read))
        .collect::<Option<_>>()?;
    let mut kept: Vec<&OwnerRef> = Vec::new();
    let mut keep = Vec::with_capacity(parsed.len());
    let mut duplicates = Vec::new();
    for r in &parsed {
        if kept.contains(&r) {
            duplicates.push(r.uid.clone());
            keep.push(false);
        } else {
            kept.push(r);
            keep.push(true);
        }
    }
    if duplicates.is_empty() {
        return None;
    }
    let mut flags = keep.into_iter();
    items.retain(|_| flags.next().unwrap_or(true));
    let after = if after_admission {
        " after mutating admission happens"
    } else {
        ""
    };
    Some(format!(
        ".metadata.ownerReferences contains duplicate entries{after}; API server dedups owner references in 1.20+, and may reject such requests as early as 1.24; please fix your requests; duplicate UID(s) observed: {}",
        duplicates.join(", ")
    ))
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
