//! The `byoh-provider` and `byoh-agent` binaries, black-box: `--print-crds` output installed in
//! a fresh API server, the provider and six simulated hosts as child processes reaching it through
//! a kubeconfig file, and capi-testkit's conformance suite (the library, as the `capi-testkit
//! conformance` CLI would run it) against them.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use capi_testkit::conformance::{ConformanceConfig, run};
use capi_testkit::env::TestEnv;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;

const HOSTS: &str = "byoh-hosts";

/// Kills the child process when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[&str]) -> Killed {
    Killed(
        Command::new(bin)
            .args(args)
            // The children's logs (injected faults make them noisy): `BYOH_CHILD_LOG=info`.
            .env(
                "RUST_LOG",
                std::env::var("BYOH_CHILD_LOG").unwrap_or_else(|_| "off".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_pass_the_conformance_suite() {
    let dir = common::work_dir("binaries");
    let crd_dir = dir.join("crds");
    std::fs::create_dir_all(&crd_dir).unwrap();
    let printed = Command::new(env!("CARGO_BIN_EXE_byoh-provider"))
        .arg("--print-crds")
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let yaml = String::from_utf8(printed.stdout.clone()).unwrap();
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 5);
    assert!(yaml.contains("name: byohosts.infrastructure.cluster.x-k8s.io"));
    std::fs::write(crd_dir.join("byoh.yaml"), &printed.stdout).unwrap();

    let env = TestEnv::builder()
        .crds(capi_provider_sdk::capi_core::crd::core_crds().unwrap())
        .crd_path(&crd_dir)
        .start()
        .await
        .unwrap();
    let client = env.client();
    let kubeconfig = dir.join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": HOSTS}})).unwrap(),
        )
        .await
        .unwrap();
    let work = dir.join("work");
    let _agents = spawn(
        env!("CARGO_BIN_EXE_byoh-agent"),
        &[
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            HOSTS,
            "--name",
            "cli-host",
            "--hosts",
            "6",
            "--label",
            "pool=cli",
            "--heartbeat-ms",
            "300",
            "--work-dir",
            work.to_str().unwrap(),
        ],
    );
    let _provider = spawn(
        env!("CARGO_BIN_EXE_byoh-provider"),
        &[
            "--kubeconfig",
            kubeconfig,
            "--host-namespace",
            HOSTS,
            "--poll-interval-ms",
            "100",
            "--heartbeat-timeout-seconds",
            "10",
            "--orphan-scan-ms",
            "500",
        ],
    );
    let hosts: Api<capi_provider_byoh::ByoHost> = Api::namespaced(client.clone(), HOSTS);
    common::eventually("the agents to register six hosts", 15, || async {
        hosts.list(&Default::default()).await.unwrap().items.len() == 6
    })
    .await;

    // The in-process test runs every scenario; here the ones that exercise hosts the most,
    // to keep the test binary's time down.
    let only = [
        "provider-id-with-provisioned",
        "resource-versions-stable",
        "status-loss-idempotent",
        "deletion-leaves-nothing",
        "faults-survived",
        "machinedeployment-scale",
    ];
    let config = ConformanceConfig {
        only: only.map(str::to_owned).to_vec(),
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(15),
        faults: Some(env.server().faults().clone()),
        ..ConformanceConfig::new(client)
    };
    let report = run(config).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    let _ = std::fs::remove_dir_all(&dir);
}
