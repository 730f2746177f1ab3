//! The conformance suite and the simulator against a provider following the v1beta1 contract
//! (CAPI ≤ 1.10), written here with plain kube-runtime: CRDs labelled
//! `cluster.x-k8s.io/v1beta1`, `status.ready`, map-shaped failure domains, CAPI v1beta1
//! conditions with severity. v1beta2 core reads such providers by their CRD's contract label
//! (capi-contract.md 1, 5.4), so the suite must too.

#![allow(clippy::unwrap_used, missing_docs)]

mod fixture;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capi_core::conditions::{ConditionSeverity, v1beta1 as conds};
use capi_core::contract::fields::v1beta1::{
    FailureDomainSpec, InfraClusterSpec, InfraClusterStatus, InfraMachineStatus, MachineAddress,
};
use capi_core::contract::{InfraMachineSpec, TemplateResource};
use capi_core::v1beta1::MachineAddressType;
use capi_core::v1beta2::{Cluster, Machine};
use capi_testkit::conformance::run;
use capi_testkit::env::TestEnv;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.io",
    version = "v1alpha1",
    kind = "OldMachine",
    namespaced,
    status = "OldMachineStatus"
)]
pub struct OldMachineSpec {
    /// `spec.providerID` (a `*string` in v1beta1) and the deprecated `spec.failureDomain`.
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OldMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.io",
    version = "v1alpha1",
    kind = "OldMachineTemplate",
    namespaced
)]
pub struct OldMachineTemplateSpec {
    pub template: TemplateResource<OldMachineSpec>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.io",
    version = "v1alpha1",
    kind = "OldCluster",
    namespaced,
    status = "OldClusterStatus"
)]
pub struct OldClusterSpec {
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OldClusterStatus {
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
}

/// The bugs the fixture can have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bugs {
    /// Does everything but flip `status.ready` (on both kinds).
    never_sets_ready: bool,
}

const FINALIZER: &str = "infrastructure.legacy.io/old";

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

struct Ctx {
    client: kube::Client,
    bugs: Bugs,
}

fn again() -> Action {
    Action::requeue(Duration::from_millis(150))
}

async fn set_finalizers<K>(api: &Api<K>, name: &str, finalizers: Vec<String>) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"finalizers": finalizers}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// The shared gate: owner first, pause (also of deletion), deletion, then the finalizer.
/// `Some(action)` means "stop here".
async fn gate<K>(api: &Api<K>, obj: &K, cluster: Option<&Cluster>) -> Result<Option<Action>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.name_any();
    let Some(cluster) = cluster else {
        // No owner (or it is gone): nothing was created, so a deletion may go through.
        if obj.meta().deletion_timestamp.is_some() {
            set_finalizers(api, &name, vec![]).await?;
        }
        return Ok(Some(again()));
    };
    if capi_core::labels::is_paused(cluster, obj.meta()) {
        return Ok(Some(again()));
    }
    let others: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if obj.meta().deletion_timestamp.is_some() {
        set_finalizers(api, &name, others).await?;
        return Ok(Some(again()));
    }
    if others.len() == obj.finalizers().len() {
        let mut f = others;
        f.push(FINALIZER.into());
        set_finalizers(api, &name, f).await?;
        return Ok(Some(again()));
    }
    Ok(None)
}

async fn reconcile_machine(m: Arc<OldMachine>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = m.namespace().unwrap_or_default();
    let api: Api<OldMachine> = Api::namespaced(ctx.client.clone(), &ns);
    let name = m.name_any();
    let machine = match capi_core::owner::owner_ref(m.meta(), capi_core::owner::Owner::MACHINE) {
        Some(o) => {
            Api::<Machine>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&o.name)
                .await?
        }
        None => None,
    };
    let cluster = match &machine {
        Some(machine) => {
            Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&machine.spec.cluster_name)
                .await?
        }
        None => None,
    };
    if let Some(action) = gate(&api, m.as_ref(), cluster.as_ref()).await? {
        return Ok(action);
    }
    let (Some(machine), Some(cluster)) = (machine, cluster) else {
        return Ok(again());
    };
    let mut status = m.status.clone().unwrap_or_default().contract;
    let infra = cluster
        .status
        .as_ref()
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.infrastructure_provisioned)
        == Some(true);
    let secret = match machine.spec.bootstrap.data_secret_name.as_deref() {
        Some(s) => {
            Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(s)
                .await?
        }
        None => None,
    };
    let waiting = if !infra {
        Some("WaitingForClusterInfrastructure")
    } else if secret.is_none() {
        Some("WaitingForBootstrapData")
    } else {
        None
    };
    if let Some(reason) = waiting {
        if !status.ready {
            conds::mark_false(
                &mut status.conditions,
                "Ready",
                reason,
                ConditionSeverity::Info,
                "",
            );
        }
    } else {
        if m.spec.contract.provider_id.is_none() {
            let patch = json!({"spec": {"providerID": format!("legacy:///{name}")}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        status.ready = !ctx.bugs.never_sets_ready;
        status.addresses = Some(vec![MachineAddress {
            type_: MachineAddressType::InternalIP,
            address: "10.2.0.1".into(),
        }]);
        conds::mark_true(&mut status.conditions, "Ready");
    }
    if m.status.as_ref().map(|s| &s.contract) != Some(&status) {
        let patch = json!({"status": status});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(again())
}

async fn reconcile_cluster(c: Arc<OldCluster>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if capi_core::labels::is_externally_managed(c.meta()) {
        return Ok(again());
    }
    let ns = c.namespace().unwrap_or_default();
    let api: Api<OldCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let name = c.name_any();
    let cluster = match capi_core::owner::owner_ref(c.meta(), capi_core::owner::Owner::CLUSTER) {
        Some(o) => {
            Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&o.name)
                .await?
        }
        None => None,
    };
    if let Some(action) = gate(&api, c.as_ref(), cluster.as_ref()).await? {
        return Ok(action);
    }
    if c.spec.contract.control_plane_endpoint.is_none() {
        let patch = json!({"spec": {"controlPlaneEndpoint": {"host": "10.2.0.100", "port": 6443}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    let mut status = c.status.clone().unwrap_or_default().contract;
    status.ready = !ctx.bugs.never_sets_ready;
    status.failure_domains = Some(failure_domains());
    conds::mark_true(&mut status.conditions, "Ready");
    if c.status.as_ref().map(|s| &s.contract) != Some(&status) {
        let patch = json!({"status": status});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(again())
}

/// The v1beta1 map shape: name → {controlPlane, attributes}.
fn failure_domains() -> BTreeMap<String, FailureDomainSpec> {
    BTreeMap::from([
        (
            "zone-b".to_owned(),
            FailureDomainSpec {
                control_plane: Some(false),
                attributes: Some(BTreeMap::from([("rack".to_owned(), "2".to_owned())])),
            },
        ),
        (
            "zone-a".to_owned(),
            FailureDomainSpec {
                control_plane: Some(true),
                attributes: None,
            },
        ),
    ])
}

async fn start(bugs: Bugs) -> TestEnv {
    let env = fixture::env_with(
        "v1beta1",
        vec![
            OldMachine::crd(),
            OldMachineTemplate::crd(),
            OldCluster::crd(),
        ],
    )
    .await;
    let ctx = Arc::new(Ctx {
        client: env.client(),
        bugs,
    });
    fixture::spawn_controller::<OldMachine, _, _, _, _>(
        env.client(),
        reconcile_machine,
        ctx.clone(),
    );
    fixture::spawn_controller::<OldCluster, _, _, _, _>(env.client(), reconcile_cluster, ctx);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_v1beta1_contract_provider_passes() {
    let env = start(Bugs::default()).await;
    let report = run(fixture::config(&env, &[])).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    // Every scenario, the advisory ones included (conditions read in the v1beta1 shape).
    assert!(
        report.scenarios.iter().all(|s| s.passed),
        "{}",
        report.table()
    );
    assert!(
        report.findings.is_empty(),
        "static findings: {:#?}",
        report.findings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1beta1_provider_that_never_sets_status_ready_fails() {
    let env = start(Bugs {
        never_sets_ready: true,
    })
    .await;
    let report = run(fixture::config(&env, &["provider-id-with-provisioned"]))
        .await
        .unwrap();
    println!("{}", report.table());
    assert!(
        !report.passed(),
        "a broken provider passed:\n{}",
        report.table()
    );
    assert_eq!(report.failures(), ["provider-id-with-provisioned"]);
}

/// What core copies from a v1beta1-contract provider, read through the simulator: the map of
/// failure domains becomes the Cluster's sorted list, the endpoint, providerID and addresses
/// are copied, `status.ready` counts as provisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_reads_a_v1beta1_provider_by_its_contract_label() {
    let env = start(Bugs::default()).await;
    let client = env.client();
    let ns = "default";
    let sim = capi_testkit::simulator::Simulator::new(client.clone())
        .options(capi_testkit::simulator::SimulatorOptions {
            namespace: Some(ns.into()),
            poll: Duration::from_millis(100),
            ..Default::default()
        })
        .start();
    let objects = [
        json!({"apiVersion": "infrastructure.legacy.io/v1alpha1", "kind": "OldCluster",
               "metadata": {"name": "c1", "namespace": ns}, "spec": {}}),
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
               "metadata": {"name": "c1", "namespace": ns},
               "spec": {"infrastructureRef": {"apiGroup": "infrastructure.legacy.io", "kind": "OldCluster", "name": "c1"}}}),
        json!({"apiVersion": "infrastructure.legacy.io/v1alpha1", "kind": "OldMachine",
               "metadata": {"name": "m1", "namespace": ns,
                            "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""}},
               "spec": {}}),
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
               "metadata": {"name": "m1", "namespace": ns,
                            "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""}},
               "spec": {"clusterName": "c1", "bootstrap": {}, "version": "v1.34.0",
                        "infrastructureRef": {"apiGroup": "infrastructure.legacy.io", "kind": "OldMachine", "name": "m1"}}}),
    ];
    for o in objects {
        capi_testkit::apply::apply_yaml(&client, &o.to_string(), ns, "test")
            .await
            .unwrap();
    }
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), ns);
    let machines: Api<Machine> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (cluster, machine) = loop {
        let c = clusters.get("c1").await.unwrap();
        let m = machines.get("m1").await.unwrap();
        let provisioned = |i: Option<bool>| i == Some(true);
        let c_done = provisioned(
            c.status
                .as_ref()
                .and_then(|s| s.initialization.as_ref())
                .and_then(|i| i.infrastructure_provisioned),
        );
        let m_done = provisioned(
            m.status
                .as_ref()
                .and_then(|s| s.initialization.as_ref())
                .and_then(|i| i.infrastructure_provisioned),
        );
        if c_done && m_done {
            break (c, m);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not provisioned: {:?} / {:?}",
            c.status,
            m.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sim.stop().await;
    let c = serde_json::to_value(&cluster).unwrap();
    assert_eq!(
        c["spec"]["controlPlaneEndpoint"],
        json!({"host": "10.2.0.100", "port": 6443})
    );
    assert_eq!(
        c["status"]["failureDomains"],
        json!([
            {"name": "zone-a", "controlPlane": true},
            {"name": "zone-b", "controlPlane": false, "attributes": {"rack": "2"}},
        ])
    );
    let ready = |v: &serde_json::Value| {
        v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "InfrastructureReady")
            .cloned()
            .unwrap()
    };
    assert_eq!(ready(&c)["status"], "True");
    let m = serde_json::to_value(&machine).unwrap();
    assert_eq!(m["spec"]["providerID"], "legacy:///m1");
    assert_eq!(
        m["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.2.0.1"}])
    );
    // A v1beta1 Ready=True carries no reason; core mirrors it with reason Ready.
    assert_eq!(ready(&m)["status"], "True");
    assert_eq!(ready(&m)["reason"], "Ready");
}
