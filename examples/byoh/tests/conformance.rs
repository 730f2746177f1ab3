//! capi-testkit's conformance suite against the provider in process, with a pool of agents in a
//! dedicated host namespace (the suite's scenarios each create a namespace of their own, so the
//! provider runs with `host_namespace`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capi_provider_byoh::{ByoHost, ByoMachine, ByohProvider};
use capi_provider_sdk::capi_core::v1beta2::Cluster;
use capi_provider_sdk::{Manager, ManagerOptions};
use capi_testkit::conformance::{ConformanceConfig, run};
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::json;

const HOSTS: &str = "byoh-hosts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let env = common::env().await;
    let client = env.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": HOSTS}})).unwrap(),
        )
        .await
        .unwrap();
    let dir = common::work_dir("conformance");
    // md-scale runs four machines at once; a few spare for releases still being cleaned.
    for i in 0..8 {
        common::agent(
            &client,
            HOSTS,
            &format!("host-{i}"),
            &[],
            &format!("10.0.1.{}", i + 1),
            &dir,
        )
        .await;
    }
    let provider = ByohProvider::default()
        .with_host_namespace(HOSTS)
        .with_poll(Duration::from_millis(100))
        .with_heartbeat_timeout(Duration::from_secs(10));
    tokio::spawn(
        provider
            .clone()
            .collect_orphans(client.clone(), Duration::from_millis(500)),
    );
    tokio::spawn(
        Manager::new(client.clone(), ManagerOptions::new("byoh-provider"))
            .machine(provider.clone())
            .cluster(provider)
            .run_until(std::future::pending()),
    );
    let config = ConformanceConfig {
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(15),
        faults: Some(env.server().faults().clone()),
        ..ConformanceConfig::new(client)
    };
    let report = run(config).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    // The scenarios' namespaces are deleted under the provider (Machines with them): every host
    // must come back free and clean, except those of the pause scenarios, whose ByoMachines stay
    // (paused, deleting, with their finalizer) as the contract demands.
    let hosts: Api<ByoHost> = Api::namespaced(env.client(), HOSTS);
    common::eventually(
        "every host of a gone ByoMachine to be released and cleaned",
        15,
        || async {
            let mut done = true;
            for h in hosts.list(&Default::default()).await.unwrap().items {
                let claimant = match &h.spec.claim {
                    Some(c) => {
                        let bm: Api<ByoMachine> = Api::namespaced(env.client(), &c.namespace);
                        bm.get_opt(&c.name).await.unwrap()
                    }
                    None => None,
                };
                done &= match claimant {
                    Some(bm) => {
                        bm.annotations().contains_key("cluster.x-k8s.io/paused") || {
                            let clusters: Api<Cluster> =
                                Api::namespaced(env.client(), &bm.namespace().unwrap());
                            clusters
                                .get_opt("c1")
                                .await
                                .unwrap()
                                .is_some_and(|c| c.spec.paused == Some(true))
                        }
                    }
                    None => !h.claimed() && h.clean(),
                };
            }
            done
        },
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
