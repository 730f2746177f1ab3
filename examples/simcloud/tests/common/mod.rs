//! The provider under its Manager on capi-testkit's API server, with the CAPI-core simulator.

#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use capi_provider_sdk::{Manager, ManagerOptions};
use capi_provider_simcloud::cloud::{CloudConfig, SimCloud};
use capi_provider_simcloud::provider::SimCloudProvider;
use capi_testkit::describe::{ClusterDescription, describe_cluster};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::{Simulator, SimulatorHandle, SimulatorOptions};

/// A fast cloud for tests: real habits, short waits.
pub fn quick_cloud() -> CloudConfig {
    CloudConfig {
        latency: Duration::from_millis(1),
        consistency_delay: Duration::from_millis(150),
        boot_time: Duration::from_millis(300),
        lb_provision_time: Duration::from_millis(200),
        teardown_time: Duration::from_millis(150),
        ..CloudConfig::default()
    }
}

pub struct Running {
    pub env: TestEnv,
    pub cloud: SimCloud,
    stop: tokio::sync::oneshot::Sender<()>,
    manager: tokio::task::JoinHandle<Result<(), capi_provider_sdk::ManagerError>>,
    simulator: Option<SimulatorHandle>,
}

pub async fn env() -> TestEnv {
    // Logs for a failing run: RUST_LOG=info cargo test -- --nocapture
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.extend(capi_provider_simcloud::api::crds().unwrap());
    TestEnv::builder().crds(crds).start().await.unwrap()
}

/// Server, provider and (when `simulate`) the CAPI-core simulator.
pub async fn start(config: CloudConfig, simulate: bool) -> Running {
    let env = env().await;
    let cloud = SimCloud::new(config);
    let provider = SimCloudProvider::new(cloud.clone()).with_poll(Duration::from_millis(100));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = tokio::spawn(
        Manager::new(env.client(), ManagerOptions::new("capi-provider-simcloud"))
            .machine(provider.clone())
            .cluster(provider)
            .run_until(async move {
                let _ = stopped.await;
            }),
    );
    let simulator = simulate.then(|| {
        Simulator::new(env.client())
            .options(SimulatorOptions {
                poll: Duration::from_millis(100),
                ..SimulatorOptions::default()
            })
            .start()
    });
    Running {
        env,
        cloud,
        stop,
        manager,
        simulator,
    }
}

impl Running {
    pub fn client(&self) -> kube::Client {
        self.env.client()
    }

    pub async fn describe(&self, ns: &str, name: &str) -> Option<ClusterDescription> {
        describe_cluster(&self.client(), ns, name).await.unwrap()
    }

    /// Stops the CAPI-core simulator only: CAPI "goes away" while the provider runs on.
    pub async fn stop_simulator(&mut self) {
        if let Some(s) = self.simulator.take() {
            s.stop().await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.manager.await.unwrap().unwrap();
        if let Some(s) = self.simulator {
            s.stop().await;
        }
    }
}

/// Polls `f` until it holds, or fails the test after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}
