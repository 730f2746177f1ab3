//! Chaos: 5 clusters of 10 machines on a cloud failing 20% of its calls (a third of the failed
//! creates and deletes losing their answer after taking effect), while the API server injects
//! 500s, 409s and 429s into the provider's writes and reads. Every machine provisions,
//! everything deletes, no cloud resource leaks and no finalizer is left behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine};
use capi_provider_simcloud::api::{SimCloudCluster, SimCloudMachine};
use capi_provider_simcloud::cloud::CloudConfig;
use capi_testkit::server::faults::{Fault, FaultRule};
use common::{eventually, quick_cloud, start};
use kube::api::{Api, DeleteParams, ListParams};

const CLUSTERS: usize = 5;
const WORKERS: u32 = 9;
const NS: &str = "chaos";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_machines_through_a_failing_cloud_and_api_server() {
    let r = start(
        CloudConfig {
            error_rate: 0.2,
            seed: 42,
            ..quick_cloud()
        },
        true,
    )
    .await;
    let client = r.client();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await
        .unwrap();
    for i in 0..CLUSTERS {
        let yaml = capi_provider_simcloud::testkit_cluster(&format!("c{i}"), NS, WORKERS).unwrap();
        capi_testkit::apply::apply_yaml(&client, &yaml, NS, "chaos-test")
            .await
            .unwrap();
    }
    // Faults from here on: the provider and the simulator meet them, the test's own writes not.
    let faults = r.env.server().faults();
    for (verb, path, code, times) in [
        ("PATCH", "/simcloudmachines/", 500, 40),
        ("PATCH", "/simcloudmachines/", 409, 40),
        ("PATCH", "/simcloudclusters/", 500, 10),
        ("GET", "/simcloudmachines", 429, 10),
        ("GET", "/secrets/", 500, 10),
    ] {
        faults.add(
            FaultRule::new(Fault::Status(code))
                .verb(verb)
                .path_contains(path)
                .times(times),
        );
    }

    let total = CLUSTERS * (WORKERS as usize + 1);
    let machines: Api<Machine> = Api::namespaced(client.clone(), NS);
    eventually(
        &format!("all {total} machines running"),
        Duration::from_secs(150),
        || async {
            let list = machines.list(&ListParams::default()).await.unwrap().items;
            list.len() == total
                && list.iter().all(|m| {
                    m.status
                        .as_ref()
                        .and_then(|s| s.phase.as_ref())
                        .is_some_and(|p| format!("{p:?}") == "Running")
                })
        },
    )
    .await;
    let inventory = r.cloud.inventory();
    assert_eq!(
        inventory.instances,
        total,
        "one instance per machine, no duplicates: {:?}",
        r.cloud
            .live_instances()
            .iter()
            .map(|i| &i.name)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (inventory.networks, inventory.load_balancers),
        (CLUSTERS, CLUSTERS)
    );
    let stats = r.cloud.stats();
    println!(
        "cloud calls: {}, injected errors: {}; API faults injected: {}",
        stats.calls,
        stats.injected_errors,
        faults.injected()
    );
    assert!(stats.injected_errors > 0);

    let clusters: Api<Cluster> = Api::namespaced(client.clone(), NS);
    for i in 0..CLUSTERS {
        clusters
            .delete(&format!("c{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    let sim_machines: Api<SimCloudMachine> = Api::namespaced(client.clone(), NS);
    let sim_clusters: Api<SimCloudCluster> = Api::namespaced(client.clone(), NS);
    eventually("every object gone", Duration::from_secs(120), || async {
        clusters
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
            && machines
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
            && sim_machines
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
            && sim_clusters
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
    })
    .await;
    eventually("an empty cloud", Duration::from_secs(20), || async {
        r.cloud.inventory().is_empty()
    })
    .await;
    r.stop().await;
}
