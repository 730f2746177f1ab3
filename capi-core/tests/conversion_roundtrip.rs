//! proptest: v1beta2 → v1beta1 → v1beta2 gives back the original (the conversion-data
//! annotation carries what v1beta1 cannot hold), and v1beta1 → v1beta2 → v1beta1 gives back the
//! original up to what upstream documents as lossy.

mod common;

use capi_core::convert::{
    cluster_to_v1beta1, cluster_to_v1beta2, machine_to_v1beta1, machine_to_v1beta2,
};
use capi_core::{v1beta1, v1beta2};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    })
}

fn any_version(_: &str, _: &str) -> Option<String> {
    Some("v1beta2".into())
}

#[test]
fn hub_spoke_hub_is_identity() {
    let schema = common::core_schema("clusters.cluster.x-k8s.io", "v1beta2");
    runner()
        .run(
            &common::object("cluster.x-k8s.io/v1beta2", "Cluster", &schema),
            |doc: Value| {
                let hub: v1beta2::Cluster =
                    serde_json::from_value(doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let spoke = cluster_to_v1beta1(&hub, &any_version)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back =
                    cluster_to_v1beta2(&spoke).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, hub);
                Ok(())
            },
        )
        .unwrap();
    let schema = common::core_schema("machines.cluster.x-k8s.io", "v1beta2");
    runner()
        .run(
            &common::object("cluster.x-k8s.io/v1beta2", "Machine", &schema),
            |doc: Value| {
                let hub: v1beta2::Machine =
                    serde_json::from_value(doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let spoke = machine_to_v1beta1(&hub, &any_version)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back =
                    machine_to_v1beta2(&spoke).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, hub);
                Ok(())
            },
        )
        .unwrap();
}

/// What upstream loses going v1beta1 → v1beta2 → v1beta1, applied to the original.
fn normalize(
    mut v: Value,
    durations: &[&str],
    versions: &dyn Fn(&str, &str) -> Option<String>,
) -> Value {
    let ns = v["metadata"]["namespace"].clone();
    for path in [
        "spec.controlPlaneRef",
        "spec.infrastructureRef",
        "spec.bootstrap.configRef",
    ] {
        if let Some(r) = pointer_mut(&mut v, path)
            && r.is_object()
        {
            let text = |k: &str| Value::String(r[k].as_str().unwrap_or_default().to_owned());
            // The version comes back from the resolver, the group from the original.
            let group = r["apiVersion"]
                .as_str()
                .and_then(|a| a.rsplit_once('/'))
                .map_or("", |(g, _)| g)
                .to_owned();
            let version =
                versions(&group, r["kind"].as_str().unwrap_or_default()).unwrap_or_default();
            let av = if group.is_empty() {
                json!(version)
            } else {
                json!(format!("{group}/{version}"))
            };
            *r = json!({"apiVersion": av, "kind": text("kind"), "name": text("name"), "namespace": ns});
        }
    }
    if let Some(r) = pointer_mut(&mut v, "status.nodeRef")
        && r.is_object()
    {
        *r = json!({"apiVersion": "v1", "kind": "Node", "name": r["name"].as_str().unwrap_or_default()});
    }
    // Remediation templates keep only apiVersion, kind and name.
    let template_ref = |r: &mut Value| {
        if r.is_object() {
            let text = |k: &str| Value::String(r[k].as_str().unwrap_or_default().to_owned());
            *r = json!({"apiVersion": text("apiVersion"), "kind": text("kind"), "name": text("name")});
        }
    };
    if let Some(r) = pointer_mut(
        &mut v,
        "spec.topology.controlPlane.machineHealthCheck.remediationTemplate",
    ) {
        template_ref(r);
    }
    if let Some(Value::Array(mds)) = pointer_mut(&mut v, "spec.topology.workers.machineDeployments")
    {
        for md in mds {
            // A strategy without a type gets v1beta1's default.
            if let Some(st) = pointer_mut(md, "strategy")
                && (st.get("rollingUpdate").is_some_and(|r| {
                    r.as_object()
                        .is_some_and(|o| o.keys().any(|k| k != "deletePolicy"))
                }) || st.get("type").is_some())
                && st.get("type").is_none()
            {
                st["type"] = json!("RollingUpdate");
            }
            if let Some(r) = pointer_mut(md, "machineHealthCheck.remediationTemplate") {
                template_ref(r);
            }
        }
    }
    if let Some(t) = pointer_mut(&mut v, "spec.topology").and_then(Value::as_object_mut) {
        t.remove("rolloutAfter");
        if let Some(Value::Array(vars)) = t.get_mut("variables") {
            for var in vars.iter_mut().filter_map(Value::as_object_mut) {
                var.remove("definitionFrom");
            }
        }
    }
    for path in durations {
        canonical_durations(&mut v, &path.split('.').collect::<Vec<_>>());
    }
    prune(&mut v);
    v
}

/// Empty objects do not survive (Go's omitzero drops them too).
fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(prune);
            m.retain(|k, c| k == "spec" || !matches!(c, Value::Object(o) if o.is_empty()));
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

fn pointer_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(v, |v, k| v.get_mut(k))
}

/// Go durations come back in canonical form (`600s` → `10m0s`); invalid ones cannot exist in Go.
fn canonical_durations(v: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            if let Some(o) = v.as_object_mut()
                && let Some(d) = o.get(*last).and_then(Value::as_str).map(str::to_owned)
            {
                match go_duration_seconds(&d) {
                    Some(s) => o.insert((*last).to_owned(), Value::String(go_duration(s))),
                    None => o.remove(*last),
                };
            }
        }
        ["[]", rest @ ..] => {
            if let Value::Array(items) = v {
                items.iter_mut().for_each(|i| canonical_durations(i, rest));
            }
        }
        [k, rest @ ..] => {
            if let Some(child) = v.get_mut(*k) {
                canonical_durations(child, rest);
            }
        }
    }
}

fn go_duration_seconds(d: &str) -> Option<i64> {
    // Same grammar as the library's parser: numbers with units ns, us, ms, s, m, h.
    let mut rest = d;
    let mut nanos = 0f64;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        nanos += num
            * match &rest[..u] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return None,
            };
        rest = &rest[u..];
    }
    Some((nanos / 1e9).trunc() as i64)
}

fn go_duration(s: i64) -> String {
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if s == 0 {
        "0s".into()
    } else if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

fn without_conversion_data(mut v: Value) -> Value {
    if let Some(a) = v["metadata"]
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("cluster.x-k8s.io/conversion-data");
        if a.is_empty() {
            v["metadata"]
                .as_object_mut()
                .map(|m| m.remove("annotations"));
        }
    }
    v
}

fn version_of(doc: &Value) -> impl Fn(&str, &str) -> Option<String> + use<> {
    let mut known = std::collections::BTreeMap::new();
    for path in [
        "spec.controlPlaneRef",
        "spec.infrastructureRef",
        "spec.bootstrap.configRef",
    ] {
        let r = path.split('.').try_fold(doc, |v, k| v.get(k));
        if let Some(r) = r
            && let (Some(av), Some(kind)) = (r["apiVersion"].as_str(), r["kind"].as_str())
        {
            let (g, ver) = av.rsplit_once('/').unwrap_or(("", av));
            known.insert((g.to_owned(), kind.to_owned()), ver.to_owned());
        }
    }
    move |g: &str, k: &str| {
        Some(
            known
                .get(&(g.to_owned(), k.to_owned()))
                .cloned()
                .unwrap_or_else(|| "v1".into()),
        )
    }
}

const CLUSTER_DURATIONS: &[&str] = &[
    "spec.topology.controlPlane.nodeDrainTimeout",
    "spec.topology.controlPlane.nodeVolumeDetachTimeout",
    "spec.topology.controlPlane.nodeDeletionTimeout",
    "spec.topology.controlPlane.machineHealthCheck.nodeStartupTimeout",
    "spec.topology.controlPlane.machineHealthCheck.unhealthyConditions.[].timeout",
    "spec.topology.controlPlane.machineHealthCheck.unhealthyMachineConditions.[].timeout",
    "spec.topology.workers.machineDeployments.[].nodeDrainTimeout",
    "spec.topology.workers.machineDeployments.[].nodeVolumeDetachTimeout",
    "spec.topology.workers.machineDeployments.[].nodeDeletionTimeout",
    "spec.topology.workers.machineDeployments.[].machineHealthCheck.nodeStartupTimeout",
    "spec.topology.workers.machineDeployments.[].machineHealthCheck.unhealthyConditions.[].timeout",
    "spec.topology.workers.machineDeployments.[].machineHealthCheck.unhealthyMachineConditions.[].timeout",
    "spec.topology.workers.machinePools.[].nodeDrainTimeout",
    "spec.topology.workers.machinePools.[].nodeVolumeDetachTimeout",
    "spec.topology.workers.machinePools.[].nodeDeletionTimeout",
];

const MACHINE_DURATIONS: &[&str] = &[
    "spec.nodeDrainTimeout",
    "spec.nodeVolumeDetachTimeout",
    "spec.nodeDeletionTimeout",
];

#[test]
fn spoke_hub_spoke_keeps_what_upstream_keeps() {
    let schema = common::core_schema("clusters.cluster.x-k8s.io", "v1beta1");
    runner()
        .run(
            &common::object("cluster.x-k8s.io/v1beta1", "Cluster", &schema),
            |doc: Value| {
                let spoke: v1beta1::Cluster = serde_json::from_value(doc.clone())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let hub =
                    cluster_to_v1beta2(&spoke).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let versions = version_of(&doc);
                let back = cluster_to_v1beta1(&hub, &versions)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back = without_conversion_data(serde_json::to_value(&back).unwrap());
                let want = normalize(
                    serde_json::to_value(&spoke).unwrap(),
                    CLUSTER_DURATIONS,
                    &versions,
                );
                prop_assert_eq!(normalize(back, CLUSTER_DURATIONS, &versions), want);
                Ok(())
            },
        )
        .unwrap();
    let schema = common::core_schema("machines.cluster.x-k8s.io", "v1beta1");
    runner()
        .run(
            &common::object("cluster.x-k8s.io/v1beta1", "Machine", &schema),
            |doc: Value| {
                let spoke: v1beta1::Machine = serde_json::from_value(doc.clone())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let hub =
                    machine_to_v1beta2(&spoke).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let versions = version_of(&doc);
                let back = machine_to_v1beta1(&hub, &versions)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back = without_conversion_data(serde_json::to_value(&back).unwrap());
                let want = normalize(
                    serde_json::to_value(&spoke).unwrap(),
                    MACHINE_DURATIONS,
                    &versions,
                );
                prop_assert_eq!(normalize(back, MACHINE_DURATIONS, &versions), want);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn corpus_v1beta1_clusters_convert_to_valid_v1beta2() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/cluster-api-v1.10/templates");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: {} is absent", dir.display());
        return;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = capi_core::template::substitute(&text, |name| match name {
            "CLUSTER_NAME" => Some("demo".into()),
            "NAMESPACE" => Some("default".into()),
            "KUBERNETES_VERSION" => Some("v1.34.0".into()),
            "CONTROL_PLANE_MACHINE_COUNT" | "WORKER_MACHINE_COUNT" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            if doc["apiVersion"] == "cluster.x-k8s.io/v1beta1" && doc["kind"] == "Cluster" {
                let spoke: v1beta1::Cluster = serde_json::from_value(doc).unwrap();
                let hub = cluster_to_v1beta2(&spoke).unwrap();
                let topology = hub
                    .spec
                    .topology
                    .as_ref()
                    .expect("the templates use a topology");
                assert_eq!(
                    Some(topology.class_ref.name.as_str()),
                    spoke.spec.topology.as_ref().map(|t| t.class.as_str())
                );
                n += 1;
            }
        }
    }
    assert!(n > 0);
}
