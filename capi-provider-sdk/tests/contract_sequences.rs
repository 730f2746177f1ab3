//! Random sequences of what CAPI and users do to an InfraMachine (create it, its owner Machine
//! late, its bootstrap data late, update it, pause and unpause the Cluster, delete it, inject
//! conflicts and 500s into the provider's writes), with the contract's invariants checked once
//! the provider has settled after each step. The test plays CAPI core by hand so that every
//! order of events can happen.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine};
use capi_provider_sdk::{Manager, ManagerOptions};
use capi_testkit::env::TestEnv;
use capi_testkit::server::faults::{Fault, FaultRule};
use common::{FakeCloud, FakeMachine};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use proptest::prelude::*;
use serde_json::json;

const FINALIZER_PREFIX: &str = "infrastructure.example.com";

#[derive(Debug, Clone, Copy)]
enum Step {
    CreateOwner,
    CreateBootstrapData,
    Update,
    Pause,
    Unpause,
    Delete,
    Conflicts,
    ServerErrors,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::CreateOwner),
        3 => Just(Step::CreateBootstrapData),
        1 => Just(Step::Update),
        2 => Just(Step::Pause),
        2 => Just(Step::Unpause),
        1 => Just(Step::Delete),
        1 => Just(Step::Conflicts),
        1 => Just(Step::ServerErrors),
    ]
}

/// What the test has done so far, to judge the provider by.
#[derive(Debug, Default)]
struct World {
    owner: bool,
    bootstrap: bool,
    paused: bool,
    deleted: bool,
    /// Whether the SDK's finalizer was on the object when it last settled.
    finalized: bool,
}

struct Fixture {
    env: TestEnv,
    cloud: FakeCloud,
}

static CASE: AtomicU32 = AtomicU32::new(0);

fn finalized(m: &FakeMachine) -> bool {
    m.finalizers()
        .iter()
        .any(|f| f.starts_with(FINALIZER_PREFIX))
}

fn provisioned(m: &FakeMachine) -> bool {
    m.status
        .as_ref()
        .and_then(|s| s.contract.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true)
}

/// The test's own writes to the InfraMachine meet the faults injected for the provider too:
/// they are retried.
async fn patch(api: &Api<FakeMachine>, name: &str, patch: serde_json::Value) {
    for _ in 0..10 {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 500 => continue,
            Err(e) => panic!("patching {name}: {e}"),
        }
    }
    panic!("patching {name}: still failing after 10 tries");
}

/// Polls until the InfraMachine's resourceVersion has not moved for 400 ms (at most 5 s).
async fn settle(api: &Api<FakeMachine>, name: &str) -> Option<FakeMachine> {
    let start = Instant::now();
    let mut last = api.get_opt(name).await.unwrap();
    let mut stable_since = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = api.get_opt(name).await.unwrap();
        if now.as_ref().map(|m| m.resource_version()) != last.as_ref().map(|m| m.resource_version())
        {
            stable_since = Instant::now();
            last = now;
        } else if stable_since.elapsed() > Duration::from_millis(400) {
            return now;
        }
    }
    last
}

async fn run_case(fx: &Fixture, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let client: Client = fx.env.client();
    let case = CASE.fetch_add(1, Ordering::SeqCst);
    let ns = format!("seq-{case}");
    let name = format!("m{case}");
    let post = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(
            &post,
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), &ns);
    clusters
        .create(&post, &serde_json::from_value(json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": "c"},
                "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}}})).unwrap())
        .await
        .unwrap();
    clusters
        .patch_status("c", &PatchParams::default(), &Patch::Merge(json!({"status": {"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}}})))
        .await
        .unwrap();
    let infra: Api<FakeMachine> = Api::namespaced(client.clone(), &ns);
    infra
        .create(&post, &serde_json::from_value(json!({"apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeMachine",
            "metadata": {"name": name, "labels": {"cluster.x-k8s.io/cluster-name": "c"}}, "spec": {}})).unwrap())
        .await
        .unwrap();
    let machines: Api<Machine> = Api::namespaced(client.clone(), &ns);
    let mut world = World::default();

    for step in steps {
        if world.deleted && !matches!(step, Step::Pause | Step::Unpause) {
            continue;
        }
        match step {
            Step::CreateOwner if !world.owner => {
                let m = machines
                    .create(&post, &serde_json::from_value(json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                        "metadata": {"name": name, "labels": {"cluster.x-k8s.io/control-plane": "", "cluster.x-k8s.io/cluster-name": "c"}},
                        "spec": {"clusterName": "c", "bootstrap": {},
                            "infrastructureRef": {"apiGroup": "infrastructure.example.com", "kind": "FakeMachine", "name": name}}})).unwrap())
                    .await
                    .unwrap();
                let owner = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": name, "uid": m.uid(), "controller": true, "blockOwnerDeletion": true});
                patch(
                    &infra,
                    &name,
                    json!({"metadata": {"ownerReferences": [owner]}}),
                )
                .await;
                world.owner = true;
            }
            Step::CreateBootstrapData if world.owner && !world.bootstrap => {
                let secret = format!("{name}-bootstrap");
                Api::<Secret>::namespaced(client.clone(), &ns)
                    .create(&post, &serde_json::from_value(json!({"metadata": {"name": secret}, "stringData": {"value": "#cloud-config\n", "format": "cloud-config"}})).unwrap())
                    .await
                    .unwrap();
                machines
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"bootstrap": {"dataSecretName": secret}}})),
                    )
                    .await
                    .unwrap();
                world.bootstrap = true;
            }
            Step::Update => {
                patch(
                    &infra,
                    &name,
                    json!({"spec": {"size": format!("s{}", case % 3)}}),
                )
                .await;
            }
            Step::Pause | Step::Unpause => {
                let paused = matches!(step, Step::Pause);
                clusters
                    .patch(
                        "c",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"paused": paused}})),
                    )
                    .await
                    .unwrap();
                world.paused = paused;
            }
            Step::Delete => {
                infra
                    .delete(&name, &DeleteParams::background())
                    .await
                    .unwrap();
                world.deleted = true;
            }
            Step::Conflicts | Step::ServerErrors => {
                let code = if matches!(step, Step::Conflicts) {
                    409
                } else {
                    500
                };
                fx.env.server().faults().add(
                    FaultRule::new(Fault::Status(code))
                        .verb("PATCH")
                        .path_contains(&format!("/namespaces/{ns}/fakemachines/"))
                        .times(2),
                );
            }
            _ => continue,
        }

        let settled = settle(&infra, &name).await;
        // Invariants of the contract, whatever came before.
        match &settled {
            None => {
                prop_assert!(
                    world.deleted,
                    "the InfraMachine vanished without being deleted"
                );
                // Paused before the finalizer was added, nothing was created: it may go.
                prop_assert!(
                    !(world.paused && world.finalized),
                    "finalizer removed while paused"
                );
                prop_assert!(
                    !fx.cloud
                        .instances
                        .lock()
                        .unwrap()
                        .contains_key(&common::instance_key(&Some(ns.clone()), &name)),
                    "the instance outlived its InfraMachine"
                );
                // Gone, and with it the finalizer: later steps judge a vanished object.
                world.finalized = false;
            }
            Some(m) => {
                world.finalized = finalized(m);
                if finalized(m) {
                    prop_assert!(
                        world.owner,
                        "finalizer added before the owner Machine existed"
                    );
                }
                if provisioned(m) {
                    prop_assert!(world.bootstrap, "provisioned before bootstrap data existed");
                    prop_assert!(
                        m.spec.contract.provider_id.is_some(),
                        "provisioned without providerID"
                    );
                }
                if world.paused {
                    // Paused: nothing moves, not even a deletion.
                    let rv = m.resource_version();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let again = infra.get_opt(&name).await.unwrap();
                    prop_assert_eq!(
                        again.and_then(|m| m.resource_version()),
                        rv,
                        "written while paused"
                    );
                } else if world.deleted && world.owner {
                    prop_assert!(
                        false,
                        "deletion not done with the owner present and unpaused: {:?}",
                        m.status
                    );
                } else if world.owner && world.bootstrap && !world.deleted {
                    prop_assert!(
                        provisioned(m),
                        "not provisioned with owner and bootstrap data: {:?}",
                        m.status
                    );
                }
            }
        }
    }

    // The end: unpaused and deleted, nothing is left behind.
    clusters
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    if !world.deleted {
        infra
            .delete(&name, &DeleteParams::background())
            .await
            .unwrap();
    }
    let start = Instant::now();
    while infra.get_opt(&name).await.unwrap().is_some() {
        prop_assert!(
            start.elapsed() < Duration::from_secs(10),
            "the InfraMachine was never let go"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    prop_assert!(
        !fx.cloud
            .instances
            .lock()
            .unwrap()
            .contains_key(&common::instance_key(&Some(ns.clone()), &name)),
        "leaked instance"
    );
    Ok(())
}

#[test]
fn random_sequences_keep_the_contract() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fx = rt.block_on(async {
        let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
        crds.extend(common::crds());
        let env = TestEnv::builder().crds(crds).start().await.unwrap();
        let cloud = FakeCloud::default();
        let manager = Manager::new(env.client(), ManagerOptions::new("sequences"))
            .machine(cloud.clone())
            .cluster(cloud.clone());
        tokio::spawn(manager.run_until(std::future::pending()));
        Fixture { env, cloud }
    });
    let config = ProptestConfig {
        cases: 10,
        max_shrink_iters: 20,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..8))| {
        rt.block_on(run_case(&fx, steps))?;
    });
}
