//! Strategic merge patch (apimachinery `strategicpatch`) for the built-in kinds: lists with a
//! merge strategy merge (scalars as a union, objects by their merge key), other lists are
//! replaced, and the directives are interpreted:
//!
//! - `$patch: replace` (a map or list is replaced instead of merged), `$patch: delete` (the map,
//!   or the list item with that merge key, is deleted), `$patch: merge` (the default);
//! - `$deleteFromPrimitiveList/<field>: [..]` removes values from a list of scalars;
//! - `$setElementOrder/<field>: [..]` orders the merged list;
//! - `$retainKeys: [..]` drops the fields of the map not listed.
//!
//! Merge strategies come from [`FieldSchema::strategic_list`]: `Set` is `patchStrategy: merge`
//! on a list of scalars, `Map(keys)` is `patchStrategy: merge` with `patchMergeKey: keys[0]`.

use serde_json::{Map, Value};

use super::{FieldSchema, ListSemantics, PatchError};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to an object of a built-in kind.
///
/// # Errors
///
/// [`PatchError::Malformed`] for a patch that is not an object or has a bad directive;
/// [`PatchError::Unprocessable`] when a field is not in its map's `$retainKeys`.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    let (Value::Object(t), Value::Object(p)) = (target, patch) else {
        return Err(PatchError::Malformed(
            "strategic merge patch must be an object".into(),
        ));
    };
    let w = Walker { schema };
    let merged = w.merge_map(t, p, &mut Vec::new())?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

struct Walker<'a> {
    schema: &'a dyn FieldSchema,
}

fn strategy(schema: &dyn FieldSchema, path: &[String]) -> ListSemantics {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    schema.strategic_list(&p)
}

impl Walker<'_> {
    /// Merges a patch map into a map; `None` when `$patch: delete` removes it.
    fn merge_map(
        &self,
        original: &Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        let mut out = original.clone();
        match patch.get(PATCH) {
            None => {}
            Some(Value::String(d)) if d == "merge" => {}
            Some(Value::String(d)) if d == "delete" => return Ok(None),
            Some(Value::String(d)) if d == "replace" => {
                let mut p = patch.clone();
                p.remove(PATCH);
                return Ok(Some(clean(&p)));
            }
            Some(other) => {
                return Err(PatchError::Malformed(format!(
                    "Unknown patch type: {other}"
                )));
            }
        }
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let Value::Array(keys) = retain else {
                return Err(PatchError::Malformed(
                    "invalid patch: the $retainKeys directive must be a list of strings".into(),
                ));
            };
            let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
            for k in patch.keys().filter(|k| !k.starts_with('$')) {
                if !keys.contains(&k.as_str()) {
                    return Err(PatchError::Unprocessable(
                        "The order in patch list doesn't match $setElementOrder list or the content in $retainKeys doesn't match the patch: key in patch is not present in $retainKeys list".into(),
                    ));
                }
            }
            out.retain(|k, _| keys.contains(&k.as_str()));
        }
        for (k, pv) in patch {
            if let Some(field) = k.strip_prefix(DELETE_FROM) {
                let Value::Array(gone) = pv else {
                    return Err(PatchError::Malformed(
                        "invalid patch: the $deleteFromPrimitiveList directive must be a list"
                            .into(),
                    ));
                };
                if let Some(Value::Array(list)) = out.get_mut(field) {
                    list.retain(|v| !gone.contains(v));
                }
                continue;
            }
            if k.starts_with('$') {
                continue;
            }
            path.push(k.clone());
            let merged = self.merge_value(out.get(k), pv, path)?;
            path.pop();
            match merged {
                Some(v) => {
                    out.insert(k.clone(), v);
                }
                None => {
                    out.remove(k);
                }
            }
        }
        for (k, order) in patch {
            if let Some(field) = k.strip_prefix(SET_ORDER) {
                let Value::Array(order) = order else {
                    return Err(PatchError::Malformed(
                        "invalid patch: the $setElementOrder directive must be a list".into(),
                    ));
                };
                path.push(field.to_owned());
                let sem = strategy(self.schema, path);
                path.pop();
                if let Some(Value::Array(list)) = out.get_mut(field) {
                    *list = reorder(list, order, &sem);
                }
            }
        }
        Ok(Some(out))
    }

    /// Merges one patch value; `None` deletes the field.
    fn merge_value(
        &self,
        original: Option<&Value>,
        patch: &Value,
        path: &mut Vec<String>,
    ) -> Result<Option<Value>, PatchError> {
        match (original, patch) {
            (_, Value::Null) => Ok(None),
            (Some(Value::Object(o)), Value::Object(p)) => {
                Ok(self.merge_map(o, p, path)?.map(Value::Object))
            }
            (None, Value::Object(p)) => {
                Ok(self.merge_map(&Map::new(), p, path)?.map(Value::Object))
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Ok(Some(Value::Array(self.merge_list(o, p, path)?)))
            }
            (None, Value::Array(p)) => Ok(Some(Value::Array(self.merge_list(&[], p, path)?))),
            (_, other) => Ok(Some(clean_value(other))),
        }
    }

    fn merge_list(
        &self,
        original: &[Value],
        patch: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>, PatchError> {
        let directive = |v: &Value| v.get(PATCH).and_then(Value::as_str).map(str::to_owned);
        if patch
            .iter()
            .any(|v| directive(v).as_deref() == Some("replace"))
        {
            return Ok(patch
                .iter()
                .filter(|v| directive(v).as_deref() != Some("replace"))
                .map(clean_value)
                .collect());
        }
        match strategy(self.schema, path) {
            ListSemantics::Atomic => Ok(patch.iter().map(clean_value).collect()),
            ListSemantics::Set => {
                let mut out = original.to_vec();
                for v in patch {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Ok(out)
            }
            ListSemantics::Map(keys) => {
                let Some(key) = keys.first() else {
                    return Ok(patch.iter().map(clean_value).collect());
                };
                let mut out = original.to_vec();
                for item in patch {
                    let Value::Object(pm) = item else {
                        return Err(PatchError::Malformed(format!(
                            "invalid patch: list {} with merge key {key} has an element that is not a map",
                            path.join(".")
                        )));
                    };
                    let Some(kv) = pm.get(key) else {
                        return Err(PatchError::Malformed(format!(
                            "map: {} does not contain declared merge key: {key}",
                            Value::Object(pm.clone())
                        )));
                    };
                    let pos = out.iter().position(|o| o.get(key) == Some(kv));
                    if directive(item).as_deref() == Some("delete") {
                        out.retain(|o| o.get(key) != Some(kv));
                        continue;
                    }
                    let base = pos.and_then(|i| out[i].as_object().cloned());
                    let merged = self.merge_map(&base.unwrap_or_default(), pm, path)?;
                    match (pos, merged) {
                        (Some(i), Some(m)) => out[i] = Value::Object(m),
                        (Some(i), None) => {
                            out.remove(i);
                        }
                        (None, Some(m)) => out.push(Value::Object(m)),
                        (None, None) => {}
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Orders a merged list by `$setElementOrder`: listed items first in that order, then the
/// others in their merged order.
fn reorder(list: &[Value], order: &[Value], sem: &ListSemantics) -> Vec<Value> {
    let matches = |item: &Value, o: &Value| match sem {
        ListSemantics::Map(keys) => keys
            .first()
            .is_some_and(|k| item.get(k).is_some() && item.get(k) == o.get(k)),
        _ => item == o,
    };
    let mut out = Vec::new();
    let mut used = vec![false; list.len()];
    for o in order {
        if let Some(i) = (0..list.len()).find(|&i| !used[i] && matches(&list[i], o)) {
            used[i] = true;
            out.push(list[i].clone());
        }
    }
    out.extend(
        list.iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(v, _)| v.clone()),
    );
    out
}

/// A patch map with its directives removed (for values taken as they are).
fn clean(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), clean_value(v)))
        .collect()
}

fn clean_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(clean(m)),
        Value::Array(a) => Value::Array(a.iter().map(clean_value).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::BuiltinSchema;
    use serde_json::json;

    fn smp(target: Value, patch: Value, kind: &str) -> Value {
        strategic_merge_patch(&target, &patch, &BuiltinSchema::new("", kind)).unwrap()
    }

    #[test]
    fn finalizers_union_and_directives_remove() {
        let cm = json!({"metadata": {"name": "c", "finalizers": ["a", "b"]}, "data": {"k": "v"}});
        let out = smp(
            cm.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
            "ConfigMap",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            cm.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "ConfigMap",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let out = smp(
            cm.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
            "ConfigMap",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        let out = smp(
            cm.clone(),
            json!({"data": {"$patch": "replace", "n": "w"}}),
            "ConfigMap",
        );
        assert_eq!(out["data"], json!({"n": "w"}));
        let out = smp(cm, json!({"data": {"$patch": "delete"}}), "ConfigMap");
        assert!(out.get("data").is_none());
    }

    #[test]
    fn merge_keys_merge_items_and_delete_them() {
        let sa = json!({"metadata": {"name": "s"}, "secrets": [{"name": "a"}, {"name": "b", "namespace": "x"}],
                        "imagePullSecrets": [{"name": "p"}]});
        let out = smp(
            sa.clone(),
            json!({"secrets": [{"name": "b", "fieldPath": "f"}, {"name": "c"}], "imagePullSecrets": [{"name": "q"}]}),
            "ServiceAccount",
        );
        assert_eq!(
            out["secrets"],
            json!([{"name": "a"}, {"name": "b", "namespace": "x", "fieldPath": "f"}, {"name": "c"}])
        );
        assert_eq!(out["imagePullSecrets"], json!([{"name": "q"}]));
        let out = smp(
            sa.clone(),
            json!({"secrets": [{"name": "a", "$patch": "delete"}]}),
            "ServiceAccount",
        );
        assert_eq!(out["secrets"], json!([{"name": "b", "namespace": "x"}]));
        let out = smp(
            sa,
            json!({"secrets": [{"$patch": "replace"}, {"name": "z"}]}),
            "ServiceAccount",
        );
        assert_eq!(out["secrets"], json!([{"name": "z"}]));
        let owners = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}});
        let out = smp(
            owners,
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
            "ConfigMap",
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn retain_keys_drops_unlisted_fields() {
        let obj = json!({"spec": {"a": 1, "b": 2}});
        let out = smp(
            obj.clone(),
            json!({"spec": {"$retainKeys": ["a", "c"], "c": 3}}),
            "Lease",
        );
        assert_eq!(out["spec"], json!({"a": 1, "c": 3}));
        assert!(matches!(
            strategic_merge_patch(
                &obj,
                &json!({"spec": {"$retainKeys": ["a"], "b": 3}}),
                &BuiltinSchema::new("", "Lease")
            ),
            Err(PatchError::Unprocessable(_))
        ));
    }
}
