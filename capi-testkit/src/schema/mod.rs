//! Structural schemas of CustomResourceDefinitions: defaulting, pruning and validation, worded as
//! kube-apiserver 1.36 words them.
//!
//! See [`StructuralSchema`] for what is implemented. The modules follow upstream's split:
//! `structural` the checks of a schema when its CRD is written ([`validate_crd_schema`]),
//! `values` is kube-openapi's value validation, `listtype` the list-type invariants, `embedded`
//! the embedded-resource checks, `formats` the string formats, `cel` the CEL rules
//! (`x-kubernetes-validations`, apiextensions-apiserver's `schema/cel`), `field_error` and
//! `gofmt` the wording of errors.

mod cel;
mod embedded;
mod field_error;
mod formats;
mod listtype;
mod meta;
mod names;
mod node;
mod structural;
mod values;

#[cfg(test)]
mod cel_tests;
#[cfg(test)]
mod structural_tests;
#[cfg(test)]
mod tests;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use crate::patch::{FieldSchema, ListSemantics};

pub use cel::{PER_CALL_LIMIT, RUNTIME_BUDGET, RuleError};
pub use field_error::{FieldError, FieldErrorType, invalid_message};
pub use meta::{
    dedup_owner_references, finalizer_warnings, validate_kube_finalizer_names,
    validate_object_meta, validate_object_meta_update,
};
pub(crate) use names::qualified_name;
pub use names::{dns1035_label, dns1123_subdomain};
use node::Node;

/// Why a schema could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema is not structural (kube-apiserver refuses such CRDs).
    #[error("schema is not structural: {0}")]
    NotStructural(String),
    /// Some `x-kubernetes-validations` rules do not compile (or are otherwise invalid): the
    /// causes of the CRD write's 422, with fields below `openAPIV3Schema`.
    #[error("invalid x-kubernetes-validations: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(", "))]
    InvalidRules(Vec<RuleError>),
}

impl SchemaError {
    /// The 422 causes of the CRD write, as `(field, reason, message)`, with fields relative to
    /// the version's `openAPIV3Schema` (empty for the schema as a whole).
    pub fn causes(self) -> Vec<(String, &'static str, String)> {
        match self {
            Self::InvalidRules(errors) => errors
                .into_iter()
                .map(|e| (e.field, e.reason, e.message))
                .collect(),
            other @ Self::NotStructural(_) => {
                vec![(String::new(), "FieldValueInvalid", other.to_string())]
            }
        }
    }
}

/// Checks a CRD version's `openAPIV3Schema` (the JSON as sent) as kube-apiserver does when a
/// CRD is created or updated (apiextensions-apiserver's `validateCustomResourceDefinitionValidation`
/// without the CEL rules, which [`StructuralSchema::compile`] checks): `nullable` at the root,
/// then the structural-schema errors (sorted by their text, as upstream sorts them) or, for a
/// structural schema, the errors of its `default`s, then the per-node OpenAPI checks
/// (`additionalProperties` with `properties`, `x-kubernetes-preserve-unknown-fields: false`,
/// list and map types, unsupported keywords, defaults in `metadata`, ...).
///
/// `path` is where the schema sits in the CRD, e.g. `spec.validation.openAPIV3Schema`.
///
/// ```
/// use capi_testkit::schema::validate_crd_schema;
/// use serde_json::json;
///
/// let schema = json!({"type": "object", "properties": {"spec": {"properties": {}}}});
/// let errors = validate_crd_schema(&schema, "spec.validation.openAPIV3Schema");
/// assert_eq!(errors[0].field, "spec.validation.openAPIV3Schema.properties[spec].type");
/// assert_eq!(errors[0].message(), "Required value: must not be empty for specified object fields");
/// ```
pub fn validate_crd_schema(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if schema.get("nullable") == Some(&Value::Bool(true)) {
        errors.push(FieldError::forbidden(
            format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let not_structural = structural::validate_structural(schema, path);
    if not_structural.is_empty() {
        errors.extend(structural::validate_defaults(schema, path));
    } else {
        errors.extend(not_structural);
    }
    errors.extend(structural::validate_openapi_schema(schema, path));
    errors
}

/// The detail of the cause kube-apiserver adds when it skipped the CEL rules
/// (`x-kubernetes-validations`) because the object already failed a blocking check.
pub const CEL_SKIPPED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// What a write is, for validation: a create, or an update of a stored object (which turns on
/// validation ratcheting), of the main resource or of the status subresource.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteContext<'a> {
    old: Option<&'a Value>,
    status: bool,
}

impl<'a> WriteContext<'a> {
    /// A create: everything is validated.
    pub fn create() -> Self {
        Self::default()
    }

    /// An update of `old`: values unchanged from `old` are not validated again (ratcheting), and
    /// list-type uniqueness is only enforced when `old` satisfied it.
    pub fn update(old: &'a Value) -> Self {
        Self {
            old: Some(old),
            status: false,
        }
    }

    /// A write through the status subresource: only `status` is validated, with the status
    /// schema alone (so detail messages name paths below `status`, as upstream's do), and
    /// embedded resources are not checked.
    #[must_use]
    pub fn on_status(mut self) -> Self {
        self.status = true;
        self
    }
}

/// One CRD version's `openAPIV3Schema`, compiled for fast repeated use.
///
/// Implemented, as kube-apiserver 1.36 does it (`k8s.io/apiextensions-apiserver` with
/// `k8s.io/kube-openapi/pkg/validation/validate`):
/// - defaulting (including `null` in non-nullable fields with a default) and pruning (unknown
///   fields, honouring `x-kubernetes-preserve-unknown-fields` and embedded resources, and
///   `null` in non-nullable fields without a default);
/// - value validation: `type` (and int-or-string), `nullable`, `enum`, `required`, `pattern`,
///   `minLength`/`maxLength` (in characters), `minimum`/`maximum` with their exclusive forms,
///   `multipleOf`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, the formats
///   kube-apiserver checks, and `allOf`/`anyOf`/`oneOf`/`not`;
/// - `x-kubernetes-list-type: set|map` uniqueness and `x-kubernetes-embedded-resource` checks;
/// - validation ratcheting on update ([`WriteContext::update`]);
/// - CEL rules (`x-kubernetes-validations`: `rule`, `message`, `messageExpression`, `reason`,
///   `fieldPath`, `optionalOldSelf`, transition rules with `oldSelf`), compiled once here and
///   evaluated with the `cel` crate after the structural checks, and the cause kube-apiserver
///   adds instead when a blocking error skips them ([`CEL_SKIPPED`]).
///
/// Rules are type-checked against the schema's types when compiled, as cel-go checks them, but only
/// where the check is certain (what it cannot type surfaces at evaluation). Not implemented: the
/// Kubernetes CEL libraries beyond the standard library and the strings extension (no
/// `quantity`, `url`, `ip`, `cidr`, `semver`, `format`, or the lists helpers such as
/// `isSorted`/`sum`); the cost limits are estimated, not metered (see [`PER_CALL_LIMIT`]).
#[derive(Debug, Clone)]
pub struct StructuralSchema {
    raw: JSONSchemaProps,
    root: Node,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether `v` is a `null` that the schema does not allow.
fn non_nullable_null(v: &Value, node: &Node) -> bool {
    v.is_null() && !node.nullable
}

/// Prunes `v` against `node` (`root`: `v` is a resource, whose `apiVersion`, `kind` and
/// `metadata` are kept), returning the dropped paths.
fn prune_node(node: &Node, v: &mut Value, root: bool) -> Vec<String> {
    fn walk(node: &Node, v: &mut Value, path: &str, root: bool, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(props) = &node.properties {
                    if !node.preserve_unknown {
                        let keep = |k: &str| {
                            props.contains_key(k)
                                || (root || node.embedded)
                                    && matches!(k, "apiVersion" | "kind" | "metadata")
                        };
                        let unknown: Vec<String> = m.keys().filter(|k| !keep(k)).cloned().collect();
                        for k in unknown {
                            m.remove(&k);
                            out.push(format!(".{}", join(path, &k)));
                        }
                    }
                    let nulls: Vec<String> = props
                        .iter()
                        .filter(|(k, child)| {
                            child.default.is_none()
                                && m.get(k.as_str())
                                    .is_some_and(|cv| non_nullable_null(cv, child))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in nulls {
                        m.remove(&k);
                    }
                    for (k, child) in props {
                        if let Some(cv) = m.get_mut(k) {
                            walk(child, cv, &join(path, k), false, out);
                        }
                    }
                } else if let Some(ap) = &node.additional {
                    for (k, cv) in m.iter_mut() {
                        walk(ap, cv, &join(path, k), false, out);
                    }
                }
            }
            Value::Array(a) => {
                if let Some(items) = &node.items {
                    for (i, cv) in a.iter_mut().enumerate() {
                        walk(items, cv, &format!("{path}[{i}]"), false, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(node, v, "", root, &mut out);
    out
}

impl StructuralSchema {
    /// Compiles a schema.
    ///
    /// # Errors
    ///
    /// [`SchemaError::InvalidRules`] if a CEL rule (or `messageExpression`) does not compile.
    /// The structural-schema checks kube-apiserver runs when the CRD is written are
    /// [`validate_crd_schema`]'s (the server runs them before compiling); a `pattern` that does
    /// not compile in a schema compiled without them is reported when objects are validated.
    pub fn compile(schema: &JSONSchemaProps) -> Result<Self, SchemaError> {
        let mut root = Node::compile(schema);
        if root.has_cel {
            let mut errors = Vec::new();
            cel::attach(&mut root, schema, "", &mut errors);
            if !errors.is_empty() {
                return Err(SchemaError::InvalidRules(errors));
            }
        }
        Ok(Self {
            raw: schema.clone(),
            root,
        })
    }

    /// The schema as given.
    pub fn raw(&self) -> &JSONSchemaProps {
        &self.raw
    }

    /// Whether the schema carries CEL rules (`x-kubernetes-validations`) anywhere.
    pub fn has_cel_rules(&self) -> bool {
        self.root.has_cel
    }

    /// Applies `default`s in place, as kube-apiserver does on decoding a request and reading
    /// storage: a missing field, or a `null` in a non-nullable one, gets the field's default.
    pub fn apply_defaults(&self, obj: &mut Value) {
        fn walk(node: &Node, v: &mut Value) {
            match v {
                Value::Object(m) => {
                    if let Some(props) = &node.properties {
                        for (k, child) in props {
                            let Some(d) = &child.default else { continue };
                            if m.get(k).is_none_or(|cv| non_nullable_null(cv, child)) {
                                m.insert(k.clone(), d.clone());
                            }
                        }
                        for (k, child) in props {
                            if let Some(cv) = m.get_mut(k) {
                                walk(child, cv);
                            }
                        }
                    } else if let Some(ap) = &node.additional {
                        m.values_mut().for_each(|cv| walk(ap, cv));
                    }
                }
                Value::Array(a) => {
                    if let Some(items) = &node.items {
                        a.iter_mut().for_each(|cv| walk(items, cv));
                    }
                }
                _ => {}
            }
        }
        walk(&self.root, obj);
    }

    /// Drops fields the schema does not know (honouring `x-kubernetes-preserve-unknown-fields` and
    /// embedded resources) and returns their paths as kube-apiserver prints them in warnings and
    /// strict-validation errors, e.g. `.spec.foo`. Also drops `null`s in non-nullable properties
    /// without a default (upstream's `PruneNonNullableNullsWithoutDefaults`; not reported).
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune_node(&self.root, obj, true)
    }

    /// Validates a new object (after defaulting and pruning) against the schema, as on create.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        self.validate_write(obj, WriteContext::create())
    }

    /// Validates an object (after defaulting and pruning) for a write, returning the causes of
    /// kube-apiserver's 422 in its order: OpenAPI value errors, embedded-resource errors,
    /// list-type duplicates, then either the CEL rules' errors or, if one of the errors blocks
    /// them, the CEL-skipped cause.
    pub fn validate_write(&self, obj: &Value, ctx: WriteContext<'_>) -> Vec<FieldError> {
        self.validate_write_after(Vec::new(), obj, ctx)
    }

    /// [`validate_write`](Self::validate_write) after the `ObjectMeta` errors `meta` (from
    /// [`validate_object_meta`]), returning one list as the custom resource strategy's
    /// `Validate` does: the metadata errors first, then the schema's; a blocking metadata error
    /// (e.g. `Required`) also keeps the CEL rules from running.
    ///
    /// ```
    /// use capi_testkit::schema::{StructuralSchema, WriteContext, validate_object_meta};
    /// use serde_json::json;
    ///
    /// let props = serde_json::from_value(json!({"type": "object", "properties": {
    ///     "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}))
    /// .unwrap();
    /// let schema = StructuralSchema::compile(&props).unwrap();
    /// let obj = json!({"metadata": {"name": "Bad"}, "spec": {"size": "x"}});
    /// let meta = validate_object_meta(&obj["metadata"], true);
    /// let errors = schema.validate_write_after(meta, &obj, WriteContext::create());
    /// let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    /// assert_eq!(fields, ["metadata.name", "spec.size"]);
    /// ```
    pub fn validate_write_after(
        &self,
        meta: Vec<FieldError>,
        obj: &Value,
        ctx: WriteContext<'_>,
    ) -> Vec<FieldError> {
        let mut out = values::Outcome::default();
        out.errors = meta;
        if ctx.status {
            if let (Some(node), Some(status)) = (
                self.root.properties.as_ref().and_then(|p| p.get("status")),
                obj.get("status"),
            ) {
                let old = ctx.old.and_then(|o| o.get("status"));
                let vctx = values::Ctx { prefix: "status" };
                values::validate(node, status, old, "", false, vctx, &mut out);
            }
        } else {
            let vctx = values::Ctx { prefix: "" };
            values::validate(&self.root, obj, ctx.old, "", true, vctx, &mut out);
        }
        let mut errors = out.errors;
        if !ctx.status {
            embedded::validate(&self.root, obj, "", true, &mut errors);
        }
        let mut list_errors = Vec::new();
        listtype::validate(&self.root, obj, "", &mut list_errors);
        if !list_errors.is_empty() {
            let old_ok = ctx.old.is_none_or(|old| {
                let mut old_errors = Vec::new();
                listtype::validate(&self.root, old, "", &mut old_errors);
                old_errors.is_empty()
            });
            if old_ok {
                errors.extend(list_errors);
            }
        }
        if self.root.has_cel {
            if errors.iter().any(|e| e.kind.blocks_cel()) {
                errors.push(FieldError::new(
                    "<nil>",
                    FieldErrorType::Invalid,
                    Value::Null,
                    CEL_SKIPPED,
                ));
            } else {
                let mut budget = cel::Budget::default();
                cel::validate(&self.root, obj, ctx.old, "", true, &mut budget, &mut errors);
            }
        }
        errors
    }
}

impl StructuralSchema {
    /// The node at `path` (field names from the root, list positions omitted).
    fn node_at(&self, path: &[&str]) -> Option<&Node> {
        let mut node = &self.root;
        for segment in path {
            while node.type_.as_deref() == Some("array")
                && let Some(items) = &node.items
            {
                node = items;
            }
            node = node.child(segment)?;
        }
        Some(node)
    }
}

impl FieldSchema for StructuralSchema {
    fn list_semantics(&self, path: &[&str]) -> ListSemantics {
        let Some(node) = self.node_at(path) else {
            return ListSemantics::Atomic;
        };
        match node.list_type.as_deref() {
            Some("set") => ListSemantics::Set,
            Some("map") if !node.list_map_keys.is_empty() => {
                ListSemantics::Map(node.list_map_keys.clone())
            }
            _ => ListSemantics::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        self.node_at(path).is_some_and(|n| n.map_type_atomic)
    }
}
