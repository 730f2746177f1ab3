//! Patches as kube-apiserver applies them: JSON merge, JSON patch, strategic merge (built-in kinds),
//! server-side apply, and the managedFields bookkeeping every write does.
//!
//! INTERFACE STUB: the signatures here are the contract between the server and this module; the
//! bodies are placeholders to be replaced by the real engine.

use serde_json::Value;

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
    /// The patch body is not what its content type promises (400 BadRequest / 422).
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

/// Applies a JSON patch (RFC 6902), where a `test` of `null` on a missing path passes, as upstream.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::Malformed(e.to_string()))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
    Ok(out)
}

/// Applies a strategic merge patch to a built-in kind.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    _schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    Ok(merge_patch(target, patch))
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

/// Records an Update-operation write in `new.metadata.managedFields`, given the object before it.
pub fn record_update(
    _old: Option<&Value>,
    _new: &mut Value,
    _who: &FieldManager,
    _schema: &dyn FieldSchema,
) {
}

/// Server-side apply of `applied` onto `live` (None: create). Returns the new object, managedFields
/// included, or the conflicts when `force` is false.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    _who: &FieldManager,
    _force: bool,
    _schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    Ok(match live {
        Some(live) => merge_patch(live, applied),
        None => applied.clone(),
    })
}
