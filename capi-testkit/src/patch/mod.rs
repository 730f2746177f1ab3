//! Patches as kube-apiserver applies them: JSON merge, JSON patch, strategic merge (built-in
//! kinds), server-side apply, and the managedFields bookkeeping writes do.
//!
//! Known simplifications (see the issue notes): strategic merge patches merge like JSON merge
//! patches (lists replaced whole; `$patch` directives not interpreted), and server-side apply
//! merges the applied configuration without field-ownership conflicts; managedFields record
//! which fields each manager last wrote, in the FieldsV1 encoding, treating lists as atomic.
//!
//! ```
//! use capi_testkit::patch::{json_patch, merge_patch};
//! use serde_json::json;
//!
//! let obj = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}});
//! assert_eq!(merge_patch(&obj, &json!({"spec": {"b": null}})), json!({"metadata": {"name": "x"}, "spec": {"a": 1}}));
//! // kube-runtime's finalizer helper relies on this: `test` of null on a missing path passes.
//! let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
//!                  {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]);
//! assert_eq!(json_patch(&obj, &ops).unwrap()["metadata"]["finalizers"], json!(["f"]));
//! ```

use serde_json::{Map, Value, json};

/// The four patch types, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// How a list field merges (`x-kubernetes-list-type` / `patchStrategy` + `patchMergeKey`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListSemantics {
    /// Replaced as a whole (the CRD default).
    #[default]
    Atomic,
    /// A set of scalars.
    Set,
    /// A list of objects keyed by these fields.
    Map(Vec<String>),
}

/// What the patch engines need to know about an object's schema.
pub trait FieldSchema: Send + Sync {
    /// The merge semantics of the list at `path` (field names from the object root, list
    /// positions omitted).
    fn list_semantics(&self, path: &[&str]) -> ListSemantics;
    /// Whether the map (object) at `path` is atomic (`x-kubernetes-map-type: atomic`).
    fn map_is_atomic(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Why a patch could not be applied. Each variant maps to the Status kube-apiserver answers.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not what its content type promises (400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch `test` failed or an operation's path is invalid (422 Invalid).
    #[error("{0}")]
    Failed(String),
    /// Server-side apply found fields owned by other managers (409 Conflict).
    #[error("Apply failed with {} conflict(s)", conflicts.len())]
    ApplyConflict {
        /// `(manager, field path)` pairs, as kube-apiserver lists them.
        conflicts: Vec<(String, String)>,
    },
}

/// Applies a JSON merge patch (RFC 7386).
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

fn pointer_exists(v: &Value, path: &str) -> bool {
    v.pointer(path).is_some()
}

/// Applies a JSON patch (RFC 6902). As kube-apiserver (evanphx/json-patch), a `test` of `null`
/// against a missing path passes.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::Malformed(
            "json patch must be a list of operations".into(),
        ));
    };
    if ops.len() > 10_000 {
        return Err(PatchError::Malformed(format!(
            "the allowed maximum operations in a JSON patch is 10000, got {}",
            ops.len()
        )));
    }
    let kept: Vec<Value> = ops
        .iter()
        .filter(|op| {
            !(op["op"] == "test"
                && op["value"].is_null()
                && op["path"]
                    .as_str()
                    .is_some_and(|p| !pointer_exists(target, p)))
        })
        .cloned()
        .collect();
    let ops: json_patch::Patch = serde_json::from_value(Value::Array(kept))
        .map_err(|e| PatchError::Malformed(e.to_string()))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
    Ok(out)
}

/// Applies a strategic merge patch to a built-in kind (merged like a JSON merge patch; the
/// `$patch` directives are dropped rather than interpreted).
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    _schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !k.starts_with('$'))
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "strategic merge patch must be an object".into(),
        ));
    }
    Ok(merge_patch(target, &strip(patch)))
}

/// Who writes, for managedFields bookkeeping.
#[derive(Debug, Clone)]
pub struct FieldManager {
    /// The `fieldManager` (defaulted from the User-Agent as upstream when absent).
    pub manager: String,
    /// `apiVersion` of the request.
    pub api_version: String,
    /// `""` for the main resource, `"status"` or `"scale"`.
    pub subresource: String,
    /// The request time (RFC 3339, seconds).
    pub time: String,
}

/// The FieldsV1 set of the leaves where `new` differs from `old` (all of `new` when `old` is
/// `None`); lists count as atomic leaves. Server-owned metadata is left out.
fn changed_fields(old: Option<&Value>, new: &Value, top: bool) -> Option<Value> {
    match (old, new) {
        (Some(o), n) if o == n => None,
        (o, Value::Object(m)) => {
            let mut out = Map::new();
            for (k, v) in m {
                if top && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if k == "managedFields" || (top && k == "metadata") {
                    let old_meta = o.and_then(|o| o.get(k));
                    if k == "metadata"
                        && let Some(f) = changed_meta(old_meta, v)
                    {
                        out.insert("f:metadata".into(), f);
                    }
                    continue;
                }
                if let Some(f) = changed_fields(o.and_then(|o| o.get(k)), v, false) {
                    out.insert(format!("f:{k}"), f);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => Some(json!({})),
    }
}

fn changed_meta(old: Option<&Value>, new: &Value) -> Option<Value> {
    let mut out = Map::new();
    for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
        if let Some(v) = new.get(k)
            && let Some(f) = changed_fields(old.and_then(|o| o.get(k)), v, false)
        {
            out.insert(format!("f:{k}"), f);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn merge_fields(a: &mut Value, b: &Value) {
    if let (Value::Object(am), Value::Object(bm)) = (a, b) {
        for (k, v) in bm {
            merge_fields(am.entry(k.clone()).or_insert_with(|| json!({})), v);
        }
    }
}

fn record(
    old: Option<&Value>,
    new: &mut Value,
    who: &FieldManager,
    operation: &str,
    fields: Option<Value>,
) {
    let Some(fields) = fields else {
        // Nothing this manager wrote changed: keep the entries (and the no-op a no-op).
        if let Some(mf) = old.and_then(|o| o["metadata"].get("managedFields")) {
            new["metadata"]["managedFields"] = mf.clone();
        }
        return;
    };
    let mut entries: Vec<Value> = old
        .and_then(|o| o["metadata"]["managedFields"].as_array().cloned())
        .unwrap_or_default();
    let api_version = if who.api_version.is_empty() {
        new["apiVersion"].as_str().unwrap_or_default().to_owned()
    } else {
        who.api_version.clone()
    };
    let same = |e: &Value| {
        e["manager"] == who.manager.as_str()
            && e["operation"] == operation
            && e["subresource"].as_str().unwrap_or("") == who.subresource
    };
    match entries.iter_mut().find(|e| same(e)) {
        Some(e) => {
            let mut merged = e["fieldsV1"].clone();
            merge_fields(&mut merged, &fields);
            e["fieldsV1"] = merged;
            e["time"] = json!(who.time);
            e["apiVersion"] = json!(api_version);
        }
        None => {
            let mut e = json!({"manager": who.manager, "operation": operation, "apiVersion": api_version, "time": who.time, "fieldsType": "FieldsV1", "fieldsV1": fields});
            if !who.subresource.is_empty() {
                e["subresource"] = json!(who.subresource);
            }
            entries.push(e);
        }
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.insert("managedFields".into(), Value::Array(entries));
    }
}

/// Records an Update-operation write in `new.metadata.managedFields`, given the object before it.
/// A write that changes no field leaves managedFields as they were.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    who: &FieldManager,
    _schema: &dyn FieldSchema,
) {
    let fields = changed_fields(old, new, true);
    record(old, new, who, "Update", fields);
}

/// Server-side apply of `applied` onto `live` (None: create): the applied configuration is
/// merged in (lists replaced whole) and the manager's Apply entry records its fields. Field
/// ownership conflicts are not detected yet, so `force` changes nothing.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    who: &FieldManager,
    _force: bool,
    _schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    if !applied.is_object() {
        return Err(PatchError::Malformed(
            "apply patch must be an object".into(),
        ));
    }
    if applied["metadata"].get("managedFields").is_some() {
        return Err(PatchError::Malformed(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let mut new = match live {
        Some(l) => {
            let mut n = l.clone();
            deep_apply(&mut n, applied);
            n
        }
        None => applied.clone(),
    };
    let fields = changed_fields(None, applied, true);
    record(live, &mut new, who, "Apply", fields);
    Ok(new)
}

/// Merges `applied` into `target`: objects field by field, everything else replaced.
fn deep_apply(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_apply(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Atomic;
    impl FieldSchema for Atomic {
        fn list_semantics(&self, _: &[&str]) -> ListSemantics {
            ListSemantics::Atomic
        }
    }

    fn who(m: &str) -> FieldManager {
        FieldManager {
            manager: m.into(),
            api_version: "v1".into(),
            subresource: String::new(),
            time: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn failed_tests_fail() {
        let obj = json!({"metadata": {"finalizers": ["a"]}});
        let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]);
        assert!(matches!(json_patch(&obj, &ops), Err(PatchError::Failed(_))));
        assert!(matches!(
            json_patch(&obj, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn managed_fields_record_changes_only() {
        let old = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let mut new = old.clone();
        new["data"]["k"] = json!("w");
        record_update(Some(&old), &mut new, &who("ctl"), &Atomic);
        assert_eq!(
            new["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:data": {"f:k": {}}})
        );
        let before = new.clone();
        let mut again = new.clone();
        record_update(Some(&before), &mut again, &who("ctl"), &Atomic);
        assert_eq!(again, before, "a no-op write leaves managedFields alone");
    }

    #[test]
    fn apply_merges_objects_and_records_the_manager() {
        let live =
            json!({"apiVersion": "v1", "metadata": {"name": "x"}, "spec": {"a": 1, "b": {"c": 2}}});
        let out = server_side_apply(
            Some(&live),
            &json!({"spec": {"b": {"d": 3}}}),
            &who("kubectl"),
            false,
            &Atomic,
        )
        .unwrap();
        assert_eq!(out["spec"], json!({"a": 1, "b": {"c": 2, "d": 3}}));
        assert_eq!(out["metadata"]["managedFields"][0]["operation"], "Apply");
    }
}
