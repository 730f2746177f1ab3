//! `status.interruptible`: a provider reports spot/preemptible instances with
//! `MachineProvisioned::interruptible(true)` and the SDK writes the field, in the v1beta2 and
//! the v1beta1 contract's status alike, once: resyncs write nothing more. An outcome that stops
//! reporting it means "not interruptible": the field goes, and stays gone.

#![allow(clippy::unwrap_used)]

mod common;
mod spot;

use std::sync::atomic::Ordering;
use std::time::Duration;

use capi_provider_sdk::{Manager, ManagerOptions};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::Simulator;
use common::eventually;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use spot::{LEGACY_GROUP, LegacySpot, Spot, SpotCloud};

/// Resync every 50 ms: a dozen resyncs in each stability window below.
fn options() -> ManagerOptions {
    ManagerOptions {
        resync: Some(Duration::from_millis(50)),
        ..ManagerOptions::new("spot-provider")
    }
}

async fn env() -> TestEnv {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    crds.push(spot::legacy_crd_labelled());
    TestEnv::builder().crds(crds).start().await.unwrap()
}

async fn create(client: &kube::Client, obj: Value) {
    capi_testkit::apply::apply_yaml(client, &obj.to_string(), "default", "test")
        .await
        .unwrap();
}

/// A FakeCluster and its Cluster.
async fn create_cluster(client: &kube::Client, name: &str) {
    create(client, json!({"apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeCluster", "metadata": {"name": name}, "spec": {}})).await;
    create(client, json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.example.com", "kind": "FakeCluster", "name": name}}})).await;
}

/// An InfraMachine of `group/kind` and its control-plane Machine.
async fn create_machine(client: &kube::Client, group: &str, kind: &str, cluster: &str, name: &str) {
    create(client, json!({"apiVersion": format!("{group}/v1alpha1"), "kind": kind, "metadata": {"name": name}, "spec": {}})).await;
    create(
        client,
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": name, "labels": {"cluster.x-k8s.io/control-plane": ""}},
        "spec": {"clusterName": cluster, "bootstrap": {}, "version": "v1.34.0",
                 "infrastructureRef": {"apiGroup": group, "kind": kind, "name": name}}}),
    )
    .await;
}

fn api(client: &kube::Client, group: &str, kind: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: group.into(),
        version: "v1alpha1".into(),
        api_version: format!("{group}/v1alpha1"),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    };
    Api::namespaced_with(client.clone(), "default", &ar)
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

/// Both machines' resourceVersions, unchanged over `window` of resyncs.
async fn assert_stable(api: &Api<DynamicObject>, names: &[&str], window: Duration) {
    let before: Vec<Value> = futures::future::join_all(names.iter().map(|n| get(api, n))).await;
    tokio::time::sleep(window).await;
    for (name, was) in names.iter().zip(before) {
        let now = get(api, name).await;
        assert_eq!(
            now["metadata"]["resourceVersion"], was["metadata"]["resourceVersion"],
            "resyncs wrote to {name}: {was:#} then {now:#}"
        );
    }
}

/// The scenario, for an InfraMachine kind of either contract: `spot-1` gets
/// `status.interruptible: true` with the rest of the provisioned fields, `plain-1` never has the
/// field; nothing is written again on resync; when the provider stops reporting it, it goes.
async fn scenario(
    cloud: &SpotCloud,
    client: &kube::Client,
    group: &str,
    kind: &str,
    provisioned: &str,
) {
    create_cluster(client, "c1").await;
    for name in ["spot-1", "plain-1"] {
        create_machine(client, group, kind, "c1", name).await;
    }
    let machines = api(client, group, kind);
    eventually("both machines to provision", || async {
        let mut done = true;
        for name in ["spot-1", "plain-1"] {
            let m = get(&machines, name).await;
            done &= m.pointer(provisioned) == Some(&json!(true));
        }
        done
    })
    .await;
    let spot = get(&machines, "spot-1").await;
    assert_eq!(spot["status"]["interruptible"], true, "{spot:#}");
    assert_eq!(spot["spec"]["providerID"], "spot:///spot-1");
    let plain = get(&machines, "plain-1").await;
    assert!(
        plain["status"].get("interruptible").is_none(),
        "not reported, not written: {plain:#}"
    );

    // A dozen resyncs later: nothing written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_stable(
        &machines,
        &["spot-1", "plain-1"],
        Duration::from_millis(600),
    )
    .await;

    // An outcome that does not report it says "not interruptible": the field goes, once.
    cloud.report.store(false, Ordering::SeqCst);
    eventually("status.interruptible to go", || async {
        get(&machines, "spot-1").await["status"]
            .get("interruptible")
            .is_none()
    })
    .await;
    let spot = get(&machines, "spot-1").await;
    assert_eq!(
        spot.pointer(provisioned),
        Some(&json!(true)),
        "the rest stays: {spot:#}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_stable(
        &machines,
        &["spot-1", "plain-1"],
        Duration::from_millis(600),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta2_provider_writes_status_interruptible_once() {
    let env = env().await;
    let cloud = SpotCloud::reporting();
    tokio::spawn(
        Manager::new(env.client(), options())
            .machine(Spot(cloud.clone()))
            .cluster(Spot(cloud.clone()))
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(env.client()).start();
    scenario(
        &cloud,
        &env.client(),
        "infrastructure.example.com",
        "FakeMachine",
        "/status/initialization/provisioned",
    )
    .await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_provider_writes_status_interruptible_once() {
    let env = env().await;
    let cloud = SpotCloud::reporting();
    // A v1beta1-contract InfraMachine kind; the InfraCluster stays the v1beta2 FakeCluster.
    tokio::spawn(
        Manager::new(env.client(), options())
            .machine(LegacySpot(cloud.clone()))
            .cluster(Spot(cloud.clone()))
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(env.client()).start();
    scenario(
        &cloud,
        &env.client(),
        LEGACY_GROUP,
        "SpotLegacyMachine",
        "/status/ready",
    )
    .await;
    // Core (the simulator, reading the kind by its v1beta1 label) saw the machine provisioned.
    let machines: Api<capi_provider_sdk::capi_core::v1beta2::Machine> =
        Api::namespaced(env.client(), "default");
    eventually("core to see the v1beta1 machine provisioned", || async {
        machines
            .get("spot-1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.initialization)
            .and_then(|i| i.infrastructure_provisioned)
            == Some(true)
    })
    .await;
    sim.stop().await;
}
