//! The `x-kubernetes-list-type: set|map` invariants, as apiextensions-apiserver's
//! `structurallisttype.ValidateListSetsAndMaps` checks them after the OpenAPI validation.
//!
//! A set reports each repeated value once, at the index of its second occurrence; a map list
//! reports every item whose key tuple was seen before, quoting the keys as Go's `%#v` prints a
//! `map[string]interface{}`.

use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrorType};
use super::node::Node;

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks every list below `v`, appending to `out`.
pub(super) fn validate(node: &Node, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    match v {
        Value::Array(items) => {
            match node.list_type.as_deref() {
                Some("set") => set_duplicates(items, path, out),
                Some("map") => map_duplicates(node, items, path, out),
                _ => {}
            }
            if let Some(item_node) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    validate(item_node, item, &index(path, i), out);
                }
            }
        }
        Value::Object(m) => match (&node.properties, &node.additional) {
            (Some(props), _) => {
                for (k, child_node) in props {
                    if let Some(cv) = m.get(k) {
                        validate(child_node, cv, &child(path, k), out);
                    }
                }
            }
            (None, Some(values)) => {
                for (k, cv) in m {
                    validate(values, cv, &format!("{path}[{k}]"), out);
                }
            }
            (None, None) => {}
        },
        _ => {}
    }
}

fn set_duplicates(items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    let mut seen: Vec<(&Value, usize)> = Vec::new();
    for (i, x) in items.iter().enumerate() {
        match seen.iter_mut().find(|(v, _)| *v == x) {
            Some((_, times)) => {
                *times += 1;
                if *times == 2 {
                    out.push(FieldError::new(
                        index(path, i),
                        FieldErrorType::Duplicate,
                        x.clone(),
                        "",
                    ));
                }
            }
            None => seen.push((x, 1)),
        }
    }
}

fn map_duplicates(node: &Node, items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    if let Some((i, x)) = items
        .iter()
        .enumerate()
        .find(|(_, x)| !(x.is_object() || x.is_null()))
    {
        out.push(FieldError::new(
            index(path, i),
            FieldErrorType::Invalid,
            x.clone(),
            "must be an object for an array of list-type map",
        ));
        return;
    }
    if items.len() <= 1 || node.list_map_keys.is_empty() {
        return;
    }
    let key_default = |k: &str| {
        node.items
            .as_deref()
            .and_then(|n| n.child(k))
            .and_then(|n| n.default.clone())
    };
    let mut seen: Vec<Map<String, Value>> = Vec::new();
    for (i, x) in items.iter().enumerate() {
        let keys: Map<String, Value> = node
            .list_map_keys
            .iter()
            .map(|k| {
                let v = x.get(k).cloned().or_else(|| key_default(k));
                // Upstream marks a missing key with an unexported `unspecifiedKeyValue{}`.
                (k.clone(), v.unwrap_or(Value::Null))
            })
            .collect();
        if seen.contains(&keys) {
            out.push(FieldError::new(
                index(path, i),
                FieldErrorType::Duplicate,
                Value::Object(keys),
                "",
            ));
        } else {
            seen.push(keys);
        }
    }
}
