//! Every property path of upstream's CRD schemas (v1beta1 and v1beta2, the six core kinds) must
//! exist in the CRDs generated from our Rust types, with the same type; validation keywords are
//! compared too. Reads ../shared/corpus/cluster-api/crds; skips with a reason when it is absent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

const KEYWORDS: &[&str] = &[
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "default",
];

fn corpus() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cluster-api/crds");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: {} is absent (a clone outside the workplace)",
            dir.display()
        );
        None
    }
}

/// Flattens a schema into `path -> node` (node without its children and description).
fn walk(schema: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    let mut node = serde_json::Map::new();
    for k in KEYWORDS.iter().chain(&["type"]) {
        if let Some(v) = obj.get(*k) {
            let v = match (*k, v) {
                // Descriptions inside CEL rules and list orders of `required` are not API.
                ("x-kubernetes-validations", Value::Array(rules)) => Value::Array(
                    rules
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if let Some(m) = r.as_object_mut() {
                                m.remove("description");
                            }
                            r
                        })
                        .collect(),
                ),
                ("required", Value::Array(a)) => {
                    let mut a = a.clone();
                    a.sort_by_key(|v| v.to_string());
                    Value::Array(a)
                }
                _ => v.clone(),
            };
            node.insert((*k).to_owned(), v);
        }
    }
    out.insert(path.clone(), Value::Object(node));
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, format!("{path}[]"), out);
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        walk(ap, format!("{path}{{}}"), out);
    }
}

/// JSON equality where numbers compare by value (JSONSchemaProps keeps bounds as f64: 1 == 1.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn schema_of(crd: &Value, version: &str) -> Option<Value> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version)
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
}

#[test]
fn generated_crds_cover_every_upstream_property() {
    let Some(dir) = corpus() else { return };
    let ours: BTreeMap<String, Value> = capi_core::crd::core_crds()
        .expect("core CRDs build")
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                serde_json::to_value(c).expect("CRD to JSON"),
            )
        })
        .collect();
    let (mut paths, mut typed, mut kw_total, mut kw_same) = (0usize, 0usize, 0usize, 0usize);
    let mut missing = Vec::new();
    let mut kw_diff = Vec::new();
    for kind in [
        "clusters",
        "machines",
        "machinesets",
        "machinedeployments",
        "machinehealthchecks",
        "machinepools",
    ] {
        let name = format!("{kind}.cluster.x-k8s.io");
        let text = std::fs::read_to_string(dir.join(format!("cluster.x-k8s.io_{kind}.yaml")))
            .expect("read CRD");
        let upstream: Value = serde_saphyr::from_str(&text).expect("parse CRD");
        let ours = ours
            .get(&name)
            .unwrap_or_else(|| panic!("we generate no {name}"));
        for version in ["v1beta1", "v1beta2"] {
            let (mut up, mut us) = (BTreeMap::new(), BTreeMap::new());
            walk(
                &schema_of(&upstream, version).expect("upstream version"),
                String::new(),
                &mut up,
            );
            walk(
                &schema_of(ours, version).expect("our version"),
                String::new(),
                &mut us,
            );
            for (path, node) in &up {
                paths += 1;
                let Some(mine) = us.get(path) else {
                    missing.push(format!("{name} {version} {path}: missing"));
                    continue;
                };
                if node.get("type") == mine.get("type") {
                    typed += 1;
                } else {
                    missing.push(format!(
                        "{name} {version} {path}: type {:?} vs ours {:?}",
                        node.get("type"),
                        mine.get("type")
                    ));
                }
                for k in KEYWORDS {
                    if let Some(v) = node.get(*k) {
                        kw_total += 1;
                        if mine.get(*k).is_some_and(|m| same(m, v)) {
                            kw_same += 1;
                        } else {
                            kw_diff.push(format!(
                                "{name} {version} {path}: {k} {v} vs ours {:?}",
                                mine.get(*k)
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "schema coverage: {typed}/{paths} upstream property paths present with the same type ({:.1}%)",
        100.0 * typed as f64 / paths as f64
    );
    println!(
        "validation keywords: {kw_same}/{kw_total} identical ({:.1}%)",
        100.0 * kw_same as f64 / kw_total as f64
    );
    for d in kw_diff.iter().take(200) {
        println!("  keyword differs: {d}");
    }
    assert!(
        missing.is_empty(),
        "{} paths missing or mistyped:\n{}",
        missing.len(),
        missing.join("\n")
    );
}
