//! proptest: any object the API accepts (generated from our CRD schemas) deserializes into the
//! Rust types and serializes back unchanged, for every kind in both versions.

mod common;

use capi_core::{v1beta1, v1beta2};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn check<T: DeserializeOwned + Serialize>(plural: &str, version: &str, kind: &str) {
    let schema = common::core_schema(&format!("{plural}.cluster.x-k8s.io"), version);
    let strategy = common::object(&format!("cluster.x-k8s.io/{version}"), kind, &schema);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&strategy, |doc: Value| {
            let typed: T = serde_json::from_value(doc.clone()).map_err(|e| {
                TestCaseError::fail(format!("{kind} {version} does not deserialize: {e}"))
            })?;
            let back =
                serde_json::to_value(&typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, doc);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{kind} {version}: {e}"));
}

#[test]
fn v1beta1_kinds_round_trip() {
    check::<v1beta1::Cluster>("clusters", "v1beta1", "Cluster");
    check::<v1beta1::Machine>("machines", "v1beta1", "Machine");
    check::<v1beta1::MachineSet>("machinesets", "v1beta1", "MachineSet");
    check::<v1beta1::MachineDeployment>("machinedeployments", "v1beta1", "MachineDeployment");
    check::<v1beta1::MachineHealthCheck>("machinehealthchecks", "v1beta1", "MachineHealthCheck");
    check::<v1beta1::MachinePool>("machinepools", "v1beta1", "MachinePool");
}

#[test]
fn v1beta2_kinds_round_trip() {
    check::<v1beta2::Cluster>("clusters", "v1beta2", "Cluster");
    check::<v1beta2::Machine>("machines", "v1beta2", "Machine");
    check::<v1beta2::MachineSet>("machinesets", "v1beta2", "MachineSet");
    check::<v1beta2::MachineDeployment>("machinedeployments", "v1beta2", "MachineDeployment");
    check::<v1beta2::MachineHealthCheck>("machinehealthchecks", "v1beta2", "MachineHealthCheck");
    check::<v1beta2::MachinePool>("machinepools", "v1beta2", "MachinePool");
}

#[test]
fn generated_objects_are_substantial() {
    // Guards the generator itself: objects must reach deep into spec and status.
    let schema = common::core_schema("clusters.cluster.x-k8s.io", "v1beta2");
    let strategy = common::object("cluster.x-k8s.io/v1beta2", "Cluster", &schema);
    let mut runner = TestRunner::deterministic();
    let mut max_len = 0;
    let mut with_status = 0;
    for _ in 0..32 {
        let doc = strategy.new_tree(&mut runner).expect("value").current();
        max_len = max_len.max(doc.to_string().len());
        with_status += usize::from(doc.get("status").is_some());
    }
    assert!(
        max_len > 1000,
        "largest generated Cluster is only {max_len} bytes"
    );
    assert!(with_status > 0);
}
