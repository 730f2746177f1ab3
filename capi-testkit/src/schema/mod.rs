//! Structural schemas of CustomResourceDefinitions: defaulting, pruning and validation, worded as
//! kube-apiserver words them.
//!
//! See [`StructuralSchema`] for what is implemented and what is not yet.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use crate::patch::{FieldSchema, ListSemantics};

/// Why a schema could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema is not structural (kube-apiserver refuses such CRDs).
    #[error("schema is not structural: {0}")]
    NotStructural(String),
}

/// One compiled schema node.
#[derive(Debug, Clone, Default)]
struct Node {
    type_: Option<String>,
    properties: Option<std::collections::BTreeMap<String, Node>>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    required: Vec<String>,
    enum_: Option<Vec<Value>>,
    default: Option<Value>,
    preserve_unknown: bool,
    int_or_string: bool,
    embedded: bool,
    nullable: bool,
}

impl Node {
    fn compile(p: &JSONSchemaProps) -> Self {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
            JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
        };
        Self {
            type_: p.type_.clone(),
            properties: p.properties.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::compile(v)))
                    .collect()
            }),
            items: match &p.items {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(Box::new(Node::compile(s))),
                _ => None,
            },
            additional: match &p.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(s)) => Some(Box::new(Node::compile(s))),
                _ => None,
            },
            required: p.required.clone().unwrap_or_default(),
            enum_: p
                .enum_
                .as_ref()
                .map(|e| e.iter().map(|v| v.0.clone()).collect()),
            default: p.default.as_ref().map(|d| d.0.clone()),
            preserve_unknown: p.x_kubernetes_preserve_unknown_fields == Some(true),
            int_or_string: p.x_kubernetes_int_or_string == Some(true),
            embedded: p.x_kubernetes_embedded_resource == Some(true),
            nullable: p.nullable == Some(true),
        }
    }
}

/// One CRD version's `openAPIV3Schema`, compiled for fast repeated use.
///
/// Implemented: defaulting, pruning (with `x-kubernetes-preserve-unknown-fields`, embedded
/// resources, int-or-string), and validation of types, required fields and enums, worded as
/// kube-apiserver words them. Not yet: patterns, bounds, formats, list-type uniqueness, CEL.
#[derive(Debug, Clone)]
pub struct StructuralSchema {
    raw: JSONSchemaProps,
    root: Node,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl StructuralSchema {
    /// Compiles a schema.
    pub fn compile(schema: &JSONSchemaProps) -> Result<Self, SchemaError> {
        Ok(Self {
            raw: schema.clone(),
            root: Node::compile(schema),
        })
    }

    /// The schema as given.
    pub fn raw(&self) -> &JSONSchemaProps {
        &self.raw
    }

    /// Applies `default`s in place, as kube-apiserver does on decoding a request and reading storage.
    pub fn apply_defaults(&self, obj: &mut Value) {
        fn walk(node: &Node, v: &mut Value) {
            match v {
                Value::Object(m) => {
                    if let Some(props) = &node.properties {
                        for (k, child) in props {
                            if !m.contains_key(k)
                                && let Some(d) = &child.default
                            {
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
    /// strict-validation errors, e.g. `.spec.foo`.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
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
                            let unknown: Vec<String> =
                                m.keys().filter(|k| !keep(k)).cloned().collect();
                            for k in unknown {
                                m.remove(&k);
                                out.push(format!(".{}", join(path, &k)));
                            }
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
        walk(&self.root, obj, "", true, &mut out);
        out
    }

    /// Validates a whole object (after defaulting and pruning) against the schema.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        fn walk(node: &Node, v: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
            if v.is_null() && (node.nullable || node.preserve_unknown) {
                return;
            }
            if node.int_or_string {
                if !matches!(type_name(v), "integer" | "string") {
                    out.push(FieldError {
                        field: path.to_owned(),
                        kind: FieldErrorType::TypeInvalid,
                        bad_value: Some(Value::String(type_name(v).into())),
                        detail: format!(
                            "{path} in body must be of type int-or-string: \"{}\"",
                            type_name(v)
                        ),
                    });
                }
                return;
            }
            if let Some(t) = node.type_.as_deref() {
                let actual = type_name(v);
                let ok = actual == t || (t == "number" && actual == "integer");
                if !ok {
                    out.push(FieldError {
                        field: path.to_owned(),
                        kind: FieldErrorType::TypeInvalid,
                        bad_value: Some(Value::String(actual.into())),
                        detail: format!("{path} in body must be of type {t}: \"{actual}\""),
                    });
                    return;
                }
            }
            if let Some(values) = &node.enum_
                && !values.contains(v)
            {
                let supported: Vec<String> = values.iter().map(|x| x.to_string()).collect();
                out.push(FieldError {
                    field: path.to_owned(),
                    kind: FieldErrorType::NotSupported,
                    bad_value: Some(v.clone()),
                    detail: format!("supported values: {}", supported.join(", ")),
                });
            }
            match v {
                Value::Object(m) => {
                    for r in &node.required {
                        if !(m.contains_key(r) || (root && r == "metadata")) {
                            out.push(FieldError {
                                field: join(path, r),
                                kind: FieldErrorType::Required,
                                bad_value: None,
                                detail: String::new(),
                            });
                        }
                    }
                    if let Some(props) = &node.properties {
                        for (k, child) in props {
                            if let Some(cv) = m.get(k)
                                && !(root
                                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                            {
                                walk(child, cv, &join(path, k), false, out);
                            }
                        }
                    } else if let Some(ap) = &node.additional {
                        for (k, cv) in m {
                            walk(ap, cv, &join(path, k), false, out);
                        }
                    }
                }
                Value::Array(a) => {
                    if let Some(items) = &node.items {
                        for (i, cv) in a.iter().enumerate() {
                            walk(items, cv, &format!("{path}[{i}]"), false, out);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, obj, "", true, &mut out);
        out
    }
}

impl FieldSchema for StructuralSchema {
    fn list_semantics(&self, _path: &[&str]) -> ListSemantics {
        ListSemantics::Atomic
    }
}

/// The kind of a field error, as apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    /// `FieldValueRequired`: "Required value".
    Required,
    /// `FieldValueInvalid`: "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`: "Unsupported value".
    NotSupported,
    /// `FieldValueTooLong`: "Too long".
    TooLong,
    /// `FieldValueTooMany`: "Too many".
    TooMany,
    /// `FieldValueDuplicate`: "Duplicate value".
    Duplicate,
    /// `FieldValueTypeInvalid`: "Invalid value" for a wrong type.
    TypeInvalid,
    /// `FieldValueForbidden`: "Forbidden".
    Forbidden,
}

impl FieldErrorType {
    /// The `reason` of the `StatusCause` kube-apiserver sends for this error type.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One validation failure at one field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path as kube-apiserver prints it, e.g. `spec.replicas` or `metadata.labels`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorType,
    /// The offending value, when kube-apiserver quotes it.
    pub bad_value: Option<Value>,
    /// The detail sentence.
    pub detail: String,
}

impl FieldError {
    /// The `message` of this error's `StatusCause` (the field is reported beside it), worded as
    /// kube-apiserver words it, e.g. `Invalid value: "integer": spec.x in body must be of type string: "integer"`.
    pub fn message(&self) -> String {
        let value = self.bad_value.as_ref().map(|v| match v {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        });
        let head = match self.kind {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid | FieldErrorType::TypeInvalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Forbidden => "Forbidden",
        };
        match (value, self.detail.is_empty()) {
            (Some(v), false) => format!("{head}: {v}: {}", self.detail),
            (Some(v), true) => format!("{head}: {v}"),
            (None, false) => format!("{head}: {}", self.detail),
            (None, true) => head.to_owned(),
        }
    }
}

/// The `message` of a 422 Invalid `Status`: `<Kind>.<group> "<name>" is invalid: ...`.
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(FieldError::message).collect();
    format!(
        "{qualified_kind} \"{name}\" is invalid: {}",
        parts.join(", ")
    )
}

/// Validates `metadata` as kube-apiserver does for every object; implemented: the name must be
/// a DNS-1123 subdomain (labels, annotations and the rest are not checked yet).
pub fn validate_object_meta(meta: &Value, _namespaced: bool) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(name) = meta["name"].as_str().filter(|n| !n.is_empty()) {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && l.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && l.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            out.push(FieldError {
                field: "metadata.name".into(),
                kind: FieldErrorType::Invalid,
                bad_value: Some(Value::String(name.into())),
                detail: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> StructuralSchema {
        let p: JSONSchemaProps = serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true}
                }}
            }
        }))
        .unwrap();
        StructuralSchema::compile(&p).unwrap()
    }

    #[test]
    fn defaults_prunes_and_validates_as_upstream() {
        let s = schema();
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"name": 7, "bogus": 1, "free": {"any": 1}, "port": "80%"}});
        s.apply_defaults(&mut obj);
        assert_eq!(obj["spec"]["mode"], "A");
        assert_eq!(s.prune(&mut obj), [".spec.bogus"]);
        assert_eq!(obj["spec"]["free"], json!({"any": 1}));
        let errs = s.validate(&obj);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.name");
        assert_eq!(
            errs[0].message(),
            "Invalid value: \"integer\": spec.name in body must be of type string: \"integer\""
        );
        let missing = s.validate(&json!({"spec": {"mode": "C"}}));
        let msgs: Vec<String> = missing
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message()))
            .collect();
        assert!(
            msgs.contains(&"spec.name: Required value".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(
                &"spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"".to_string()
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn names_must_be_dns_subdomains() {
        assert_eq!(
            validate_object_meta(&json!({"name": "BadName"}), true).len(),
            1
        );
        assert!(validate_object_meta(&json!({"name": "good.name-1"}), true).is_empty());
    }
}
