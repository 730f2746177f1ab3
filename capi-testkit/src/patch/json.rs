//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as kube-apiserver applies them.

use serde_json::Value;

use super::PatchError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
