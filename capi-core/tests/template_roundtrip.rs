//! Every object of ours in the upstream cluster templates (v1beta2 in ../shared/corpus/cluster-api,
//! v1beta1 in ../shared/corpus/cluster-api-v1.10) deserializes into our types and serializes back
//! to the same JSON: nothing lost, nothing added.

use std::path::PathBuf;

use capi_core::template::substitute;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
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

/// Values a user would give `clusterctl generate cluster`.
fn value(name: &str) -> Option<String> {
    Some(
        match name {
            "CLUSTER_NAME" => "demo",
            "NAMESPACE" => "default",
            "KUBERNETES_VERSION" => "v1.34.0",
            "CONTROL_PLANE_MACHINE_COUNT" => "3",
            "WORKER_MACHINE_COUNT" => "2",
            _ => return None,
        }
        .to_owned(),
    )
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

fn check(doc: &Value) -> Option<Result<Value, String>> {
    use capi_core::{v1beta1, v1beta2};
    let api_version = doc["apiVersion"].as_str()?;
    let kind = doc["kind"].as_str()?;
    Some(match (api_version, kind) {
        ("cluster.x-k8s.io/v1beta1", "Cluster") => round_trip::<v1beta1::Cluster>(doc),
        ("cluster.x-k8s.io/v1beta1", "Machine") => round_trip::<v1beta1::Machine>(doc),
        ("cluster.x-k8s.io/v1beta1", "MachineSet") => round_trip::<v1beta1::MachineSet>(doc),
        ("cluster.x-k8s.io/v1beta1", "MachineDeployment") => {
            round_trip::<v1beta1::MachineDeployment>(doc)
        }
        ("cluster.x-k8s.io/v1beta1", "MachineHealthCheck") => {
            round_trip::<v1beta1::MachineHealthCheck>(doc)
        }
        ("cluster.x-k8s.io/v1beta1", "MachinePool") => round_trip::<v1beta1::MachinePool>(doc),
        ("cluster.x-k8s.io/v1beta2", "Cluster") => round_trip::<v1beta2::Cluster>(doc),
        ("cluster.x-k8s.io/v1beta2", "Machine") => round_trip::<v1beta2::Machine>(doc),
        ("cluster.x-k8s.io/v1beta2", "MachineSet") => round_trip::<v1beta2::MachineSet>(doc),
        ("cluster.x-k8s.io/v1beta2", "MachineDeployment") => {
            round_trip::<v1beta2::MachineDeployment>(doc)
        }
        ("cluster.x-k8s.io/v1beta2", "MachineHealthCheck") => {
            round_trip::<v1beta2::MachineHealthCheck>(doc)
        }
        ("cluster.x-k8s.io/v1beta2", "MachinePool") => round_trip::<v1beta2::MachinePool>(doc),
        _ => return None,
    })
}

#[test]
fn corpus_template_objects_round_trip_unchanged() {
    let Some(root) = corpus() else { return };
    let mut checked = Vec::new();
    for release in ["cluster-api", "cluster-api-v1.10"] {
        let dir = root.join(release).join("templates");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("templates dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read template");
            let text =
                substitute(&text, value).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for doc in docs.iter().filter(|d| !d.is_null()) {
                let Some(result) = check(doc) else { continue };
                let what = format!(
                    "{release}/{} {} {}",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    doc["apiVersion"],
                    doc["metadata"]["name"]
                );
                let back = result.unwrap_or_else(|e| panic!("{what}: does not deserialize: {e}"));
                assert_eq!(&back, doc, "{what}: changed by a round trip");
                checked.push(what);
            }
        }
    }
    println!("round-tripped {} objects: {checked:#?}", checked.len());
    assert!(
        checked.iter().any(|c| c.contains("v1beta1")),
        "no v1beta1 object checked"
    );
    assert!(
        checked.iter().any(|c| c.contains("v1beta2")),
        "no v1beta2 object checked"
    );
}
