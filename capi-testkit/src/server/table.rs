//! `Table` output for `kubectl get`: Name, the CRD's printer columns (or Age).

use serde_json::{Value, json};

use super::handlers::Target;

fn age(created: Option<&str>) -> String {
    let Some(ts) = created.and_then(|c| c.parse::<k8s_openapi::jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (k8s_openapi::jiff::Timestamp::now().as_second() - ts.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cell(obj: &Value, path: &str, type_: &str) -> Value {
    let v = path
        .trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
        .cloned()
        .unwrap_or(Value::Null);
    match (type_, &v) {
        ("date", Value::String(s)) => json!(age(Some(s))),
        _ => v,
    }
}

/// A Table of `items` (already in the requested version).
pub(crate) fn table(
    target: &Target,
    items: &[Value],
    continue_token: Option<&str>,
    rv: u64,
) -> Value {
    let columns = target
        .res
        .version(&target.version)
        .map(|v| v.columns.clone())
        .unwrap_or_default();
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    if columns.is_empty() {
        defs.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp", "priority": 0}));
    }
    for c in &columns {
        defs.push(json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            if columns.is_empty() {
                cells.push(json!(age(o["metadata"]["creationTimestamp"].as_str())));
            }
            cells.extend(columns.iter().map(|c| cell(o, &c.json_path, &c.type_)));
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string(), "continue": continue_token.unwrap_or("")},
        "columnDefinitions": defs, "rows": rows,
    })
}
