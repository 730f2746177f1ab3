//! The provider, agents and the CAPI-core simulator against capi-testkit's API server: hosts
//! are claimed by selector, bootstrapped, released and cleaned; a machine without a free host
//! waits, then provisions once a host registers.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use capi_provider_byoh::{ByoCluster, ByoHost, ByoMachine, ByohProvider};
use capi_provider_sdk::capi_core::bootstrap::BootstrapData;
use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine};
use capi_provider_sdk::{Manager, ManagerOptions};
use capi_testkit::simulator::Simulator;
use common::{agent, eventually};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "default";

async fn create_machine(client: &kube::Client, name: &str) {
    let bm: Api<ByoMachine> = Api::namespaced(client.clone(), NS);
    bm.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoMachine",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"role": "control-plane"}}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let machines: Api<Machine> = Api::namespaced(client.clone(), NS);
    machines
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                "metadata": {"name": name, "labels": {"cluster.x-k8s.io/control-plane": ""}},
                "spec": {"clusterName": "c1", "version": "v1.34.0", "bootstrap": {},
                    "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "ByoMachine", "name": name}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

fn provisioned(bm: &ByoMachine) -> bool {
    bm.status
        .as_ref()
        .and_then(|s| s.contract.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true)
}

fn ready_reason(bm: &ByoMachine) -> Option<String> {
    bm.status
        .as_ref()?
        .contract
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_claimed_bootstrapped_released_and_cleaned() {
    let env = common::env().await;
    let client = env.client();
    let dir = common::work_dir("lifecycle");
    let cp = [("role", "control-plane")];
    let mut agents = BTreeMap::new();
    for (name, labels, ip) in [
        ("host-0", &cp[..], "10.0.0.10"),
        ("host-1", &cp[..], "10.0.0.11"),
        ("host-2", &[("role", "worker")][..], "10.0.0.12"),
    ] {
        agents.insert(name, agent(&client, NS, name, labels, ip, &dir).await);
    }
    // A matching host whose agent died long ago: never claimed.
    let hosts: Api<ByoHost> = Api::namespaced(client.clone(), NS);
    hosts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoHost",
                "metadata": {"name": "ghost", "labels": {"role": "control-plane"}}, "spec": {}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    hosts
        .patch_status(
            "ghost",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastHeartbeat": "2020-01-01T00:00:00Z", "observedGeneration": 1}})),
        )
        .await
        .unwrap();
    let provider = ByohProvider::default()
        .with_poll(Duration::from_millis(200))
        .with_heartbeat_timeout(Duration::from_secs(10));
    tokio::spawn(
        Manager::new(client.clone(), ManagerOptions::new("byoh-provider"))
            .machine(provider.clone())
            .cluster(provider)
            .run_until(std::future::pending()),
    );
    let sim = Simulator::new(client.clone()).start();

    let byo_clusters: Api<ByoCluster> = Api::namespaced(client.clone(), NS);
    let byo_machines: Api<ByoMachine> = Api::namespaced(client.clone(), NS);
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), NS);
    let machines: Api<Machine> = Api::namespaced(client.clone(), NS);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);

    byo_clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoCluster",
                "metadata": {"name": "c1"},
                "spec": {"controlPlaneEndpoint": {"host": "10.0.0.100", "port": 6443}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": "c1"},
                "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "ByoCluster", "name": "c1"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    for m in ["m1", "m2", "m3"] {
        create_machine(&client, m).await;
    }

    // Two control-plane hosts for three machines: two provision, the third waits.
    eventually("two machines to provision", 20, || async {
        let list = byo_machines.list(&Default::default()).await.unwrap().items;
        list.iter().filter(|m| provisioned(m)).count() == 2
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
    let list = byo_machines.list(&Default::default()).await.unwrap().items;
    let waiting: Vec<_> = list.iter().filter(|m| !provisioned(m)).collect();
    assert_eq!(waiting.len(), 1);
    let waiting_name = waiting[0].name_any();
    eventually("the extra machine to report WaitingForHost", 10, || async {
        let bm = byo_machines.get(&waiting_name).await.unwrap();
        ready_reason(&bm).as_deref() == Some("WaitingForHost")
    })
    .await;
    let bm = byo_machines.get(&waiting_name).await.unwrap();
    let status = serde_json::to_value(bm.status.as_ref().unwrap()).unwrap();
    assert!(
        status.get("failureReason").is_none() && status.get("deprecated").is_none(),
        "waiting for a host is not a failure: {status}"
    );

    let worker = hosts.get("host-2").await.unwrap();
    assert!(
        worker.spec.claim.is_none(),
        "a non-matching host was claimed"
    );

    for bm in list.iter().filter(|m| provisioned(m)) {
        let name = bm.name_any();
        let host_name = bm
            .spec
            .contract
            .provider_id
            .as_deref()
            .and_then(|p| p.strip_prefix("byoh://"))
            .unwrap()
            .to_owned();
        assert!(
            host_name == "host-0" || host_name == "host-1",
            "{host_name}"
        );
        let host = hosts.get(&host_name).await.unwrap();
        assert_eq!(host.spec.claim.as_ref().unwrap().name, name);
        assert_eq!(
            bm.status
                .as_ref()
                .unwrap()
                .host_ref
                .as_ref()
                .map(|h| h.name.as_str()),
            Some(host_name.as_str())
        );
        eventually("the Machine to run", 15, || async {
            let m = machines.get(&name).await.unwrap();
            m.status
                .and_then(|s| s.phase)
                .is_some_and(|p| format!("{p:?}") == "Running")
        })
        .await;
        let m = machines.get(&name).await.unwrap();
        assert_eq!(
            m.spec.provider_id.as_deref(),
            Some(format!("byoh://{host_name}").as_str())
        );
        let secret = secrets
            .get(m.spec.bootstrap.data_secret_name.as_deref().unwrap())
            .await
            .unwrap();
        let data = BootstrapData::from_secret(&secret).unwrap();
        let file = agents[host_name.as_str()].bootstrap_file();
        assert_eq!(std::fs::read(&file).unwrap(), data.value, "{file:?}");
        let hs = host.status.unwrap();
        assert_eq!(
            hs.bootstrap_data_hash.as_deref(),
            Some(capi_provider_byoh::hash::digest(&data.value).as_str())
        );
        assert_eq!(
            bm.status
                .as_ref()
                .unwrap()
                .contract
                .addresses
                .as_ref()
                .unwrap()[0]
                .address,
            hs.addresses.unwrap()[0].address
        );
    }

    // A new matching host registers: the waiting machine takes it.
    agents.insert(
        "host-3",
        agent(&client, NS, "host-3", &cp, "10.0.0.13", &dir).await,
    );
    eventually(
        "the waiting machine to provision on the new host",
        20,
        || async { provisioned(&byo_machines.get(&waiting_name).await.unwrap()) },
    )
    .await;
    assert_eq!(
        byo_machines
            .get(&waiting_name)
            .await
            .unwrap()
            .spec
            .contract
            .provider_id
            .as_deref(),
        Some("byoh://host-3")
    );
    assert!(hosts.get("host-2").await.unwrap().spec.claim.is_none());
    assert!(hosts.get("ghost").await.unwrap().spec.claim.is_none());

    clusters
        .delete("c1", &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "everything to be deleted and every host cleaned",
        30,
        || async {
            let mut done = clusters.get_opt("c1").await.unwrap().is_none()
                && byo_machines
                    .list(&Default::default())
                    .await
                    .unwrap()
                    .items
                    .is_empty()
                && byo_clusters
                    .list(&Default::default())
                    .await
                    .unwrap()
                    .items
                    .is_empty();
            for h in hosts.list(&Default::default()).await.unwrap().items {
                done &= h.spec.claim.is_none() && h.clean();
            }
            for a in agents.values() {
                done &= !a.bootstrap_file().exists();
            }
            done
        },
    )
    .await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
