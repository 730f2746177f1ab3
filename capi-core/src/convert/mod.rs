//! Conversion between the v1beta1 and v1beta2 forms of Cluster and Machine, as CAPI converts.
//!
//! v1beta2 is the hub. Going down (v1beta2 → v1beta1) the whole v1beta2 object (without
//! metadata) is kept in the `cluster.x-k8s.io/conversion-data` annotation, as upstream's
//! `utilconversion.MarshalData` does; going up, an unmodified v1beta1 object gives back exactly
//! the v1beta2 object it came from, and a modified one gets the fields v1beta1 cannot hold
//! (Machine `spec.minReadySeconds`, `status.failureDomain`) restored from the annotation.
//!
//! Lossy where upstream is lossy (v1beta1 → v1beta2 → v1beta1): the `uid`, `resourceVersion`,
//! `fieldPath` and `namespace` of object references (v1beta2 keeps group, kind and name; the
//! version comes back from an [`ApiVersionResolver`], the namespace is the object's), the
//! topology's `rolloutAfter` and variables' `definitionFrom`, and empty objects.
//!
//! ```
//! use capi_core::convert::{cluster_to_v1beta1, cluster_to_v1beta2};
//! use capi_core::v1beta2::{Cluster, ClusterSpec, ContractVersionedObjectReference};
//!
//! let mut hub = Cluster::new("c1", ClusterSpec::default());
//! hub.metadata.namespace = Some("default".into());
//! hub.spec.infrastructure_ref = Some(ContractVersionedObjectReference {
//!     api_group: "infrastructure.cluster.x-k8s.io".into(), kind: "DevCluster".into(), name: "c1".into(),
//! });
//! let versions = |_group: &str, _kind: &str| Some("v1beta2".to_string());
//! let spoke = cluster_to_v1beta1(&hub, &versions).unwrap();
//! let r = spoke.spec.infrastructure_ref.as_ref().unwrap();
//! assert_eq!(r.api_version.as_deref(), Some("infrastructure.cluster.x-k8s.io/v1beta2"));
//! assert_eq!(cluster_to_v1beta2(&spoke).unwrap(), hub);
//! ```

mod json;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::labels::CONVERSION_DATA;
use crate::{v1beta1, v1beta2};
use json::{each, get_mut, mv, mv_with, put, take, to_duration, to_seconds};

/// Why an object could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    /// The object did not fit the target type.
    #[error("converted object does not fit the target version: {0}")]
    Json(#[from] serde_json::Error),
    /// A reference's API version is unknown (v1beta1 references need one).
    #[error("no API version known for {group}/{kind} (v1beta1 references carry one)")]
    UnknownVersion {
        /// API group.
        group: String,
        /// Kind.
        kind: String,
    },
}

/// The API version to write into v1beta1 references, which v1beta2 references do not carry
/// (upstream asks the CRD's contract labels, see [`crate::contract::select_version`]).
pub trait ApiVersionResolver {
    /// The version (e.g. `v1beta2`) of `group`/`kind`, if known.
    fn version(&self, group: &str, kind: &str) -> Option<String>;
}

impl<F: Fn(&str, &str) -> Option<String>> ApiVersionResolver for F {
    fn version(&self, group: &str, kind: &str) -> Option<String> {
        self(group, kind)
    }
}

fn to_value<T: Serialize>(t: &T) -> Result<Value, ConversionError> {
    Ok(serde_json::to_value(t)?)
}

fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ConversionError> {
    Ok(serde_json::from_value(v)?)
}

/// v1beta1 `corev1.ObjectReference` → v1beta2 `{apiGroup, kind, name}`.
fn ref_up(v: Value) -> Option<Value> {
    let group = v["apiVersion"]
        .as_str()
        .map(|av| av.rsplit_once('/').map_or("", |(g, _)| g))
        .unwrap_or("");
    let text = |k: &str| Value::String(v[k].as_str().unwrap_or_default().to_owned());
    Some(json!({"apiGroup": group, "kind": text("kind"), "name": text("name")}))
}

fn ref_down(
    v: &Value,
    namespace: &Value,
    versions: &dyn ApiVersionResolver,
) -> Result<Value, ConversionError> {
    let group = v["apiGroup"].as_str().unwrap_or_default();
    let kind = v["kind"].as_str().unwrap_or_default();
    let version = versions
        .version(group, kind)
        .ok_or_else(|| ConversionError::UnknownVersion {
            group: group.into(),
            kind: kind.into(),
        })?;
    let api_version = if group.is_empty() {
        version
    } else {
        format!("{group}/{version}")
    };
    let mut r = json!({"apiVersion": api_version, "kind": kind, "name": v["name"]});
    if !namespace.is_null() {
        r["namespace"] = namespace.clone();
    }
    Ok(r)
}

fn convert_ref_down(
    obj: &mut Value,
    path: &str,
    namespace: &Value,
    versions: &dyn ApiVersionResolver,
) -> Result<(), ConversionError> {
    if let Some(r) = take(obj, path) {
        put(obj, path, Some(ref_down(&r, namespace, versions)?));
    }
    Ok(())
}

/// Moves the annotation's stored hub out of the metadata.
fn take_conversion_data(spoke: &mut Value) -> Option<Value> {
    let annotations = get_mut(spoke, "metadata.annotations")?.as_object_mut()?;
    let data = annotations.remove(CONVERSION_DATA)?;
    if annotations.is_empty() {
        take(spoke, "metadata.annotations");
    }
    serde_json::from_str(data.as_str()?).ok()
}

fn store_conversion_data(spoke: &mut Value, hub: &Value) -> Result<(), ConversionError> {
    let mut data = hub.clone();
    if let Some(m) = data.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
    }
    let text = serde_json::to_string(&data)?;
    let existing = get_mut(spoke, "metadata.annotations")
        .map(Value::take)
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    put(spoke, "metadata.annotations", Some(existing));
    if let Some(Value::Object(a)) = get_mut(spoke, "metadata.annotations") {
        a.insert(CONVERSION_DATA.to_owned(), Value::String(text));
    }
    Ok(())
}

/// The v1beta1 topology's MachineHealthCheck → v1beta2 healthCheck.
fn health_check_up(mhc: Value) -> Option<Value> {
    let mut m = mhc;
    let mut out = Value::Object(Map::new());
    mv(&mut m, "enable", "enabled");
    put(&mut out, "enabled", take(&mut m, "enabled"));
    put(
        &mut out,
        "checks.nodeStartupTimeoutSeconds",
        take(&mut m, "nodeStartupTimeout").and_then(to_seconds),
    );
    for (from, to) in [
        ("unhealthyConditions", "checks.unhealthyNodeConditions"),
        (
            "unhealthyMachineConditions",
            "checks.unhealthyMachineConditions",
        ),
    ] {
        if let Some(Value::Array(items)) = take(&mut m, from) {
            let converted = items.into_iter().map(|mut c| {
                mv_with(&mut c, "timeout", "timeoutSeconds", to_seconds);
                c
            });
            put(&mut out, to, Some(Value::Array(converted.collect())));
        }
    }
    put(
        &mut out,
        "remediation.triggerIf.unhealthyLessThanOrEqualTo",
        take(&mut m, "maxUnhealthy"),
    );
    put(
        &mut out,
        "remediation.triggerIf.unhealthyInRange",
        take(&mut m, "unhealthyRange"),
    );
    let text = |r: &Value, k: &str| Value::String(r[k].as_str().unwrap_or_default().to_owned());
    put(&mut out, "remediation.templateRef", take(&mut m, "remediationTemplate").map(|r| json!({"apiVersion": text(&r, "apiVersion"), "kind": text(&r, "kind"), "name": text(&r, "name")})));
    Some(out)
}

fn health_check_down(hc: Value) -> Option<Value> {
    let mut h = hc;
    let mut out = Value::Object(Map::new());
    put(&mut out, "enable", take(&mut h, "enabled"));
    put(
        &mut out,
        "nodeStartupTimeout",
        take(&mut h, "checks.nodeStartupTimeoutSeconds").and_then(to_duration),
    );
    for (from, to) in [
        ("checks.unhealthyNodeConditions", "unhealthyConditions"),
        (
            "checks.unhealthyMachineConditions",
            "unhealthyMachineConditions",
        ),
    ] {
        if let Some(Value::Array(items)) = take(&mut h, from) {
            let converted = items.into_iter().map(|mut c| {
                mv_with(&mut c, "timeoutSeconds", "timeout", to_duration);
                c
            });
            put(&mut out, to, Some(Value::Array(converted.collect())));
        }
    }
    put(
        &mut out,
        "maxUnhealthy",
        take(&mut h, "remediation.triggerIf.unhealthyLessThanOrEqualTo"),
    );
    put(
        &mut out,
        "unhealthyRange",
        take(&mut h, "remediation.triggerIf.unhealthyInRange"),
    );
    put(
        &mut out,
        "remediationTemplate",
        take(&mut h, "remediation.templateRef"),
    );
    Some(out)
}

const TIMEOUTS: [(&str, &str); 3] = [
    ("nodeDrainTimeout", "deletion.nodeDrainTimeoutSeconds"),
    (
        "nodeVolumeDetachTimeout",
        "deletion.nodeVolumeDetachTimeoutSeconds",
    ),
    ("nodeDeletionTimeout", "deletion.nodeDeletionTimeoutSeconds"),
];

fn timeouts_up(obj: &mut Value) {
    for (from, to) in TIMEOUTS {
        mv_with(obj, from, to, to_seconds);
    }
}

fn timeouts_down(obj: &mut Value) {
    for (from, to) in TIMEOUTS {
        mv_with(obj, to, from, to_duration);
    }
}

fn topology_up(spec: &mut Value) {
    let Some(t) = get_mut(spec, "topology") else {
        return;
    };
    mv(t, "class", "classRef.name");
    mv(t, "classNamespace", "classRef.namespace");
    take(t, "rolloutAfter");
    each(t, "variables", |v| {
        take(v, "definitionFrom");
    });
    if let Some(cp) = get_mut(t, "controlPlane") {
        timeouts_up(cp);
        mv_with(cp, "machineHealthCheck", "healthCheck", health_check_up);
    }
    each(t, "workers.machineDeployments", |md| {
        timeouts_up(md);
        mv_with(md, "machineHealthCheck", "healthCheck", health_check_up);
        mv(
            md,
            "strategy.remediation.maxInFlight",
            "healthCheck.remediation.maxInFlight",
        );
        mv(md, "strategy.rollingUpdate.deletePolicy", "deletion.order");
        mv(md, "strategy.type", "rollout.strategy.type");
        mv(
            md,
            "strategy.rollingUpdate",
            "rollout.strategy.rollingUpdate",
        );
        for vacated in [
            "rollout.strategy.rollingUpdate",
            "rollout.strategy",
            "rollout",
        ] {
            if matches!(get_mut(md, vacated), Some(Value::Object(m)) if m.is_empty()) {
                take(md, vacated);
            }
        }
        // v1beta2 requires the type; v1beta1 defaulted it to RollingUpdate.
        if let Some(strategy) = get_mut(md, "rollout.strategy")
            && strategy.get("type").is_none()
        {
            strategy["type"] = json!("RollingUpdate");
        }
        take(md, "strategy");
    });
    each(t, "workers.machinePools", timeouts_up);
}

fn topology_down(spec: &mut Value) {
    let Some(t) = get_mut(spec, "topology") else {
        return;
    };
    mv(t, "classRef.name", "class");
    mv(t, "classRef.namespace", "classNamespace");
    take(t, "classRef");
    if let Some(cp) = get_mut(t, "controlPlane") {
        timeouts_down(cp);
        mv_with(cp, "healthCheck", "machineHealthCheck", health_check_down);
    }
    each(t, "workers.machineDeployments", |md| {
        mv(
            md,
            "healthCheck.remediation.maxInFlight",
            "strategy.remediation.maxInFlight",
        );
        mv(md, "deletion.order", "strategy.rollingUpdate.deletePolicy");
        mv(md, "rollout.strategy.type", "strategy.type");
        if let Some(ru) = take(md, "rollout.strategy.rollingUpdate")
            && let Value::Object(fields) = ru
        {
            for (k, v) in fields {
                put(md, &format!("strategy.rollingUpdate.{k}"), Some(v));
            }
        }
        timeouts_down(md);
        mv_with(md, "healthCheck", "machineHealthCheck", health_check_down);
    });
    each(t, "workers.machinePools", timeouts_down);
}

/// Cluster v1beta1 status → v1beta2 status.
fn cluster_status_up(status: &mut Value) {
    mv(status, "conditions", "deprecated.v1beta1.conditions");
    mv(status, "failureReason", "deprecated.v1beta1.failureReason");
    mv(
        status,
        "failureMessage",
        "deprecated.v1beta1.failureMessage",
    );
    mv(status, "v1beta2.conditions", "conditions");
    mv(status, "v1beta2.controlPlane", "controlPlane");
    mv(status, "v1beta2.workers", "workers");
    take(status, "v1beta2");
    mv(
        status,
        "infrastructureReady",
        "initialization.infrastructureProvisioned",
    );
    mv(
        status,
        "controlPlaneReady",
        "initialization.controlPlaneInitialized",
    );
    if let Some(Value::Object(map)) = take(status, "failureDomains") {
        // Map → list sorted by name (a BTreeMap-backed object is already sorted).
        let mut list: Vec<(String, Value)> = map.into_iter().collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let items = list
            .into_iter()
            .map(|(name, mut fd)| {
                if let Some(o) = fd.as_object_mut() {
                    o.insert("name".into(), Value::String(name));
                }
                fd
            })
            .collect();
        put(status, "failureDomains", Some(Value::Array(items)));
    }
}

fn cluster_status_down(status: &mut Value) {
    mv(status, "conditions", "v1beta2.conditions");
    mv(status, "controlPlane", "v1beta2.controlPlane");
    mv(status, "workers", "v1beta2.workers");
    mv(status, "deprecated.v1beta1.conditions", "conditions");
    mv(status, "deprecated.v1beta1.failureReason", "failureReason");
    mv(
        status,
        "deprecated.v1beta1.failureMessage",
        "failureMessage",
    );
    take(status, "deprecated");
    mv(
        status,
        "initialization.infrastructureProvisioned",
        "infrastructureReady",
    );
    mv(
        status,
        "initialization.controlPlaneInitialized",
        "controlPlaneReady",
    );
    take(status, "initialization");
    if let Some(Value::Array(items)) = take(status, "failureDomains") {
        let mut map = Map::new();
        for mut fd in items {
            let name = fd
                .as_object_mut()
                .and_then(|o| o.remove("name"))
                .and_then(|n| n.as_str().map(str::to_owned))
                .unwrap_or_default();
            map.insert(name, fd);
        }
        put(status, "failureDomains", Some(Value::Object(map)));
    }
}

fn machine_status_up(status: &mut Value) {
    mv(status, "conditions", "deprecated.v1beta1.conditions");
    mv(status, "failureReason", "deprecated.v1beta1.failureReason");
    mv(
        status,
        "failureMessage",
        "deprecated.v1beta1.failureMessage",
    );
    mv(status, "v1beta2.conditions", "conditions");
    take(status, "v1beta2");
    mv(
        status,
        "infrastructureReady",
        "initialization.infrastructureProvisioned",
    );
    mv(
        status,
        "bootstrapReady",
        "initialization.bootstrapDataSecretCreated",
    );
    mv_with(status, "nodeRef", "nodeRef", |r| {
        Some(json!({"name": r["name"].as_str().unwrap_or_default()}))
    });
}

fn machine_status_down(status: &mut Value) {
    mv(status, "conditions", "v1beta2.conditions");
    mv(status, "deprecated.v1beta1.conditions", "conditions");
    mv(status, "deprecated.v1beta1.failureReason", "failureReason");
    mv(
        status,
        "deprecated.v1beta1.failureMessage",
        "failureMessage",
    );
    take(status, "deprecated");
    mv(
        status,
        "initialization.infrastructureProvisioned",
        "infrastructureReady",
    );
    mv(
        status,
        "initialization.bootstrapDataSecretCreated",
        "bootstrapReady",
    );
    take(status, "initialization");
    take(status, "failureDomain");
    // v1beta1 has no `Updating` phase; the annotation brings it back.
    if status["phase"] == "Updating" {
        take(status, "phase");
    }
    mv_with(status, "nodeRef", "nodeRef", |r| {
        Some(json!({"apiVersion": "v1", "kind": "Node", "name": r["name"]}))
    });
}

fn set_api_version(obj: &mut Value, version: &str) {
    obj["apiVersion"] = Value::String(format!("{}/{version}", crate::GROUP));
}

/// Removes the containers moves may have emptied (never objects the user wrote empty elsewhere).
fn prune_vacated(obj: &mut Value, rules: &Rules) {
    for path in rules.vacated {
        if matches!(get_mut(obj, path), Some(Value::Object(m)) if m.is_empty()) {
            take(obj, path);
        }
    }
    for list in rules.vacated_in_lists {
        let (items, inner) = list.split_once("[].").unwrap_or((list, ""));
        each(obj, items, |item| {
            for p in inner.split(',') {
                if matches!(get_mut(item, p), Some(Value::Object(m)) if m.is_empty()) {
                    take(item, p);
                }
            }
        });
    }
}

/// Shared shape of both kinds' conversions.
struct Rules {
    refs: &'static [&'static str],
    spec_up: fn(&mut Value),
    spec_down: fn(&mut Value),
    status_up: fn(&mut Value),
    status_down: fn(&mut Value),
    /// Hub paths v1beta1 cannot hold, restored from the annotation after edits of the spoke.
    hub_only: &'static [&'static str],
    /// Containers that moves can leave empty, deepest first.
    vacated: &'static [&'static str],
    /// The same inside list items: `list[].a,b.c`.
    vacated_in_lists: &'static [&'static str],
}

/// `spoke` → hub; `typed` passes a spoke through its Rust type (dropping what it cannot hold),
/// so the edit check compares like with like.
fn up(
    spoke: Value,
    rules: &Rules,
    typed: fn(Value) -> Result<Value, ConversionError>,
) -> Result<Value, ConversionError> {
    let mut obj = spoke;
    let restored = take_conversion_data(&mut obj);
    // The versions the spoke's references carry, to convert the hub down again for comparison.
    let mut known = std::collections::BTreeMap::new();
    for path in rules.refs {
        let mut o = obj.clone();
        if let Some(r) = take(&mut o, path)
            && let (Some(av), Some(kind)) = (r["apiVersion"].as_str(), r["kind"].as_str())
        {
            let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
            known.insert((group.to_owned(), kind.to_owned()), version.to_owned());
        }
    }
    let down_again = |hub: &Value| {
        down(hub, rules, &|g: &str, k: &str| {
            known.get(&(g.to_owned(), k.to_owned())).cloned()
        })
    };
    let mut converted = obj.clone();
    set_api_version(&mut converted, "v1beta2");
    for path in rules.refs {
        mv_with(&mut converted, path, path, ref_up);
    }
    if let Some(spec) = converted.get_mut("spec") {
        (rules.spec_up)(spec);
    }
    if let Some(status) = converted.get_mut("status") {
        (rules.status_up)(status);
    }
    prune_vacated(&mut converted, rules);
    let Some(restored) = restored else {
        return Ok(converted);
    };
    // Unmodified since it was converted down: give back the original exactly.
    let mut hub = restored.clone();
    if let (Some(h), Some(o)) = (hub.as_object_mut(), converted.as_object()) {
        for k in ["apiVersion", "kind", "metadata"] {
            if let Some(v) = o.get(k) {
                h.insert(k.to_owned(), v.clone());
            }
        }
    }
    let mut spoke_again = typed(down_again(&hub)?)?;
    take_conversion_data(&mut spoke_again);
    if spoke_again == obj {
        return Ok(hub);
    }
    for path in rules.hub_only {
        let mut r = restored.clone();
        put(&mut converted, path, take(&mut r, path));
    }
    Ok(converted)
}

fn down(
    hub: &Value,
    rules: &Rules,
    versions: &dyn ApiVersionResolver,
) -> Result<Value, ConversionError> {
    let mut obj = hub.clone();
    set_api_version(&mut obj, "v1beta1");
    let namespace = obj["metadata"]["namespace"].clone();
    for path in rules.refs {
        convert_ref_down(&mut obj, path, &namespace, versions)?;
    }
    if let Some(spec) = obj.get_mut("spec") {
        (rules.spec_down)(spec);
    }
    if let Some(status) = obj.get_mut("status") {
        (rules.status_down)(status);
    }
    prune_vacated(&mut obj, rules);
    store_conversion_data(&mut obj, hub)?;
    Ok(obj)
}

const CLUSTER: Rules = Rules {
    refs: &["spec.controlPlaneRef", "spec.infrastructureRef"],
    spec_up: topology_up,
    spec_down: topology_down,
    status_up: cluster_status_up,
    status_down: cluster_status_down,
    hub_only: &[],
    vacated: &[
        "status.v1beta2",
        "status.deprecated.v1beta1",
        "status.deprecated",
        "status.initialization",
        "spec.topology.classRef",
        "spec.topology.controlPlane.deletion",
        "spec.topology.controlPlane.healthCheck.remediation.triggerIf",
        "spec.topology.controlPlane.healthCheck.remediation",
        "spec.topology.controlPlane.healthCheck.checks",
    ],
    vacated_in_lists: &[
        "spec.topology.workers.machineDeployments[].strategy.rollingUpdate,strategy.remediation,strategy,deletion,rollout.strategy.rollingUpdate,rollout.strategy,healthCheck.remediation.triggerIf,healthCheck.remediation,healthCheck.checks",
        "spec.topology.workers.machinePools[].deletion",
    ],
};

fn machine_spec_up(spec: &mut Value) {
    timeouts_up(spec);
}

fn machine_spec_down(spec: &mut Value) {
    timeouts_down(spec);
    take(spec, "minReadySeconds");
}

const MACHINE: Rules = Rules {
    refs: &["spec.bootstrap.configRef", "spec.infrastructureRef"],
    spec_up: machine_spec_up,
    spec_down: machine_spec_down,
    status_up: machine_status_up,
    status_down: machine_status_down,
    hub_only: &["spec.minReadySeconds", "status.failureDomain"],
    vacated: &[
        "status.v1beta2",
        "status.deprecated.v1beta1",
        "status.deprecated",
        "status.initialization",
        "spec.deletion",
    ],
    vacated_in_lists: &[],
};

/// Converts a v1beta1 Cluster to v1beta2.
pub fn cluster_to_v1beta2(c: &v1beta1::Cluster) -> Result<v1beta2::Cluster, ConversionError> {
    // Going down again only checks for edits, so any version does: the refs compare by group.
    from_value(up(to_value(c)?, &CLUSTER, |v| {
        to_value(&from_value::<v1beta1::Cluster>(v)?)
    })?)
}

/// Converts a v1beta2 Cluster to v1beta1; `versions` supplies the API versions of references.
pub fn cluster_to_v1beta1(
    c: &v1beta2::Cluster,
    versions: &dyn ApiVersionResolver,
) -> Result<v1beta1::Cluster, ConversionError> {
    from_value(down(&to_value(c)?, &CLUSTER, versions)?)
}

/// Converts a v1beta1 Machine to v1beta2.
pub fn machine_to_v1beta2(m: &v1beta1::Machine) -> Result<v1beta2::Machine, ConversionError> {
    from_value(up(to_value(m)?, &MACHINE, |v| {
        to_value(&from_value::<v1beta1::Machine>(v)?)
    })?)
}

/// Converts a v1beta2 Machine to v1beta1; `versions` supplies the API versions of references.
pub fn machine_to_v1beta1(
    m: &v1beta2::Machine,
    versions: &dyn ApiVersionResolver,
) -> Result<v1beta1::Machine, ConversionError> {
    from_value(down(&to_value(m)?, &MACHINE, versions)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> v1beta2::Machine {
        serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "metadata": {"name": "m1", "namespace": "ns"},
            "spec": {
                "clusterName": "c1", "version": "v1.34.0", "minReadySeconds": 30,
                "bootstrap": {"dataSecretName": "m1-bootstrap"},
                "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DevMachine", "name": "m1"},
                "deletion": {"nodeDrainTimeoutSeconds": 600}
            },
            "status": {"failureDomain": "fd-1", "initialization": {"infrastructureProvisioned": true}, "phase": "Running"}
        }))
        .unwrap()
    }

    #[test]
    fn machine_fields_map_as_upstream() {
        let spoke = machine_to_v1beta1(&machine(), &|_: &str, _: &str| Some("v1beta2".to_string()))
            .unwrap();
        let v = serde_json::to_value(&spoke).unwrap();
        assert_eq!(v["spec"]["nodeDrainTimeout"], "10m0s");
        assert_eq!(
            v["spec"]["infrastructureRef"],
            json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachine", "name": "m1", "namespace": "ns"})
        );
        assert_eq!(v["status"]["infrastructureReady"], true);
        assert!(v["spec"].get("minReadySeconds").is_none());
        assert!(v["metadata"]["annotations"][CONVERSION_DATA].is_string());
    }

    #[test]
    fn edits_of_the_spoke_keep_hub_only_fields() {
        let mut spoke =
            machine_to_v1beta1(&machine(), &|_: &str, _: &str| Some("v1beta2".to_string()))
                .unwrap();
        spoke.spec.version = Some("v1.35.0".into());
        let hub = machine_to_v1beta2(&spoke).unwrap();
        assert_eq!(hub.spec.version.as_deref(), Some("v1.35.0"));
        assert_eq!(hub.spec.min_ready_seconds, Some(30));
        assert_eq!(
            hub.status
                .as_ref()
                .and_then(|s| s.failure_domain.as_deref()),
            Some("fd-1")
        );
        assert!(
            hub.metadata
                .annotations
                .as_ref()
                .is_none_or(|a| !a.contains_key(CONVERSION_DATA))
        );
    }

    #[test]
    fn unknown_reference_versions_are_errors() {
        let err = machine_to_v1beta1(&machine(), &|_: &str, _: &str| None).unwrap_err();
        assert!(
            matches!(err, ConversionError::UnknownVersion { .. }),
            "{err}"
        );
    }
}
