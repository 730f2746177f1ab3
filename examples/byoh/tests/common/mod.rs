//! Shared by the integration tests: an API server with the core and BYOH CRDs, agents, waits.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use capi_provider_byoh::Agent;
use capi_testkit::env::TestEnv;

/// An API server (capi-testkit's, over HTTP) with CAPI core's CRDs and ours.
pub async fn env() -> TestEnv {
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(capi_provider_byoh::crds());
    TestEnv::builder().crds(crds).start().await.unwrap()
}

/// A fresh work directory for agents.
pub fn work_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byoh-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts an agent for `name` with `labels`; returns it (to find its files) after it
/// registered.
pub async fn agent(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
    address: &str,
    work_dir: &std::path::Path,
) -> Agent {
    let agent = Agent::builder(client.clone(), namespace, name)
        .labels(labels.iter().copied())
        .heartbeat(Duration::from_millis(300))
        .work_dir(work_dir)
        .address(address)
        .build();
    agent.register().await.unwrap();
    tokio::spawn(agent.clone().run_until(std::future::pending()));
    agent
}

/// Polls `f` every 50 ms for up to `secs` seconds.
pub async fn eventually<F, Fut>(what: &str, secs: u64, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
