//! The provider's kinds: `ByoHost` (a registered host), `ByoMachine`/`ByoMachineTemplate`
//! (InfraMachine) and `ByoCluster`/`ByoClusterTemplate` (InfraCluster), all in
//! `infrastructure.cluster.x-k8s.io/v1beta1` like upstream BYOH.

use capi_provider_sdk::capi_core::contract::fields::MachineAddress;
use capi_provider_sdk::capi_core::contract::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus, TemplateResource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind of this provider (upstream BYOH's).
pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// The API version of every kind of this provider.
pub const VERSION: &str = "v1beta1";

/// The `Bootstrapped` condition on a ByoHost.
pub const BOOTSTRAPPED: &str = "Bootstrapped";

/// A host that registered itself (written by its agent; claimed by the provider).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "ByoHost",
    namespaced
)]
#[kube(status = "ByoHostStatus", derive = "PartialEq", derive = "Default")]
#[kube(
    printcolumn = r#"{"name":"Claimed By","type":"string","jsonPath":".spec.claim.name"}"#,
    printcolumn = r#"{"name":"Bootstrapped","type":"boolean","jsonPath":".status.bootstrapped"}"#,
    printcolumn = r#"{"name":"Heartbeat","type":"date","jsonPath":".status.lastHeartbeat"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ByoHostSpec {
    /// The ByoMachine using this host; set and removed by the provider only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<HostClaim>,
    /// The Secret holding the bootstrap data the agent runs (set together with `claim`).
    #[serde(
        rename = "bootstrapSecret",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bootstrap_secret: Option<SecretReference>,
}

/// Which ByoMachine claimed a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostClaim {
    /// The ByoMachine's namespace.
    pub namespace: String,
    /// The ByoMachine's name.
    pub name: String,
    /// The ByoMachine's UID: the claim's identity (a re-created machine of the same name is
    /// another claim).
    pub uid: String,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    /// The Secret's name.
    pub name: String,
    /// The Secret's namespace.
    pub namespace: String,
}

/// What the agent reports about its host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ByoHostStatus {
    /// When the agent last checked in (RFC 3339); hosts without a recent one are not claimed.
    #[serde(
        rename = "lastHeartbeat",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_heartbeat: Option<Time>,
    /// The host's addresses, once bootstrapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<MachineAddress>>,
    /// Whether the bootstrap data of the current claim ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrapped: Option<bool>,
    /// `sha256:<hex>` of the bootstrap data that ran (never the data: it is a secret).
    #[serde(
        rename = "bootstrapDataHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bootstrap_data_hash: Option<String>,
    /// The claim (ByoMachine UID) the host's current state belongs to; none once cleaned.
    #[serde(
        rename = "appliedClaimUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub applied_claim_uid: Option<String>,
    /// The `metadata.generation` of the spec the agent last acted on completely. A release is
    /// acknowledged when this reaches the generation of the release and `appliedClaimUID` is
    /// gone.
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// `Bootstrapped` (True once the data ran; False with `Cleaned`, `NotClaimed`,
    /// `BootstrapFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

impl ByoHost {
    /// Whether the host is claimed.
    pub fn claimed(&self) -> bool {
        self.spec.claim.is_some()
    }

    /// Whether the agent has nothing left over from an earlier claim and has seen the current
    /// spec: the host may be claimed.
    pub fn clean(&self) -> bool {
        let status = self.status.clone().unwrap_or_default();
        status.applied_claim_uid.is_none()
            && status.bootstrapped != Some(true)
            && status.observed_generation >= self.metadata.generation
    }
}

/// A machine on a bring-your-own host (the InfraMachine).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "ByoMachine",
    namespaced
)]
#[kube(status = "ByoMachineStatus", derive = "PartialEq")]
#[kube(
    printcolumn = r#"{"name":"Host","type":"string","jsonPath":".status.hostRef.name"}"#,
    printcolumn = r#"{"name":"ProviderID","type":"string","jsonPath":".spec.providerID"}"#,
    printcolumn = r#"{"name":"Provisioned","type":"boolean","jsonPath":".status.initialization.provisioned"}"#
)]
pub struct ByoMachineSpec {
    /// The contract fields (`providerID`, ...).
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
    /// Which hosts may serve this machine, by their labels; none = any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The observed state of a ByoMachine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ByoMachineStatus {
    /// The contract fields (`initialization`, `addresses`, `conditions`, ...).
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
    /// The host claimed (informational: the claim on the ByoHost is the source of truth).
    #[serde(rename = "hostRef", default, skip_serializing_if = "Option::is_none")]
    pub host_ref: Option<HostReference>,
}

/// Which ByoHost serves a ByoMachine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostReference {
    /// The ByoHost's name.
    pub name: String,
    /// The ByoHost's namespace.
    pub namespace: String,
}

capi_provider_sdk::infra_machine_resource!(ByoMachine, spec.contract, status.contract);

/// A template of ByoMachines (MachineDeployments and KCP clone it).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "ByoMachineTemplate",
    namespaced
)]
pub struct ByoMachineTemplateSpec {
    /// The ByoMachines to create.
    pub template: TemplateResource<ByoMachineSpec>,
}

/// The cluster infrastructure: only the control-plane endpoint (a VIP the user provides).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "ByoCluster",
    namespaced
)]
#[kube(status = "ByoClusterStatus", derive = "PartialEq")]
pub struct ByoClusterSpec {
    /// The contract fields: `controlPlaneEndpoint`, supplied by the user (a VIP).
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
}

/// The observed state of a ByoCluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ByoClusterStatus {
    /// The contract fields.
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
}

capi_provider_sdk::infra_cluster_resource!(ByoCluster, spec.contract, status.contract);

/// A template of ByoClusters (ClusterClass).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "ByoClusterTemplate",
    namespaced
)]
pub struct ByoClusterTemplateSpec {
    /// The ByoClusters to create.
    pub template: TemplateResource<ByoClusterSpec>,
}
