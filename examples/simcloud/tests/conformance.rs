//! The black-box conformance suite passes against the provider: in process, and against the
//! `capi-provider-simcloud` binary run as a separate process with the server's kubeconfig.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capi_testkit::conformance::{ConformanceConfig, run};
use common::{env, quick_cloud, start};

fn config(env: &capi_testkit::env::TestEnv) -> ConformanceConfig {
    ConformanceConfig {
        settle: Duration::from_millis(800),
        timeout: Duration::from_secs(20),
        faults: Some(env.server().faults().clone()),
        ..ConformanceConfig::new(env.client())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_in_process() {
    let r = start(quick_cloud(), false).await;
    let report = run(config(&r.env)).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_passes() {
    let env = env().await;
    let dir = std::env::temp_dir().join(format!("simcloud-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    env.write_kubeconfig_to(&kubeconfig).unwrap();
    let mut provider = tokio::process::Command::new(env!("CARGO_BIN_EXE_capi-provider-simcloud"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--cloud-latency-ms", "1", "--cloud-boot-ms", "300"])
        .args(["--cloud-consistency-delay-ms", "150"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let report = run(config(&env)).await.unwrap();
    println!("{}", report.table());
    assert!(
        provider.try_wait().unwrap().is_none(),
        "the provider exited early"
    );
    provider.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.passed(), "{}", report.table());
}

#[test]
fn print_crds_prints_installable_crds() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capi-provider-simcloud"))
        .arg("--print-crds")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(docs.len(), 4);
    let findings = capi_testkit::conformance::static_checks::check_crds(&docs);
    assert!(
        findings
            .iter()
            .all(|f| f.severity != capi_testkit::conformance::static_checks::Severity::Error),
        "{findings:#?}"
    );
}
