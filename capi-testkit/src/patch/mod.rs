//! Patches as kube-apiserver applies them: JSON merge, JSON patch, strategic merge (built-in
//! kinds), server-side apply with field ownership, and the managedFields bookkeeping every
//! write does.
//!
//! One concept per module:
//!
//! - [`json`]: JSON merge patch and JSON patch;
//! - [`strategic`]: strategic merge patch with its `$patch`, `$deleteFromPrimitiveList`,
//!   `$setElementOrder` and `$retainKeys` directives;
//! - [`fieldset`]: sets of field paths and their `FieldsV1` encoding;
//! - [`typed`]: the schema-directed walks of structured-merge-diff (field sets, comparison,
//!   merge, removal);
//! - [`managed`]: managedFields entries and the ownership changes of non-apply writes;
//! - [`apply`]: server-side apply (merge, pruning of fields no longer applied, conflicts);
//! - [`schemas`]: the list and map semantics of the kinds served (CRD schemas, built-ins).
//!
//! Known differences from kube-apiserver: managers' field sets are not converted between
//! apiVersions; more than ten `Update` managers are not folded into `ancient-changes`; `null`s
//! in an apply configuration are dropped and duplicate set/map-list items collapsed rather than
//! refused; unions and schema-change reconciliation are not implemented; writes through the
//! scale subresource record no managedFields; `$setElementOrder` puts unlisted items last.
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

pub mod apply;
pub mod fieldset;
pub mod json;
pub mod managed;
pub mod schemas;
pub mod strategic;
pub mod typed;

pub use apply::server_side_apply;
pub use json::{json_patch, merge_patch};
pub use managed::record_update;
pub use schemas::{BuiltinSchema, CrdSchema};
pub use strategic::strategic_merge_patch;

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
///
/// Paths are field names from the object root with list positions omitted, e.g.
/// `["spec", "template", "spec", "containers", "name"]`; keys of free-form maps are path
/// elements like field names (`["metadata", "labels", "app"]`).
pub trait FieldSchema: Send + Sync {
    /// The merge semantics of the list at `path` (server-side apply).
    fn list_semantics(&self, path: &[&str]) -> ListSemantics;
    /// Whether the map (object) at `path` is atomic (`x-kubernetes-map-type: atomic`).
    fn map_is_atomic(&self, _path: &[&str]) -> bool {
        false
    }
    /// Whether the last element of `path` is a declared field of the object holding it (a
    /// struct member, as opposed to a key of a free-form map or of an untyped object).
    /// Server-side apply owns declared fields' parents and removes emptied ones.
    fn is_named_field(&self, _path: &[&str]) -> bool {
        false
    }
    /// The strategic-merge-patch semantics of the list at `path` (`patchStrategy: merge` with
    /// or without a `patchMergeKey`); defaults to [`FieldSchema::list_semantics`].
    fn strategic_list(&self, path: &[&str]) -> ListSemantics {
        self.list_semantics(path)
    }
}

/// One field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner as kube-apiserver prints it: `"alice"` for an applier, `"kubectl" using v1`
    /// for an updater (with ` with subresource "status"` when it wrote a subresource).
    pub manager: String,
    /// The field path, e.g. `.spec.clusterName`.
    pub field: String,
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
    /// A strategic merge patch is well-formed but cannot be applied (422, message kept).
    #[error("{0}")]
    Unprocessable(String),
    /// Server-side apply found fields owned by other managers (409 Conflict).
    #[error("{}", conflict_message(conflicts))]
    ApplyConflict {
        /// The conflicts, sorted by manager then path.
        conflicts: Vec<Conflict>,
    },
}

/// The `message` of kube-apiserver's apply-conflict Status.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        );
    }
    let mut lines = Vec::new();
    let mut last: Option<&str> = None;
    for c in conflicts {
        if last != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with {}:", c.manager));
            last = Some(c.manager.as_str());
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Which part of the object a write may change, as the registry strategies' reset fields say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteScope {
    /// Everything (no status subresource).
    #[default]
    All,
    /// Everything but `status` (the main resource of a kind with a status subresource).
    AllButStatus,
    /// Only `status` (the status subresource).
    StatusOnly,
}

impl WriteScope {
    /// Whether the top-level field may be changed (and owned) by the write.
    pub fn allows(self, top_level_field: &str) -> bool {
        match self {
            Self::All => true,
            Self::AllButStatus => top_level_field != "status",
            Self::StatusOnly => top_level_field == "status",
        }
    }
}

/// Who writes, for managedFields bookkeeping.
#[derive(Debug, Clone)]
pub struct FieldManager {
    /// The `fieldManager` (defaulted from the User-Agent as upstream when absent).
    pub manager: String,
    /// `apiVersion` of the request (empty: the object's).
    pub api_version: String,
    /// `""` for the main resource, `"status"` or `"scale"`.
    pub subresource: String,
    /// The request time (RFC 3339, seconds).
    pub time: String,
    /// Which fields the write may change.
    pub scope: WriteScope,
}
