//! `x-kubernetes-embedded-resource` objects: `apiVersion`, `kind` and `metadata` checked as
//! apiextensions-apiserver's `schema/objectmeta.Validate` checks them (on create and update of
//! the main resource; not on status writes).
//!
//! Not implemented: the rest of `ValidateObjectMeta` for embedded metadata (labels,
//! annotations, owner references, finalizers) and decoding errors inside `metadata`.

use serde_json::Value;

use super::field_error::{FieldError, FieldErrorType};
use super::meta;
use super::node::Node;

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Checks every embedded resource below `v` (the object root itself excluded).
pub(super) fn validate(node: &Node, v: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(m) => {
            if node.embedded && !root {
                embedded_resource(v, path, out);
            }
            match (&node.properties, &node.additional) {
                (Some(props), _) => {
                    for (k, child_node) in props {
                        if let Some(cv) = m.get(k) {
                            validate(child_node, cv, &child(path, k), false, out);
                        }
                    }
                }
                (None, Some(values)) => {
                    for (k, cv) in m {
                        validate(values, cv, &format!("{path}[{k}]"), false, out);
                    }
                }
                (None, None) => {}
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    validate(item_node, item, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

fn embedded_resource(x: &Value, path: &str, out: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        if x.get(key).is_none() {
            out.push(FieldError::required(child(path, key), ""));
        }
    }
    let invalid = |key: &str, v: &Value, detail: String| {
        FieldError::new(child(path, key), FieldErrorType::Invalid, v.clone(), detail)
    };
    if let Some(v) = x.get("apiVersion") {
        match v.as_str() {
            None => out.push(invalid("apiVersion", v, "must be a string".into())),
            Some("") => out.push(invalid("apiVersion", v, "must not be empty".into())),
            Some(av) if av != "/" && av.matches('/').count() > 1 => out.push(invalid(
                "apiVersion",
                v,
                format!("unexpected GroupVersion string: {av}"),
            )),
            Some(_) => {}
        }
    }
    if let Some(v) = x.get("kind") {
        match v.as_str() {
            None => out.push(invalid("kind", v, "must be a string".into())),
            Some("") => out.push(invalid("kind", v, "must not be empty".into())),
            Some(kind) => {
                let errs = super::names::dns1035_label(&kind.to_lowercase());
                if !errs.is_empty() {
                    out.push(invalid(
                        "kind",
                        v,
                        format!(
                            "may have mixed case, but should otherwise match: {}",
                            errs.join(",")
                        ),
                    ));
                }
            }
        }
    }
    if let Some(m) = x.get("metadata") {
        let field = child(path, "metadata");
        if m.is_object() {
            meta::validate_embedded_meta(m, &field, out);
        } else if !m.is_null() {
            out.push(FieldError::new(
                field,
                FieldErrorType::Invalid,
                m.clone(),
                format!("invalid metadata: expected object, got {}", go_type(m)),
            ));
        }
    }
}
