//! A cluster on SimCloud comes up, scales and goes away, and the cloud is left empty.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capi_provider_sdk::capi_core::v1beta2::{Cluster, MachineDeployment};
use capi_provider_simcloud::api::{SimCloudCluster, SimCloudMachine};
use capi_provider_simcloud::provider::instance_id_from_provider_id;
use common::{eventually, quick_cloud, start};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

const T: Duration = Duration::from_secs(40);

async fn running_machines(r: &common::Running, n: usize) -> bool {
    r.describe("default", "c1")
        .await
        .is_some_and(|d| d.machines().count() == n && d.machines().all(|m| m.phase == "Running"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_comes_up_scales_and_goes_without_leaks() {
    let r = start(quick_cloud(), true).await;
    let client = r.client();
    let yaml = capi_provider_simcloud::testkit_cluster("c1", "default", 2).unwrap();
    capi_testkit::apply::apply_yaml(&client, &yaml, "default", "test")
        .await
        .unwrap();

    eventually("1 control-plane and 2 worker machines running", T, || {
        running_machines(&r, 3)
    })
    .await;
    let tree = r.describe("default", "c1").await.unwrap();
    println!("{tree}");
    assert!(tree.infrastructure_provisioned && tree.control_plane_initialized);

    // The cluster's endpoint is the load balancer, its failure domains the cloud's zones.
    let cluster: Cluster = Api::namespaced(client.clone(), "default")
        .get("c1")
        .await
        .unwrap();
    let host = cluster.spec.control_plane_endpoint.unwrap().host.unwrap();
    assert!(host.ends_with(".lb.simcloud.internal"), "{host}");
    let zones: Vec<String> = cluster
        .status
        .unwrap()
        .failure_domains
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(zones, ["zone-a", "zone-b", "zone-c"]);
    let infra: SimCloudCluster = Api::namespaced(client.clone(), "default")
        .get("c1")
        .await
        .unwrap();
    let status = infra.status.unwrap();
    assert!(status.network.unwrap().id.is_some());
    assert!(status.load_balancer.unwrap().id.is_some());

    // Every machine's providerID names a live instance that booted with bootstrap data, and
    // the instance ID the provider recorded is the same.
    let machines: Api<SimCloudMachine> = Api::namespaced(client.clone(), "default");
    let live = r.cloud.live_instances();
    for m in machines.list(&ListParams::default()).await.unwrap() {
        let provider_id = m.spec.contract.provider_id.clone().unwrap();
        let id = instance_id_from_provider_id(&provider_id).unwrap();
        let status = m.status.unwrap();
        assert_eq!(status.instance_id.as_deref(), Some(id));
        assert_eq!(status.instance_state.as_deref(), Some("Running"));
        let instance = live.iter().find(|i| i.id == id).unwrap();
        assert!(instance.user_data_len > 0, "booted without bootstrap data");
        assert_eq!(
            status.contract.failure_domain.as_deref(),
            Some(instance.zone.as_str())
        );
        assert!(status.contract.addresses.unwrap().len() == 2);
    }
    let inventory = r.cloud.inventory();
    assert_eq!(
        (
            inventory.instances,
            inventory.networks,
            inventory.load_balancers
        ),
        (3, 1, 1)
    );

    // Scale out and in.
    let mds: Api<MachineDeployment> = Api::namespaced(client.clone(), "default");
    let scale = |n: i32| {
        let mds = mds.clone();
        async move {
            mds.patch(
                "c1-md-0",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": n}})),
            )
            .await
            .unwrap();
        }
    };
    scale(4).await;
    eventually("5 machines running", T, || running_machines(&r, 5)).await;
    scale(1).await;
    eventually("2 machines running and 3 instances gone", T, || async {
        running_machines(&r, 2).await && r.cloud.inventory().instances == 2
    })
    .await;

    // Delete the cluster: everything goes, in the cloud too.
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    clusters
        .delete("c1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the cluster and its objects gone", T, || async {
        r.describe("default", "c1").await.is_none()
            && machines
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
    })
    .await;
    eventually("an empty cloud", T, || async {
        r.cloud.inventory().is_empty()
    })
    .await;
    let infra: Api<SimCloudCluster> = Api::namespaced(client.clone(), "default");
    assert!(
        infra
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    r.stop().await;
}

/// A namespace deleted with CAPI gone: the Machines and the Cluster vanish at once, before their
/// infrastructure objects, and the provider still tears the cloud resources down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infrastructure_is_torn_down_when_capi_objects_go_first() {
    use capi_provider_sdk::capi_core::v1beta2::Machine;
    use k8s_openapi::api::core::v1::Namespace;
    let mut r = start(quick_cloud(), true).await;
    let client = r.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let yaml = capi_provider_simcloud::testkit_cluster("c1", "doomed", 1).unwrap();
    capi_testkit::apply::apply_yaml(&client, &yaml, "doomed", "test")
        .await
        .unwrap();
    eventually("2 machines running", T, || async {
        r.describe("doomed", "c1").await.is_some_and(|d| {
            d.machines().count() == 2 && d.machines().all(|m| m.phase == "Running")
        })
    })
    .await;
    assert_eq!(r.cloud.inventory().instances, 2);

    // CAPI stops; its objects lose their finalizers and go first when the namespace does.
    r.stop_simulator().await;
    let strip = json!({"metadata": {"finalizers": null}});
    let machines: Api<Machine> = Api::namespaced(client.clone(), "doomed");
    for m in machines.list(&ListParams::default()).await.unwrap() {
        machines
            .patch(
                &m.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&strip),
            )
            .await
            .unwrap();
    }
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "doomed");
    clusters
        .patch("c1", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .unwrap();
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();

    eventually("every instance terminated", T, || async {
        r.cloud.inventory().instances == 0
    })
    .await;
    let infra: Api<SimCloudMachine> = Api::namespaced(client.clone(), "doomed");
    eventually(
        "the SimCloudMachines gone with their finalizers",
        T,
        || async {
            infra
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        },
    )
    .await;
    r.stop().await;
}
