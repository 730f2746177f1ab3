//! A small provider for a fake in-memory cloud, used by the SDK's integration tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capi_provider_sdk::capi_core::contract::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus, TemplateResource,
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

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.example.com",
    version = "v1alpha1",
    kind = "FakeMachine",
    namespaced
)]
#[kube(status = "FakeMachineStatus", derive = "PartialEq")]
pub struct FakeMachineSpec {
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FakeMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

capi_provider_sdk::infra_machine_resource!(FakeMachine, spec.contract, status.contract);

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.example.com",
    version = "v1alpha1",
    kind = "FakeMachineTemplate",
    namespaced
)]
pub struct FakeMachineTemplateSpec {
    pub template: TemplateResource<FakeMachineSpec>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.example.com",
    version = "v1alpha1",
    kind = "FakeCluster",
    namespaced
)]
#[kube(status = "FakeClusterStatus", derive = "PartialEq")]
pub struct FakeClusterSpec {
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FakeClusterStatus {
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
}

capi_provider_sdk::infra_cluster_resource!(FakeCluster, spec.contract, status.contract);

/// The provider's CRDs, labelled for the v1beta2 contract.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let labels = ContractVersionLabels::new().with("v1beta2", ["v1alpha1"]);
    vec![
        provider_crd(vec![FakeMachine::crd()], "v1alpha1", &labels).unwrap(),
        provider_crd(vec![FakeMachineTemplate::crd()], "v1alpha1", &labels).unwrap(),
        provider_crd(vec![FakeCluster::crd()], "v1alpha1", &labels).unwrap(),
    ]
}

#[derive(Debug, thiserror::Error)]
#[error("cloud error: {0}")]
pub struct CloudError(pub String);

/// A fake cloud: instances appear one reconcile after being requested.
#[derive(Clone, Default)]
pub struct FakeCloud {
    /// Instances by `namespace/name` of their Machine (conformance scenarios run in parallel
    /// namespaces, each with its own "m1"), with whether they have started.
    pub instances: Arc<Mutex<HashMap<String, bool>>>,
    pub creates: Arc<Mutex<u32>>,
    pub panic_on: Option<String>,
    /// While set, deletions report "in progress".
    pub hold_deletes: Arc<std::sync::atomic::AtomicBool>,
}

/// The key of a Machine's instance in [`FakeCloud::instances`].
pub fn instance_key(namespace: &Option<String>, name: &str) -> String {
    format!("{}/{name}", namespace.as_deref().unwrap_or_default())
}

#[async_trait]
impl InfraMachine for FakeCloud {
    type Resource = FakeMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<FakeMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        if self.panic_on.as_deref() == Some(name.as_str()) {
            panic!("provider bug for {name}");
        }
        let key = instance_key(&cx.machine.metadata.namespace, &name);
        assert!(
            cx.bootstrap.as_ref().is_some_and(|b| !b.value.is_empty()),
            "bootstrap data is handed over"
        );
        let mut instances = self.instances.lock().unwrap();
        match instances.get(&key).copied() {
            Some(true) => Ok(MachineOutcome::provisioned(format!("fake:///{name}"))
                .with_internal_ip("10.0.0.1")
                .into()),
            Some(false) => {
                instances.insert(key, true);
                Ok(MachineOutcome::in_progress(
                    "InstanceStarting",
                    Duration::from_millis(50),
                ))
            }
            None => {
                instances.insert(key, false);
                *self.creates.lock().unwrap() += 1;
                Ok(MachineOutcome::in_progress(
                    "InstanceCreating",
                    Duration::from_millis(50),
                ))
            }
        }
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<FakeMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        if self.hold_deletes.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(DeleteOutcome::in_progress(
                "InstanceStopping",
                Duration::from_millis(50),
            ));
        }
        let name = cx.machine.metadata.name.clone().unwrap_or_default();
        let key = instance_key(&cx.machine.metadata.namespace, &name);
        self.instances.lock().unwrap().remove(&key);
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl InfraCluster for FakeCloud {
    type Resource = FakeCluster;
    type Error = CloudError;

    async fn reconcile(
        &self,
        _cx: &mut ClusterContext<FakeCluster>,
    ) -> Result<ClusterOutcome, Failure<CloudError>> {
        Ok(ClusterOutcome::provisioned()
            .with_endpoint("10.0.0.100", 6443)
            .with_failure_domain("zone-b", false)
            .with_failure_domain("zone-a", true)
            .into())
    }

    async fn delete(
        &self,
        _cx: &mut ClusterContext<FakeCluster>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        Ok(DeleteOutcome::Deleted)
    }
}

/// Waits until `f` holds, checking every 50 ms for 15 s; panics naming `what` if it never does.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Creates `role` with `admin` and binds it to the ServiceAccount `namespace/name`: a provider
/// run as that ServiceAccount holds exactly this role.
pub async fn bind_cluster_role(
    admin: &kube::Client,
    role: &k8s_openapi::api::rbac::v1::ClusterRole,
    namespace: &str,
    name: &str,
) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kube::api::{Api, PostParams};

    let role_name = role.metadata.name.clone().unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), role)
        .await
        .unwrap();
    let binding = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]});
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(binding).unwrap(),
        )
        .await
        .unwrap();
}
