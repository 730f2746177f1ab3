//! The merge semantics of the kinds the server serves: custom resources from their CRD
//! version's `openAPIV3Schema` (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-map-type`), built-in kinds from a table of their Go struct tags, and
//! `metadata` (ObjectMeta) for both.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use super::{FieldSchema, ListSemantics};
use crate::schema::StructuralSchema;

const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

const OWNER_REFERENCE_FIELDS: [&str; 6] = [
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

/// ObjectMeta's semantics; `path` starts below `metadata`.
fn meta_list(path: &[&str]) -> ListSemantics {
    match path {
        ["finalizers"] => ListSemantics::Set,
        ["ownerReferences"] => ListSemantics::Map(vec!["uid".into()]),
        _ => ListSemantics::Atomic,
    }
}

fn meta_named(path: &[&str]) -> bool {
    match path {
        [f] => OBJECT_META_FIELDS.contains(f),
        ["ownerReferences", f] => OWNER_REFERENCE_FIELDS.contains(f),
        _ => false,
    }
}

/// A custom resource's semantics, from its CRD version's schema (absent: everything untyped,
/// as for `x-kubernetes-preserve-unknown-fields`).
#[derive(Debug, Clone, Default)]
pub struct CrdSchema {
    root: Option<Root>,
}

/// Where a [`CrdSchema`]'s `openAPIV3Schema` is.
#[derive(Debug, Clone)]
enum Root {
    /// Its own (boxed: a schema node is ~1 KiB, the shared variant a pointer).
    Owned(Box<JSONSchemaProps>),
    /// A served version's compiled schema, shared rather than copied for each write.
    Compiled(Arc<StructuralSchema>),
}

/// Where a schema path leads: the node, and whether its last step was a declared property.
struct Resolved<'a> {
    node: &'a JSONSchemaProps,
    named: bool,
}

fn items_of(p: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &p.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s),
        _ => None,
    }
}

impl CrdSchema {
    /// The semantics of one CRD version's `openAPIV3Schema`.
    pub fn new(root: Option<JSONSchemaProps>) -> Self {
        Self {
            root: root.map(|r| Root::Owned(Box::new(r))),
        }
    }

    /// [`Self::new`] of a compiled schema's `openAPIV3Schema`, shared rather than copied.
    pub(crate) fn compiled(schema: Option<Arc<StructuralSchema>>) -> Self {
        Self {
            root: schema.map(Root::Compiled),
        }
    }

    fn root(&self) -> Option<&JSONSchemaProps> {
        match self.root.as_ref()? {
            Root::Owned(p) => Some(p),
            Root::Compiled(s) => Some(s.raw()),
        }
    }

    fn resolve(&self, path: &[&str]) -> Option<Resolved<'_>> {
        let mut node = self.root()?;
        let mut named = false;
        for step in path {
            while let Some(items) = items_of(node) {
                node = items;
            }
            if let Some(child) = node.properties.as_ref().and_then(|p| p.get(*step)) {
                node = child;
                named = true;
            } else if let Some(JSONSchemaPropsOrBool::Schema(ap)) = &node.additional_properties {
                node = ap;
                named = false;
            } else {
                return None;
            }
        }
        Some(Resolved { node, named })
    }
}

impl FieldSchema for CrdSchema {
    fn list_semantics(&self, path: &[&str]) -> ListSemantics {
        if let ["metadata", rest @ ..] = path {
            return meta_list(rest);
        }
        let Some(r) = self.resolve(path) else {
            return ListSemantics::Atomic;
        };
        match r.node.x_kubernetes_list_type.as_deref() {
            Some("set") => ListSemantics::Set,
            Some("map") => ListSemantics::Map(
                r.node
                    .x_kubernetes_list_map_keys
                    .clone()
                    .unwrap_or_default(),
            ),
            _ => ListSemantics::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        if path.first() == Some(&"metadata") {
            return false;
        }
        self.resolve(path).is_some_and(|r| {
            // A list's path also names its items.
            let mut node = r.node;
            while let Some(items) = items_of(node) {
                node = items;
            }
            node.x_kubernetes_map_type.as_deref() == Some("atomic")
        })
    }

    fn is_named_field(&self, path: &[&str]) -> bool {
        match path {
            [] => false,
            ["apiVersion" | "kind" | "metadata"] => true,
            ["metadata", rest @ ..] => meta_named(rest),
            _ => self.resolve(path).is_some_and(|r| r.named),
        }
    }
}

/// The built-in kinds' semantics (the kinds this server serves), from their Go struct tags:
/// `+listType`/`+listMapKey` for server-side apply, `patchStrategy`/`patchMergeKey` for
/// strategic merge patches.
#[derive(Debug, Clone)]
pub struct BuiltinSchema {
    group: String,
    kind: String,
}

/// Fields whose values are free-form maps (their keys are not declared fields).
const MAP_FIELDS: [&str; 9] = [
    "labels",
    "annotations",
    "matchLabels",
    "data",
    "binaryData",
    "stringData",
    "nodeSelector",
    "capacity",
    "allocatable",
];

/// JSONSchemaProps fields holding maps of schemas (CRD specs).
const SCHEMA_MAP_FIELDS: [&str; 4] = [
    "properties",
    "patternProperties",
    "definitions",
    "dependencies",
];

impl BuiltinSchema {
    /// The semantics of a built-in kind.
    pub fn new(group: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
        }
    }

    fn is_crd(&self) -> bool {
        self.group == "apiextensions.k8s.io" && self.kind == "CustomResourceDefinition"
    }
}

impl FieldSchema for BuiltinSchema {
    fn list_semantics(&self, path: &[&str]) -> ListSemantics {
        match (self.kind.as_str(), path) {
            (_, ["metadata", rest @ ..]) => meta_list(rest),
            ("ServiceAccount", ["secrets"]) => ListSemantics::Map(vec!["name".into()]),
            ("Namespace" | "CustomResourceDefinition", ["status", "conditions"]) => {
                ListSemantics::Map(vec!["type".into()])
            }
            _ => ListSemantics::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        // `ObjectReference` is `+structType=atomic`: an Event's reference is owned whole.
        matches!(
            (self.kind.as_str(), path),
            ("Event", ["involvedObject" | "regarding" | "related"])
        )
    }

    fn strategic_list(&self, path: &[&str]) -> ListSemantics {
        match (self.kind.as_str(), path) {
            // No patchStrategy on CRD conditions: replaced by strategic merge patches.
            ("CustomResourceDefinition", ["status", "conditions"]) => ListSemantics::Atomic,
            _ => self.list_semantics(path),
        }
    }

    fn is_named_field(&self, path: &[&str]) -> bool {
        if let ["metadata", rest @ ..] = path {
            return meta_named(rest);
        }
        // A step is a map key when the step before it is a declared map-valued field.
        let mut named = false;
        let mut prev_map = false;
        for (i, step) in path.iter().enumerate() {
            named = !prev_map;
            let map_field = if self.is_crd() {
                SCHEMA_MAP_FIELDS.contains(step)
                    || (i > 0 && MAP_FIELDS[..3].contains(step) && path[i - 1] == "metadata")
            } else {
                MAP_FIELDS.contains(step)
            };
            prev_map = named && map_field;
        }
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_schemas_give_list_and_map_types() {
        let p: JSONSchemaProps = serde_json::from_value(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ref": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "taints": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key", "effect"],
                           "items": {"type": "object", "properties": {"key": {"type": "string"}}}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}
            }}
        }}))
        .unwrap();
        let s = CrdSchema::new(Some(p));
        assert_eq!(
            s.list_semantics(&["spec", "taints"]),
            ListSemantics::Map(vec!["key".into(), "effect".into()])
        );
        assert_eq!(
            s.list_semantics(&["metadata", "finalizers"]),
            ListSemantics::Set
        );
        assert!(s.map_is_atomic(&["spec", "ref"]));
        assert!(s.is_named_field(&["spec", "taints", "key"]));
        assert!(!s.is_named_field(&["spec", "tags", "x"]));
        assert!(!s.is_named_field(&["metadata", "labels", "x"]));
    }

    #[test]
    fn builtin_map_keys_are_not_fields() {
        let cm = BuiltinSchema::new("", "ConfigMap");
        assert!(cm.is_named_field(&["data"]));
        assert!(!cm.is_named_field(&["data", "k"]));
        let crd = BuiltinSchema::new("apiextensions.k8s.io", "CustomResourceDefinition");
        let p = [
            "spec",
            "versions",
            "schema",
            "openAPIV3Schema",
            "properties",
            "properties",
            "type",
        ];
        assert!(!crd.is_named_field(&p[..6]));
        assert!(crd.is_named_field(&p));
    }
}
