//! The manager's start-up check of the provider's CRDs against its Rust types, over HTTP
//! against capi-testkit's API server: a CRD without the contract label, with the other
//! contract's label, or missing altogether keeps the manager from starting, with a typed error
//! that says which label to add; correct CRDs start it; the opt-out starts it regardless.

#![allow(clippy::unwrap_used)]

mod common;
mod spot;

use std::time::Duration;

use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, provider_crd};
use capi_provider_sdk::manager::CrdContractError;
use capi_provider_sdk::{Manager, ManagerError, ManagerOptions};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::Simulator;
use common::{FakeCloud, FakeCluster, FakeMachine, FakeMachineTemplate};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::Api;
use serde_json::json;
use spot::{LegacySpot, Spot, SpotCloud};

fn v1beta2() -> ContractVersionLabels {
    ContractVersionLabels::new().with("v1beta2", ["v1alpha1"])
}

fn fake_cluster_crd() -> CustomResourceDefinition {
    provider_crd(vec![FakeCluster::crd()], "v1alpha1", &v1beta2()).unwrap()
}

fn fake_machine_crd(labels: &ContractVersionLabels) -> CustomResourceDefinition {
    provider_crd(vec![FakeMachine::crd()], "v1alpha1", labels).unwrap()
}

async fn env_with(provider_crds: Vec<CustomResourceDefinition>) -> TestEnv {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(provider_crds);
    crds.push(provider_crd(vec![FakeMachineTemplate::crd()], "v1alpha1", &v1beta2()).unwrap());
    TestEnv::builder().crds(crds).start().await.unwrap()
}

/// Runs the manager; it must stop by itself, promptly, with an error.
async fn refused(manager: Manager) -> CrdContractError {
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        manager.run_until(std::future::pending()),
    )
    .await
    .expect("the manager started instead of refusing to");
    match result {
        Err(ManagerError::CrdContract(e)) => {
            println!("{e}");
            e
        }
        other => panic!("expected a CRD contract error, got {other:?}"),
    }
}

fn fake_manager(env: &TestEnv) -> Manager {
    let cloud = FakeCloud::default();
    Manager::new(env.client(), ManagerOptions::new("fake-provider"))
        .machine(cloud.clone())
        .cluster(cloud)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_without_the_contract_label_is_refused() {
    let env = env_with(vec![
        fake_machine_crd(&ContractVersionLabels::new()),
        fake_cluster_crd(),
    ])
    .await;
    let err = refused(fake_manager(&env)).await;
    assert!(
        matches!(&err, CrdContractError::MissingLabel { crd, .. } if crd == "fakemachines.infrastructure.example.com"),
        "{err:?}"
    );
    let message = ManagerError::from(err).to_string();
    assert!(message.starts_with("refusing to start: "), "{message}");
    assert!(message.contains("has no contract label"), "{message}");
    assert!(
        message.contains("Add the label `cluster.x-k8s.io/v1beta2: v1alpha1` to the CRD"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1beta2_type_with_a_v1beta1_label_is_refused() {
    let env = env_with(vec![
        fake_machine_crd(&ContractVersionLabels::new().with("v1beta1", ["v1alpha1"])),
        fake_cluster_crd(),
    ])
    .await;
    let err = refused(fake_manager(&env)).await;
    assert!(
        matches!(err, CrdContractError::MissingLabel { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("it only has `cluster.x-k8s.io/v1beta1: v1alpha1`"),
        "{message}"
    );
    assert!(
        message.contains("Add the label `cluster.x-k8s.io/v1beta2: v1alpha1`"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1beta1_type_with_a_v1beta2_label_is_refused() {
    // The label CAPI core would take first, on a kind that writes status.ready.
    let both = ContractVersionLabels::new()
        .with("v1beta1", ["v1alpha1"])
        .with("v1beta2", ["v1alpha1"]);
    let env = env_with(vec![
        fake_machine_crd(&v1beta2()),
        fake_cluster_crd(),
        spot::legacy_crd(&both),
    ])
    .await;
    let cloud = SpotCloud::default();
    let manager = Manager::new(env.client(), ManagerOptions::new("spot-provider"))
        .machine(LegacySpot(cloud.clone()))
        .cluster(Spot(cloud));
    let err = refused(manager).await;
    assert!(
        matches!(&err, CrdContractError::UnexpectedV1Beta2Label { crd, value, .. }
            if crd == "spotlegacymachines.infrastructure.spot.example.com" && value == "v1alpha1"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Remove the label cluster.x-k8s.io/v1beta2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_crd_is_refused() {
    let env = env_with(vec![fake_machine_crd(&v1beta2())]).await;
    let err = refused(fake_manager(&env)).await;
    assert!(
        matches!(&err, CrdContractError::NotFound { crd, role: "InfraCluster", .. } if crd == "fakeclusters.infrastructure.example.com"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`cluster.x-k8s.io/v1beta2: v1alpha1`")
    );
}

/// With the Cluster and its FakeCluster created, the InfraCluster controller runs: the
/// FakeCluster is provisioned.
async fn assert_reconciling(env: &TestEnv) {
    let client = env.client();
    capi_testkit::apply::apply_yaml(&client, &json!({"apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeCluster", "metadata": {"name": "c1"}, "spec": {}}).to_string(), "default", "test").await.unwrap();
    capi_testkit::apply::apply_yaml(&client, &json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": "c1"},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.example.com", "kind": "FakeCluster", "name": "c1"}}}).to_string(), "default", "test").await.unwrap();
    let fake: Api<FakeCluster> = Api::namespaced(client, "default");
    for _ in 0..300 {
        let provisioned = fake
            .get("c1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.contract.initialization)
            .and_then(|i| i.provisioned);
        if provisioned == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the FakeCluster was not provisioned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_crds_start_and_the_manager_stops_cleanly() {
    let env = env_with(vec![fake_machine_crd(&v1beta2()), fake_cluster_crd()]).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(fake_manager(&env).run_until(async move {
        let _ = stopped.await;
    }));
    let sim = Simulator::new(env.client()).start();
    assert_reconciling(&env).await;
    sim.stop().await;
    let _ = stop.send(());
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_v1beta1_crd_starts() {
    let env = env_with(vec![
        fake_machine_crd(&v1beta2()),
        fake_cluster_crd(),
        spot::legacy_crd_labelled(),
    ])
    .await;
    let cloud = SpotCloud::default();
    let manager = Manager::new(env.client(), ManagerOptions::new("spot-provider"))
        .machine(LegacySpot(cloud.clone()))
        .cluster(Spot(cloud));
    tokio::spawn(async move {
        let result = manager.run_until(std::future::pending()).await;
        panic!("the manager stopped: {result:?}");
    });
    let sim = Simulator::new(env.client()).start();
    assert_reconciling(&env).await;
    sim.stop().await;
}

/// A manager built by `manager` (against an unlabelled CRD) starts and reconciles.
async fn starts_without_looking(manager: impl FnOnce(&TestEnv) -> Manager) {
    let env = env_with(vec![
        fake_machine_crd(&ContractVersionLabels::new()),
        fake_cluster_crd(),
    ])
    .await;
    let running = tokio::spawn(manager(&env).run_until(std::future::pending()));
    let sim = Simulator::new(env.client()).start();
    assert_reconciling(&env).await;
    assert!(!running.is_finished());
    running.abort();
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_out_starts_without_looking() {
    starts_without_looking(|env| fake_manager(env).skip_crd_contract_check()).await;
}

/// `ManagerOptions::check_crd_contract: false` (what `--skip-crd-contract-check` sets) opts out
/// as the builder method does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_option_opts_out_too() {
    starts_without_looking(|env| {
        let cloud = FakeCloud::default();
        let options = ManagerOptions {
            check_crd_contract: false,
            ..ManagerOptions::new("fake-provider")
        };
        Manager::new(env.client(), options)
            .machine(cloud.clone())
            .cluster(cloud)
    })
    .await;
}

/// The generated ClusterRole lets the check read the provider's own CRDs, by name only: as a
/// ServiceAccount bound to it, the manager starts, and may not read other CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_cluster_role_covers_the_check_and_nothing_more() {
    use capi_testkit::env::Identity;

    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder()
        .crds(crds)
        .enforce_rbac(true)
        .start()
        .await
        .unwrap();
    let admin = env.client();
    let sa = Identity::service_account("default", "manager");
    let as_manager = env.client_for(&sa).unwrap();
    let cloud = FakeCloud::default();
    let manager = Manager::new(as_manager.clone(), ManagerOptions::new("fake-provider"))
        .machine(cloud.clone())
        .cluster(cloud);
    let role = manager.cluster_role("fake-provider-manager");
    common::bind_cluster_role(&admin, &role, "default", "manager").await;

    let crds: Api<CustomResourceDefinition> = Api::all(as_manager.clone());
    crds.get("fakemachines.infrastructure.example.com")
        .await
        .unwrap();
    for forbidden in [
        crds.get("machines.cluster.x-k8s.io").await.map(|_| ()),
        crds.list(&Default::default()).await.map(|_| ()),
    ] {
        assert!(
            matches!(&forbidden, Err(kube::Error::Api(s)) if s.code == 403),
            "{forbidden:?}"
        );
    }

    tokio::spawn(async move {
        let result = manager.run_until(std::future::pending()).await;
        panic!("the manager stopped: {result:?}");
    });
    let sim = Simulator::new(admin).start();
    assert_reconciling(&env).await;
    sim.stop().await;
}
