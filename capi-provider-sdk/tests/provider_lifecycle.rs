//! A provider built on the SDK, run by its Manager against capi-testkit's API server, with the
//! CAPI-core simulator playing CAPI: a cluster comes up, machines provision, everything deletes.
//! Then the black-box conformance suite runs against the same provider.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capi_provider_sdk::{Manager, ManagerOptions};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::Simulator;
use common::{FakeCloud, FakeCluster, FakeMachine, eventually};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn setup() -> (TestEnv, tokio::sync::oneshot::Sender<()>, FakeCloud) {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder().crds(crds).start().await.unwrap();
    let cloud = FakeCloud::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = Manager::new(env.client(), ManagerOptions::new("fake-provider"))
        .machine(cloud.clone())
        .cluster(cloud.clone());
    tokio::spawn(manager.run_until(async move {
        let _ = stopped.await;
    }));
    (env, stop, cloud)
}

/// A FakeCluster and the Cluster referencing it.
async fn create_cluster(client: &kube::Client, name: &str) {
    let fake: Api<FakeCluster> = Api::namespaced(client.clone(), "default");
    fake.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeCluster", "metadata": {"name": name}, "spec": {}})).unwrap()).await.unwrap();
    let clusters: Api<capi_provider_sdk::capi_core::v1beta2::Cluster> =
        Api::namespaced(client.clone(), "default");
    let cluster = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.example.com", "kind": "FakeCluster", "name": name}}});
    clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster).unwrap(),
        )
        .await
        .unwrap();
}

/// A FakeMachine and its control-plane Machine.
async fn create_machine(client: &kube::Client, cluster: &str, name: &str) {
    let fake: Api<FakeMachine> = Api::namespaced(client.clone(), "default");
    fake.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeMachine", "metadata": {"name": name}, "spec": {}})).unwrap()).await.unwrap();
    let machines: Api<capi_provider_sdk::capi_core::v1beta2::Machine> =
        Api::namespaced(client.clone(), "default");
    let machine = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": name, "labels": {"cluster.x-k8s.io/control-plane": ""}},
        "spec": {"clusterName": cluster, "bootstrap": {}, "infrastructureRef": {"apiGroup": "infrastructure.example.com", "kind": "FakeMachine", "name": name}}});
    machines
        .create(
            &PostParams::default(),
            &serde_json::from_value(machine).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_and_down() {
    let (env, stop, cloud) = setup().await;
    let sim = Simulator::new(env.client()).start();
    let client = env.client();
    let fake_clusters: Api<FakeCluster> = Api::namespaced(client.clone(), "default");
    let fake_machines: Api<FakeMachine> = Api::namespaced(client.clone(), "default");
    let clusters: Api<capi_provider_sdk::capi_core::v1beta2::Cluster> =
        Api::namespaced(client.clone(), "default");
    let machines: Api<capi_provider_sdk::capi_core::v1beta2::Machine> =
        Api::namespaced(client.clone(), "default");

    create_cluster(&client, "c1").await;
    create_machine(&client, "c1", "m1").await;

    eventually("the Cluster's infrastructure to be provisioned", || async {
        clusters
            .get("c1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.initialization)
            .and_then(|i| i.infrastructure_provisioned)
            == Some(true)
    })
    .await;
    let c = clusters.get("c1").await.unwrap();
    assert_eq!(
        c.spec
            .control_plane_endpoint
            .as_ref()
            .and_then(|e| e.host.as_deref()),
        Some("10.0.0.100")
    );
    let fds: Vec<_> = c
        .status
        .unwrap()
        .failure_domains
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(fds, ["zone-a", "zone-b"]);

    eventually("the Machine to run", || async {
        machines
            .get("m1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"))
            == Some("Running".into())
    })
    .await;
    let m = machines.get("m1").await.unwrap();
    assert_eq!(m.spec.provider_id.as_deref(), Some("fake:///m1"));
    let fm = fake_machines.get("m1").await.unwrap();
    assert_eq!(
        fm.metadata.finalizers.as_deref(),
        Some(&["infrastructure.example.com/fakemachine".to_string()][..])
    );
    let conds = fm.status.unwrap().contract.conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Paused" && c.status == "False" && c.reason == "NotPaused")
    );

    // Nothing changes once provisioned: the resourceVersion stays.
    let rv = fake_machines
        .get("m1")
        .await
        .unwrap()
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake_machines
            .get("m1")
            .await
            .unwrap()
            .metadata
            .resource_version,
        rv
    );
    assert_eq!(*cloud.creates.lock().unwrap(), 1);

    clusters
        .delete("c1", &DeleteParams::background())
        .await
        .unwrap();
    eventually("everything to be deleted", || async {
        clusters.get_opt("c1").await.unwrap().is_none()
            && fake_machines
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
            && fake_clusters
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
    })
    .await;
    assert!(
        cloud.instances.lock().unwrap().is_empty(),
        "instances leaked"
    );
    sim.stop().await;
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let (env, stop, _cloud) = setup().await;
    let config = capi_testkit::conformance::ConformanceConfig {
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(15),
        faults: Some(env.server().faults().clone()),
        ..capi_testkit::conformance::ConformanceConfig::new(env.client())
    };
    let report = capi_testkit::conformance::run(config).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_fields_for_older_capi() {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder().crds(crds).start().await.unwrap();
    let cloud = FakeCloud::default();
    let options = ManagerOptions {
        v1beta1_fields: true,
        ..ManagerOptions::new("fake-provider")
    };
    tokio::spawn(
        Manager::new(env.client(), options)
            .machine(cloud.clone())
            .cluster(cloud)
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(env.client()).start();
    let client = env.client();
    let fake_clusters: Api<FakeCluster> = Api::namespaced(client.clone(), "default");
    create_cluster(&client, "c1").await;
    eventually("status.ready and v1beta1 conditions", || async {
        let fc = serde_json::to_value(fake_clusters.get("c1").await.unwrap()).unwrap();
        fc["status"]["ready"] == true
            && fc["status"]["deprecated"]["v1beta1"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
    })
    .await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_provider_code_stays_with_its_object() {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder().crds(crds).start().await.unwrap();
    let cloud = FakeCloud {
        panic_on: Some("bad".into()),
        ..FakeCloud::default()
    };
    tokio::spawn(
        Manager::new(env.client(), ManagerOptions::new("fake-provider"))
            .machine(cloud.clone())
            .cluster(cloud)
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(env.client()).start();
    let client = env.client();
    let fake_machines: Api<FakeMachine> = Api::namespaced(client.clone(), "default");
    create_cluster(&client, "c1").await;
    for name in ["bad", "good"] {
        create_machine(&client, "c1", name).await;
    }
    eventually(
        "the good machine to provision despite the other one panicking",
        || async {
            fake_machines
                .get("good")
                .await
                .unwrap()
                .status
                .and_then(|s| s.contract.initialization)
                .and_then(|i| i.provisioned)
                == Some(true)
        },
    )
    .await;
    let bad = fake_machines.get("bad").await.unwrap();
    assert!(
        bad.status
            .and_then(|s| s.contract.initialization)
            .and_then(|i| i.provisioned)
            .is_none()
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_stays_until_delete_is_done_and_resyncs_write_nothing() {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder().crds(crds).start().await.unwrap();
    let cloud = FakeCloud::default();
    // Resync every 50 ms: ten resyncs in the 600 ms watched below.
    let options = ManagerOptions {
        resync: Some(Duration::from_millis(50)),
        ..ManagerOptions::new("fake-provider")
    };
    tokio::spawn(
        Manager::new(env.client(), options)
            .machine(cloud.clone())
            .cluster(cloud.clone())
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(env.client()).start();
    let client = env.client();
    let fake_machines: Api<FakeMachine> = Api::namespaced(client.clone(), "default");
    create_cluster(&client, "c1").await;
    create_machine(&client, "c1", "m1").await;
    eventually("provisioned", || async {
        fake_machines
            .get("m1")
            .await
            .unwrap()
            .status
            .and_then(|s| s.contract.initialization)
            .and_then(|i| i.provisioned)
            == Some(true)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rv = fake_machines
        .get("m1")
        .await
        .unwrap()
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fake_machines
            .get("m1")
            .await
            .unwrap()
            .metadata
            .resource_version,
        rv,
        "resyncs wrote to an unchanged object"
    );

    cloud
        .hold_deletes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    fake_machines
        .delete("m1", &DeleteParams::background())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = fake_machines.get("m1").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata.finalizers.is_some_and(|f| !f.is_empty()),
        "finalizer removed before delete reported done"
    );
    let ready = held
        .status
        .unwrap()
        .contract
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "InstanceStopping");
    cloud
        .hold_deletes
        .store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("the InfraMachine to go once delete is done", || async {
        fake_machines.get_opt("m1").await.unwrap().is_none()
    })
    .await;
    sim.stop().await;
}

/// The provider runs as a ServiceAccount holding only the ClusterRole the SDK generates (the
/// one release files ship), with the server enforcing RBAC: every request the SDK makes must
/// be covered by it, and anything else is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_only_its_generated_cluster_role() {
    use capi_testkit::env::Identity;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    let env = TestEnv::builder()
        .crds(crds)
        .enforce_rbac(true)
        .start()
        .await
        .unwrap();
    let admin = env.client();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "capi-system"}})).unwrap(),
        )
        .await
        .unwrap();
    let cloud = FakeCloud::default();
    let options = ManagerOptions {
        leader_election: Some(capi_provider_sdk::LeaderElection {
            lease_name: "fake-provider-leader-election".into(),
            namespace: "capi-system".into(),
            identity: "manager-0".into(),
            lease_duration_seconds: 15,
        }),
        ..ManagerOptions::new("fake-provider")
    };
    let sa = Identity::service_account("capi-system", "manager");
    let as_manager = env.client_for(&sa).unwrap();
    let manager = Manager::new(as_manager.clone(), options)
        .machine(cloud.clone())
        .cluster(cloud.clone());
    let role = manager.cluster_role("fake-provider-manager");
    common::bind_cluster_role(&admin, &role, "capi-system", "manager").await;

    // What the role does not grant is refused, as upstream words it.
    let err = Api::<ConfigMap>::namespaced(as_manager.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message == "configmaps is forbidden: User \"system:serviceaccount:capi-system:manager\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err:?}"
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(manager.run_until(async move {
        let _ = stopped.await;
    }));
    // The whole suite, run by the admin, against the provider running as the ServiceAccount.
    let config = capi_testkit::conformance::ConformanceConfig {
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(15),
        only: [
            "finalizer-lifecycle",
            "conditions-well-formed",
            "deletion-leaves-nothing",
            "pause-spec",
        ]
        .map(String::from)
        .to_vec(),
        ..capi_testkit::conformance::ConformanceConfig::new(admin.clone())
    };
    let report = capi_testkit::conformance::run(config).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    // Leader election went through the role too.
    let lease: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(admin, "capi-system");
    let held = lease.get("fake-provider-leader-election").await.unwrap();
    assert_eq!(
        held.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("manager-0")
    );
    let _ = stop.send(());
}
