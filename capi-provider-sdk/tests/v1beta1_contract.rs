//! A provider for CAPI ≤ 1.10: its CRDs carry the `cluster.x-k8s.io/v1beta1` contract label and
//! its status embeds the v1beta1-contract structs (`status.ready`, map-shaped failure domains,
//! CAPI v1beta1 conditions with severity, the v1beta2 ones under `status.v1beta2.conditions`).
//! The author's code is the same as for a v1beta2 provider; only the embedded structs differ.
//! The conformance suite and the simulator read it as v1beta1 core would, by the CRD's label.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capi_provider_sdk::capi_core::contract::TemplateResource;
use capi_provider_sdk::capi_core::contract::fields::FailureDomain;
use capi_provider_sdk::capi_core::contract::fields::v1beta1::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus,
};
use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, provider_crd};
use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine};
use capi_provider_sdk::{
    ClusterContext, ClusterOutcome, DeleteOutcome, Failure, InfraCluster, InfraMachine,
    MachineContext, MachineOutcome, Manager, ManagerOptions, async_trait,
};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::Simulator;
use common::{CloudError, eventually, instance_key};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const GROUP: &str = "infrastructure.legacy.example.com";

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.example.com",
    version = "v1alpha1",
    kind = "LegacyMachine",
    namespaced
)]
#[kube(status = "LegacyMachineStatus", derive = "PartialEq")]
pub struct LegacyMachineSpec {
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

capi_provider_sdk::infra_machine_resource!(LegacyMachine, spec.contract, status.contract);

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.example.com",
    version = "v1alpha1",
    kind = "LegacyMachineTemplate",
    namespaced
)]
pub struct LegacyMachineTemplateSpec {
    pub template: TemplateResource<LegacyMachineSpec>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.legacy.example.com",
    version = "v1alpha1",
    kind = "LegacyCluster",
    namespaced
)]
#[kube(status = "LegacyClusterStatus", derive = "PartialEq")]
pub struct LegacyClusterSpec {
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyClusterStatus {
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
}

capi_provider_sdk::infra_cluster_resource!(LegacyCluster, spec.contract, status.contract);

/// The provider's CRDs, labelled for the v1beta1 contract only.
fn legacy_crds() -> Vec<CustomResourceDefinition> {
    let labels = ContractVersionLabels::new().with("v1beta1", ["v1alpha1"]);
    vec![
        provider_crd(vec![LegacyMachine::crd()], "v1alpha1", &labels).unwrap(),
        provider_crd(vec![LegacyMachineTemplate::crd()], "v1alpha1", &labels).unwrap(),
        provider_crd(vec![LegacyCluster::crd()], "v1alpha1", &labels).unwrap(),
    ]
}

/// A fake cloud: instances start one reconcile after being created; a Machine named "doomed"
/// fails terminally.
#[derive(Clone, Default)]
struct LegacyCloud {
    instances: Arc<Mutex<HashMap<String, bool>>>,
}

#[async_trait]
impl InfraMachine for LegacyCloud {
    type Resource = LegacyMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<LegacyMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        if name == "doomed" {
            return Err(Failure::terminal(
                "InvalidImage",
                "image ubuntu-99 does not exist",
            ));
        }
        let key = instance_key(&cx.machine.metadata.namespace, &name);
        let mut instances = self.instances.lock().unwrap();
        match instances.get(&key).copied() {
            Some(true) => Ok(MachineOutcome::provisioned(format!("legacy:///{name}"))
                .with_internal_ip("10.3.0.1")
                .into()),
            Some(false) => {
                instances.insert(key, true);
                Ok(MachineOutcome::in_progress(
                    "InstanceStarting",
                    Duration::from_millis(50),
                ))
            }
            None => {
                instances.insert(key, false);
                Ok(MachineOutcome::in_progress(
                    "InstanceCreating",
                    Duration::from_millis(50),
                ))
            }
        }
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<LegacyMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        let key = instance_key(&cx.machine.metadata.namespace, &name);
        self.instances.lock().unwrap().remove(&key);
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl InfraCluster for LegacyCloud {
    type Resource = LegacyCluster;
    type Error = CloudError;

    async fn reconcile(
        &self,
        _cx: &mut ClusterContext<LegacyCluster>,
    ) -> Result<ClusterOutcome, Failure<CloudError>> {
        let mut done = ClusterOutcome::provisioned()
            .with_endpoint("10.3.0.100", 6443)
            .with_failure_domain("zone-a", true);
        done.failure_domains.push(FailureDomain {
            name: "zone-b".into(),
            control_plane: Some(false),
            attributes: Some(BTreeMap::from([("rack".into(), "2".into())])),
        });
        Ok(done.into())
    }

    async fn delete(
        &self,
        _cx: &mut ClusterContext<LegacyCluster>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        Ok(DeleteOutcome::Deleted)
    }
}

async fn setup() -> (TestEnv, LegacyCloud) {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(legacy_crds());
    let env = TestEnv::builder().crds(crds).start().await.unwrap();
    let cloud = LegacyCloud::default();
    tokio::spawn(
        Manager::new(env.client(), ManagerOptions::new("legacy-provider"))
            .machine(cloud.clone())
            .cluster(cloud.clone())
            .run_until(std::future::pending()),
    );
    (env, cloud)
}

async fn create(client: &kube::Client, obj: Value) {
    capi_testkit::apply::apply_yaml(client, &obj.to_string(), "default", "test")
        .await
        .unwrap();
}

/// A LegacyCluster and its Cluster; a LegacyMachine and its control-plane Machine.
async fn create_cluster_and_machine(client: &kube::Client, cluster: &str, machine: &str) {
    let api_version = format!("{GROUP}/v1alpha1");
    create(client, json!({"apiVersion": api_version, "kind": "LegacyCluster", "metadata": {"name": cluster}, "spec": {}})).await;
    create(client, json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": cluster},
        "spec": {"infrastructureRef": {"apiGroup": GROUP, "kind": "LegacyCluster", "name": cluster}}})).await;
    create(client, json!({"apiVersion": api_version, "kind": "LegacyMachine", "metadata": {"name": machine}, "spec": {}})).await;
    create(client, json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": machine, "labels": {"cluster.x-k8s.io/control-plane": ""}},
        "spec": {"clusterName": cluster, "bootstrap": {}, "version": "v1.34.0",
                 "infrastructureRef": {"apiGroup": GROUP, "kind": "LegacyMachine", "name": machine}}})).await;
}

fn condition<'a>(list: &'a Value, type_: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["type"] == type_)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_as_a_v1beta1_provider() {
    let (env, _cloud) = setup().await;
    let config = capi_testkit::conformance::ConformanceConfig {
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(15),
        faults: Some(env.server().faults().clone()),
        ..capi_testkit::conformance::ConformanceConfig::new(env.client())
    };
    let report = capi_testkit::conformance::run(config).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    // The advisory scenarios too: conditions are checked in the v1beta1 shape.
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

/// What the provider writes in the v1beta1 shapes, and what core (the simulator, playing v1beta1
/// readers by the CRD's label) copies from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_v1beta1_shapes_that_core_reads() {
    let (env, _cloud) = setup().await;
    let sim = Simulator::new(env.client()).start();
    let client = env.client();
    create_cluster_and_machine(&client, "c1", "m1").await;
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    let machines: Api<Machine> = Api::namespaced(client.clone(), "default");
    let legacy_clusters: Api<LegacyCluster> = Api::namespaced(client.clone(), "default");
    let legacy_machines: Api<LegacyMachine> = Api::namespaced(client.clone(), "default");

    eventually("the Machine's infrastructure to be provisioned", || async {
        machines
            .get("m1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.initialization)
            .and_then(|i| i.infrastructure_provisioned)
            == Some(true)
    })
    .await;

    // The InfraCluster: status.ready, failure domains as a map, v1beta1 conditions.
    let lc = serde_json::to_value(legacy_clusters.get("c1").await.unwrap()).unwrap();
    assert_eq!(lc["status"]["ready"], true, "{lc:#}");
    assert!(lc["status"].get("initialization").is_none(), "{lc:#}");
    assert_eq!(
        lc["status"]["failureDomains"],
        json!({"zone-a": {"controlPlane": true}, "zone-b": {"controlPlane": false, "attributes": {"rack": "2"}}})
    );
    assert_eq!(
        lc["spec"]["controlPlaneEndpoint"],
        json!({"host": "10.3.0.100", "port": 6443})
    );
    let ready = condition(&lc["status"]["conditions"], "Ready").unwrap();
    assert_eq!(ready["status"], "True");
    assert!(ready.get("severity").is_none() && ready.get("observedGeneration").is_none());
    assert!(
        condition(&lc["status"]["conditions"], "Paused").is_none(),
        "Paused came with the v1beta2 conditions: {lc:#}"
    );
    let v2 = &lc["status"]["v1beta2"]["conditions"];
    assert_eq!(condition(v2, "Ready").unwrap()["status"], "True");
    assert_eq!(condition(v2, "Paused").unwrap()["reason"], "NotPaused");
    assert!(lc["status"].get("deprecated").is_none(), "{lc:#}");

    // The Cluster, as core fills it from a v1beta1 InfraCluster: the map becomes a sorted list.
    let c = serde_json::to_value(clusters.get("c1").await.unwrap()).unwrap();
    assert_eq!(
        c["status"]["failureDomains"],
        json!([
            {"name": "zone-a", "controlPlane": true},
            {"name": "zone-b", "controlPlane": false, "attributes": {"rack": "2"}},
        ])
    );
    assert_eq!(
        c["spec"]["controlPlaneEndpoint"],
        json!({"host": "10.3.0.100", "port": 6443})
    );
    assert_eq!(
        condition(&c["status"]["conditions"], "InfrastructureReady").unwrap()["status"],
        "True"
    );

    // The InfraMachine: status.ready, addresses, no v1beta2-only fields.
    let lm = serde_json::to_value(legacy_machines.get("m1").await.unwrap()).unwrap();
    assert_eq!(lm["status"]["ready"], true, "{lm:#}");
    assert_eq!(lm["spec"]["providerID"], "legacy:///m1");
    assert_eq!(
        lm["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.3.0.1"}])
    );
    assert!(lm["status"].get("initialization").is_none(), "{lm:#}");
    assert_eq!(
        condition(&lm["status"]["conditions"], "Ready").unwrap()["status"],
        "True"
    );
    let m = serde_json::to_value(machines.get("m1").await.unwrap()).unwrap();
    assert_eq!(m["spec"]["providerID"], "legacy:///m1");
    assert_eq!(
        m["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "10.3.0.1"}])
    );

    // A terminal failure: failureReason/failureMessage, Ready False with severity Error in the
    // v1beta1 shape, and the v1beta2 Ready condition beside it.
    create(&client, json!({"apiVersion": format!("{GROUP}/v1alpha1"), "kind": "LegacyMachine", "metadata": {"name": "doomed"}, "spec": {}})).await;
    create(&client, json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": "doomed", "labels": {"cluster.x-k8s.io/control-plane": ""}},
        "spec": {"clusterName": "c1", "bootstrap": {}, "version": "v1.34.0",
                 "infrastructureRef": {"apiGroup": GROUP, "kind": "LegacyMachine", "name": "doomed"}}})).await;
    eventually("the terminal failure to be reported", || async {
        let d = serde_json::to_value(legacy_machines.get("doomed").await.unwrap()).unwrap();
        d["status"]["failureReason"] == "InvalidImage"
    })
    .await;
    let d = serde_json::to_value(legacy_machines.get("doomed").await.unwrap()).unwrap();
    assert_eq!(
        d["status"]["failureMessage"],
        "image ubuntu-99 does not exist"
    );
    assert_eq!(d["status"]["ready"], false);
    let ready = condition(&d["status"]["conditions"], "Ready").unwrap();
    assert_eq!(
        (&ready["status"], &ready["severity"], &ready["reason"]),
        (&json!("False"), &json!("Error"), &json!("InvalidImage")),
        "{d:#}"
    );
    let ready2 = condition(&d["status"]["v1beta2"]["conditions"], "Ready").unwrap();
    assert_eq!(
        (&ready2["status"], &ready2["reason"], &ready2["message"]),
        (
            &json!("False"),
            &json!("InvalidImage"),
            &json!("image ubuntu-99 does not exist")
        )
    );
    assert!(ready2.get("severity").is_none());
    // v1beta1 core treats failureReason as terminal: the Machine carries it.
    eventually("core to copy the failure to the Machine", || async {
        let m = serde_json::to_value(machines.get("doomed").await.unwrap()).unwrap();
        m["status"]["deprecated"]["v1beta1"]["failureReason"] == "InvalidImage"
            || m["status"]["failureReason"] == "InvalidImage"
    })
    .await;
    sim.stop().await;
}
