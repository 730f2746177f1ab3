//! Providers whose instances may be spot ones, on top of the fake cloud of `common`: one for
//! `FakeMachine` (v1beta2 contract) and one for `SpotLegacyMachine`, a kind embedding the
//! v1beta1-contract structs. Machines named `spot-*` are interruptible while `report` is set.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capi_provider_sdk::capi_core::contract::fields::v1beta1::{
    InfraMachineSpec, InfraMachineStatus,
};
use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, provider_crd};
use capi_provider_sdk::{
    ClusterContext, ClusterOutcome, DeleteOutcome, Failure, InfraCluster, InfraMachine,
    MachineContext, MachineOutcome, async_trait,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CloudError, FakeCloud, FakeCluster, FakeMachine, instance_key};

pub const LEGACY_GROUP: &str = "infrastructure.spot.example.com";

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.spot.example.com",
    version = "v1alpha1",
    kind = "SpotLegacyMachine",
    namespaced
)]
#[kube(status = "SpotLegacyMachineStatus", derive = "PartialEq")]
pub struct SpotLegacyMachineSpec {
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpotLegacyMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

capi_provider_sdk::infra_machine_resource!(SpotLegacyMachine, spec.contract, status.contract);

/// The v1beta1-contract kind's CRD with the given contract labels.
pub fn legacy_crd(labels: &ContractVersionLabels) -> CustomResourceDefinition {
    provider_crd(vec![SpotLegacyMachine::crd()], "v1alpha1", labels).unwrap()
}

/// The v1beta1-contract kind's CRD, labelled as it must be.
pub fn legacy_crd_labelled() -> CustomResourceDefinition {
    legacy_crd(&ContractVersionLabels::new().with("v1beta1", ["v1alpha1"]))
}

/// Instances by `namespace/name`, started one reconcile after being created.
#[derive(Clone, Default)]
pub struct SpotCloud {
    pub instances: Arc<Mutex<HashMap<String, bool>>>,
    /// While set, `spot-*` machines report `interruptible(true)`; otherwise they say nothing.
    pub report: Arc<AtomicBool>,
    /// The v1beta2 InfraCluster side.
    pub clusters: FakeCloud,
}

impl SpotCloud {
    pub fn reporting() -> Self {
        let cloud = Self::default();
        cloud.report.store(true, Ordering::SeqCst);
        cloud
    }

    fn step(&self, namespace: &Option<String>, name: &str) -> MachineOutcome {
        let key = instance_key(namespace, name);
        let mut instances = self.instances.lock().unwrap();
        match instances.get(&key).copied() {
            Some(true) => {
                let spot = name.starts_with("spot-") && self.report.load(Ordering::SeqCst);
                let done = MachineOutcome::provisioned(format!("spot:///{name}"))
                    .with_internal_ip("10.9.0.1");
                if spot {
                    done.interruptible(true).into()
                } else {
                    done.into()
                }
            }
            Some(false) => {
                instances.insert(key, true);
                MachineOutcome::in_progress("InstanceStarting", Duration::from_millis(50))
            }
            None => {
                instances.insert(key, false);
                MachineOutcome::in_progress("InstanceCreating", Duration::from_millis(50))
            }
        }
    }

    fn gone(&self, namespace: &Option<String>, name: &str) {
        self.instances
            .lock()
            .unwrap()
            .remove(&instance_key(namespace, name));
    }
}

/// The v1beta2-contract machine side.
#[derive(Clone, Default)]
pub struct Spot(pub SpotCloud);

#[async_trait]
impl InfraMachine for Spot {
    type Resource = FakeMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<FakeMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        Ok(self.0.step(&cx.machine.metadata.namespace, &name))
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<FakeMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        self.0.gone(&cx.machine.metadata.namespace, &name);
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl InfraCluster for Spot {
    type Resource = FakeCluster;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut ClusterContext<FakeCluster>,
    ) -> Result<ClusterOutcome, Failure<CloudError>> {
        InfraCluster::reconcile(&self.0.clusters, cx).await
    }

    async fn delete(
        &self,
        cx: &mut ClusterContext<FakeCluster>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        InfraCluster::delete(&self.0.clusters, cx).await
    }
}

/// The v1beta1-contract machine side.
#[derive(Clone, Default)]
pub struct LegacySpot(pub SpotCloud);

#[async_trait]
impl InfraMachine for LegacySpot {
    type Resource = SpotLegacyMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<SpotLegacyMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        Ok(self.0.step(&cx.machine.metadata.namespace, &name))
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<SpotLegacyMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        self.0.gone(&cx.machine.metadata.namespace, &name);
        Ok(DeleteOutcome::Deleted)
    }
}
