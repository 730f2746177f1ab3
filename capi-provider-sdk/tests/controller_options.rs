//! The generated controllers' knobs, each checked against capi-testkit's API server: bounded
//! concurrency, namespace scoping, the label-selector watch filter, and the patch helper's
//! conflict retries (409s injected by the server's fault rules).
//!
//! The objects are created as CAPI core leaves them (owner references, bootstrap data, Cluster
//! initialized), so no simulator runs and each test only exercises the knob it names.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine};
use capi_provider_sdk::patch::{PatchHelper, PatchOptions};
use capi_provider_sdk::{
    DeleteOutcome, Failure, InfraMachine, MachineContext, MachineOutcome, Manager, ManagerOptions,
    async_trait,
};
use capi_testkit::env::TestEnv;
use capi_testkit::server::faults::{Fault, FaultRule};
use common::{CloudError, FakeMachine};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// Provisions after a pause, recording how many reconciles ran at once.
#[derive(Clone, Default)]
struct SlowCloud {
    in_flight: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl InfraMachine for SlowCloud {
    type Resource = FakeMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<FakeMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(
            MachineOutcome::provisioned(format!("slow:///{}", cx.infra_machine.name_any()))
                .with_internal_ip("10.0.0.1")
                .into(),
        )
    }

    async fn delete(
        &self,
        _cx: &mut MachineContext<FakeMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        Ok(DeleteOutcome::Deleted)
    }
}

async fn env() -> TestEnv {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(common::crds());
    TestEnv::builder().crds(crds).start().await.unwrap()
}

/// A namespace with an initialized Cluster `c` and its bootstrap data secret.
async fn cluster(client: &Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "bootstrap"},
                "stringData": {"value": "#cloud-config\n", "format": "cloud-config"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), ns);
    clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "Cluster", "metadata": {"name": "c"},
                "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    clusters
        .patch_status(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"initialization": {
                "infrastructureProvisioned": true, "controlPlaneInitialized": true}}})),
        )
        .await
        .unwrap();
}

/// A Machine of cluster `c` and its FakeMachine, owned by it; `labels` go on the FakeMachine.
async fn machine(client: &Client, ns: &str, name: &str, labels: serde_json::Value) {
    let machines: Api<Machine> = Api::namespaced(client.clone(), ns);
    let m = machines
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                "metadata": {"name": name, "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
                "spec": {"clusterName": "c", "bootstrap": {"dataSecretName": "bootstrap"},
                    "infrastructureRef": {"apiGroup": "infrastructure.example.com",
                        "kind": "FakeMachine", "name": name}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut labels = labels;
    labels["cluster.x-k8s.io/cluster-name"] = json!("c");
    let fake: Api<FakeMachine> = Api::namespaced(client.clone(), ns);
    fake.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "infrastructure.example.com/v1alpha1", "kind": "FakeMachine",
            "metadata": {"name": name, "labels": labels,
                "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                    "name": name, "uid": m.uid(), "controller": true}]},
            "spec": {}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
}

fn provisioned(m: &FakeMachine) -> bool {
    m.spec.contract.provider_id.is_some()
        && m.status
            .as_ref()
            .and_then(|s| s.contract.initialization.as_ref())
            .and_then(|i| i.provisioned)
            == Some(true)
}

async fn wait_provisioned(api: &Api<FakeMachine>, names: &[String]) {
    for _ in 0..400 {
        let mut all = true;
        for n in names {
            all &= provisioned(&api.get(n).await.unwrap());
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {names:?} to be provisioned");
}

/// Runs the SDK's Manager with `provider` and `options` until the returned sender is dropped.
fn run(
    client: Client,
    options: ManagerOptions,
    provider: SlowCloud,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Manager::new(client, options)
            .machine(provider)
            .run_until(async move {
                let _ = stopped.await;
            }),
    );
    stop
}

/// The object was never written by the provider: no finalizer, no status, same version.
async fn untouched(api: &Api<FakeMachine>, name: &str, version: &str) {
    let m = api.get(name).await.unwrap();
    assert!(m.finalizers().is_empty(), "{name} got a finalizer");
    assert!(m.status.is_none(), "{name} got a status");
    assert_eq!(
        m.resource_version().as_deref(),
        Some(version),
        "{name} was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_never_run_more_at_once_than_the_concurrency() {
    let env = env().await;
    let client = env.client();
    cluster(&client, "conc").await;
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    for n in &names {
        machine(&client, "conc", n, json!({})).await;
    }
    let cloud = SlowCloud::default();
    let options = ManagerOptions {
        concurrency: 3,
        ..ManagerOptions::new("concurrency")
    };
    let _stop = run(client.clone(), options, cloud.clone());
    wait_provisioned(&Api::namespaced(client, "conc"), &names).await;
    // Twelve slow reconciles with room for three: the bound was reached and never exceeded.
    assert_eq!(cloud.most_at_once.load(Ordering::SeqCst), 3);
    assert!(cloud.calls.load(Ordering::SeqCst) >= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_manager_leaves_other_namespaces_alone() {
    let env = env().await;
    let client = env.client();
    cluster(&client, "mine").await;
    cluster(&client, "theirs").await;
    machine(&client, "mine", "a", json!({})).await;
    machine(&client, "theirs", "b", json!({})).await;
    let theirs: Api<FakeMachine> = Api::namespaced(client.clone(), "theirs");
    let version = theirs.get("b").await.unwrap().resource_version().unwrap();
    let options = ManagerOptions {
        namespace: Some("mine".into()),
        ..ManagerOptions::new("scoped")
    };
    let _stop = run(client.clone(), options, SlowCloud::default());
    wait_provisioned(&Api::namespaced(client, "mine"), &["a".into()]).await;
    untouched(&theirs, "b", &version).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_filter_selects_by_label() {
    let env = env().await;
    let client = env.client();
    cluster(&client, "filter").await;
    machine(
        &client,
        "filter",
        "selected",
        json!({"cluster.x-k8s.io/watch-filter": "team-a"}),
    )
    .await;
    machine(
        &client,
        "filter",
        "other-team",
        json!({"cluster.x-k8s.io/watch-filter": "team-b"}),
    )
    .await;
    machine(&client, "filter", "unlabelled", json!({})).await;
    let api: Api<FakeMachine> = Api::namespaced(client.clone(), "filter");
    let mut versions = Vec::new();
    for n in ["other-team", "unlabelled"] {
        versions.push((n, api.get(n).await.unwrap().resource_version().unwrap()));
    }
    let options = ManagerOptions {
        watch_filter: Some("team-a".into()),
        ..ManagerOptions::new("filtered")
    };
    let _stop = run(client.clone(), options, SlowCloud::default());
    wait_provisioned(&api, &["selected".into()]).await;
    for (n, v) in versions {
        untouched(&api, n, &v).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conflicts_are_retried_until_the_write_lands() {
    let env = env().await;
    let client = env.client();
    cluster(&client, "retry").await;
    machine(&client, "retry", "m", json!({})).await;
    let api: Api<FakeMachine> = Api::namespaced(client.clone(), "retry");
    let before = api.get("m").await.unwrap();
    let mut after = before.clone();
    after.status = Some(
        serde_json::from_value(json!({
            "initialization": {"provisioned": true},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }))
        .unwrap(),
    );
    let faults = env.server().faults();
    faults.add(
        FaultRule::new(Fault::Status(409))
            .verb("PATCH")
            .path_contains("/fakemachines/m/status")
            .times(2),
    );
    let options = PatchOptions {
        retry_delay: Duration::from_millis(5),
        ..PatchOptions::owning(["Ready"])
    };
    let summary = PatchHelper::new(&before)
        .unwrap()
        .patch(&api, &after, &options)
        .await
        .unwrap();
    assert_eq!(faults.injected(), 2);
    assert_eq!(summary.conflicts, 2);
    assert!(summary.wrote_status && !summary.wrote_main);
    let written = api.get("m").await.unwrap();
    assert!(provisioned_status(&written));

    // Conflicting every time: the helper gives up after its attempts, with a typed error.
    faults.add(
        FaultRule::new(Fault::Status(409))
            .verb("PATCH")
            .path_contains("/fakemachines/m/status"),
    );
    let mut again = written.clone();
    if let Some(c) = again
        .status
        .as_mut()
        .and_then(|s| s.contract.conditions.as_mut())
        .and_then(|c| c.first_mut())
    {
        c.reason = "Changed".into();
    }
    let err = PatchHelper::new(&written)
        .unwrap()
        .patch(&api, &again, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            capi_provider_sdk::patch::PatchError::TooManyConflicts { attempts: 5 }
        ),
        "{err}"
    );
    faults.clear();
}

fn provisioned_status(m: &FakeMachine) -> bool {
    m.status
        .as_ref()
        .and_then(|s| s.contract.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_provisions_through_injected_conflicts() {
    let env = env().await;
    let client = env.client();
    cluster(&client, "faulty").await;
    machine(&client, "faulty", "m", json!({})).await;
    let faults = env.server().faults();
    // Every first status write conflicts (a stale read), three times in all.
    faults.add(
        FaultRule::new(Fault::Status(409))
            .verb("PATCH")
            .path_contains("/fakemachines/m/status")
            .times(3),
    );
    let _stop = run(
        client.clone(),
        ManagerOptions::new("conflicts"),
        SlowCloud::default(),
    );
    let api: Api<FakeMachine> = Api::namespaced(client, "faulty");
    wait_provisioned(&api, &["m".into()]).await;
    assert_eq!(faults.injected(), 3);
    let m = api.get("m").await.unwrap();
    let ready = m
        .status
        .and_then(|s| s.contract.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"));
    assert_eq!(ready.map(|c| c.status).as_deref(), Some("True"));
}
