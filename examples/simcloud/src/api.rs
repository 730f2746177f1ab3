//! The provider's kinds: `SimCloudCluster`, `SimCloudMachine` and their templates, in
//! `infrastructure.cluster.x-k8s.io/v1alpha1`, labelled for the v1beta2 contract.
//!
//! Each embeds the contract fields through capi-core's structs (`#[serde(flatten)]`) beside
//! its own, and records the cloud resources it created in its status, so that a restart, a
//! lost answer or a deletion finds them again.

use capi_provider_sdk::capi_core::contract::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus, TemplateResource,
};
use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, CrdError, provider_crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group, as upstream infrastructure providers use it.
pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// The API version of every kind here.
pub const VERSION: &str = "v1alpha1";

/// Instance sizes the cloud offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceSize {
    /// 2 vCPU.
    #[default]
    Small,
    /// 4 vCPU.
    Medium,
    /// 8 vCPU.
    Large,
}

impl InstanceSize {
    /// The cloud's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }
}

/// Desired state of a SimCloud instance backing a Machine.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "SimCloudMachine",
    namespaced,
    status = "SimCloudMachineStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']"}"#,
    printcolumn = r#"{"name":"Instance","type":"string","jsonPath":".status.instanceID"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.instanceState"}"#,
    printcolumn = r#"{"name":"Provisioned","type":"boolean","jsonPath":".status.initialization.provisioned"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SimCloudMachineSpec {
    /// `providerID` and `failureDomain`, as the contract defines them.
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
    /// Instance size.
    #[serde(default)]
    pub size: InstanceSize,
}

/// Observed state of a SimCloudMachine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimCloudMachineStatus {
    /// Contract fields: initialization, addresses, conditions.
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
    /// The instance, once the cloud answered its launch.
    #[serde(
        default,
        rename = "instanceID",
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_id: Option<String>,
    /// The instance's state as last seen (Pending, Running, ShuttingDown, Terminated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_state: Option<String>,
    /// When a launch was first requested: a launch whose answer was lost is looked for until
    /// the cloud's consistency window has passed, so that deletion never leaks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_requested_at: Option<Time>,
}

capi_provider_sdk::infra_machine_resource!(SimCloudMachine, spec.contract, status.contract);

/// The template MachineDeployments clone SimCloudMachines from.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "SimCloudMachineTemplate",
    namespaced
)]
pub struct SimCloudMachineTemplateSpec {
    /// The SimCloudMachine to clone.
    pub template: TemplateResource<SimCloudMachineSpec>,
}

/// Desired state of a cluster's SimCloud network and control-plane load balancer.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "SimCloudCluster",
    namespaced,
    status = "SimCloudClusterStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.controlPlaneEndpoint.host"}"#,
    printcolumn = r#"{"name":"Provisioned","type":"boolean","jsonPath":".status.initialization.provisioned"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SimCloudClusterSpec {
    /// `controlPlaneEndpoint`, as the contract defines it (set by the provider unless the user did).
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
    /// The network's address range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_cidr: Option<String>,
}

/// A cloud resource the provider created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudResource {
    /// Its ID, once the cloud answered the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When its creation was first requested (see `SimCloudMachineStatus::launch_requested_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,
}

/// Observed state of a SimCloudCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimCloudClusterStatus {
    /// Contract fields: initialization, failure domains, conditions.
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
    /// The cluster's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<CloudResource>,
    /// The control-plane load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<CloudResource>,
}

capi_provider_sdk::infra_cluster_resource!(SimCloudCluster, spec.contract, status.contract);

/// The template ClusterClasses clone SimCloudClusters from.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1alpha1",
    kind = "SimCloudClusterTemplate",
    namespaced
)]
pub struct SimCloudClusterTemplateSpec {
    /// The SimCloudCluster to clone.
    pub template: TemplateResource<SimCloudClusterSpec>,
}

/// The provider's four CRDs, labelled `cluster.x-k8s.io/v1beta2: v1alpha1`.
///
/// ```
/// let crds = capi_provider_simcloud::api::crds().unwrap();
/// let names: Vec<_> = crds.iter().filter_map(|c| c.metadata.name.as_deref()).collect();
/// assert!(names.contains(&"simcloudmachines.infrastructure.cluster.x-k8s.io"));
/// ```
pub fn crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let labels = ContractVersionLabels::new().with("v1beta2", [VERSION]);
    [
        SimCloudCluster::crd(),
        SimCloudClusterTemplate::crd(),
        SimCloudMachine::crd(),
        SimCloudMachineTemplate::crd(),
    ]
    .into_iter()
    .map(|crd| provider_crd(vec![crd], VERSION, &labels))
    .collect()
}
