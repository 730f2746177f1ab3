//! Connecting an author's CustomResource to the SDK.
//!
//! A provider's InfraMachine kind embeds [`capi_core::contract::InfraMachineSpec`] and
//! [`capi_core::contract::InfraMachineStatus`] with `#[serde(flatten)]`; one line of
//! [`infra_machine_resource!`](crate::infra_machine_resource) tells the SDK where they are. The
//! same for InfraClusters with [`infra_cluster_resource!`](crate::infra_cluster_resource).
//!
//! ```
//! use capi_provider_sdk::capi_core::contract::{InfraMachineSpec, InfraMachineStatus};
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "ExampleMachine")]
//! #[kube(namespaced, status = "ExampleMachineStatus", derive = "PartialEq")]
//! pub struct ExampleMachineSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineSpec,
//!     pub size: String,
//! }
//!
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct ExampleMachineStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineStatus,
//! }
//!
//! capi_provider_sdk::infra_machine_resource!(ExampleMachine, spec.contract, status.contract);
//!
//! use capi_provider_sdk::resource::InfraMachineResource;
//! let mut m = ExampleMachine::new("m1", ExampleMachineSpec::default());
//! m.contract_status_mut().set_failure_domain(Some("zone-a".into()));
//! m.contract_status_mut().set_provisioned();
//! let status = m.status.unwrap().contract;
//! assert_eq!(status.failure_domain.as_deref(), Some("zone-a"));
//! assert_eq!(status.initialization.and_then(|i| i.provisioned), Some(true));
//! ```
//!
//! # Which contract
//!
//! The SDK writes the contract through the status (and, for InfraClusters, spec) structs the
//! author embeds, so the types choose the contract: the structs of
//! [`capi_core::contract`] give the v1beta2 contract (CAPI ≥ 1.11), those of
//! [`capi_core::contract::fields::v1beta1`] the v1beta1 contract (CAPI ≤ 1.10): `status.ready`,
//! map-shaped failure domains, CAPI v1beta1 conditions with severity in `status.conditions` and
//! the v1beta2 ones in `status.v1beta2.conditions`. The macro line stays the same:
//!
//! ```
//! use capi_provider_sdk::capi_core::contract::ContractVersion;
//! use capi_provider_sdk::capi_core::contract::fields::v1beta1::{InfraClusterSpec, InfraClusterStatus};
//! use capi_provider_sdk::outcome::ClusterOutcome;
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "OldCluster")]
//! #[kube(namespaced, status = "OldClusterStatus", derive = "PartialEq")]
//! pub struct OldClusterSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterSpec,
//! }
//!
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct OldClusterStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterStatus,
//! }
//!
//! capi_provider_sdk::infra_cluster_resource!(OldCluster, spec.contract, status.contract);
//!
//! use capi_provider_sdk::resource::InfraClusterResource;
//! let mut c = OldCluster::new("c1", OldClusterSpec::default());
//! let status = c.contract_status_mut();
//! assert_eq!(status.contract_version(), ContractVersion::V1Beta1);
//! status.set_failure_domains(ClusterOutcome::provisioned().with_failure_domain("zone-a", true).failure_domains);
//! status.set_provisioned();
//! let json = serde_json::to_value(&c).unwrap();
//! assert_eq!(json["status"]["ready"], true);
//! assert_eq!(json["status"]["failureDomains"], serde_json::json!({"zone-a": {"controlPlane": true}}));
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use capi_core::conditions::{ConditionSeverity, V1Beta1Condition, status as condition_status};
use capi_core::contract::fields::{ApiEndpoint, FailureDomain, MachineAddress};
use capi_core::contract::{
    ContractVersion, InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus,
    Initialization, fields::v1beta1,
};
use k8s_openapi::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the SDK needs of any provider kind: a namespaced, serializable kube resource.
pub trait ProviderResource:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + PartialEq
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> ProviderResource for T where
    T: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + PartialEq
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// An InfraMachine kind: where its contract fields live.
///
/// Implemented by [`infra_machine_resource!`](crate::infra_machine_resource); the status struct
/// embedded decides the contract (see [the module docs](self#which-contract)).
pub trait InfraMachineResource: ProviderResource {
    /// The contract part of the spec (the same shape in both contracts).
    fn contract_spec(&self) -> &InfraMachineSpec;
    /// The contract part of the spec, mutably.
    fn contract_spec_mut(&mut self) -> &mut InfraMachineSpec;
    /// The contract part of the status, if there is a status.
    fn contract_status(&self) -> Option<&dyn InfraMachineContractStatus>;
    /// The contract part of the status, creating an empty status if there is none.
    fn contract_status_mut(&mut self) -> &mut dyn InfraMachineContractStatus;
    /// The contract the embedded status struct writes, which the CRD's contract label must
    /// name (the manager checks it at start-up); `None` when it cannot be told (an
    /// implementation not generated by the macro).
    fn contract_version() -> Option<ContractVersion> {
        None
    }
}

/// An InfraCluster kind: where its contract fields live.
///
/// Implemented by [`infra_cluster_resource!`](crate::infra_cluster_resource); the spec and
/// status structs embedded decide the contract (see [the module docs](self#which-contract)).
pub trait InfraClusterResource: ProviderResource {
    /// The contract part of the spec.
    fn contract_spec(&self) -> &dyn InfraClusterContractSpec;
    /// The contract part of the spec, mutably.
    fn contract_spec_mut(&mut self) -> &mut dyn InfraClusterContractSpec;
    /// The contract part of the status, if there is a status.
    fn contract_status(&self) -> Option<&dyn InfraClusterContractStatus>;
    /// The contract part of the status, creating an empty status if there is none.
    fn contract_status_mut(&mut self) -> &mut dyn InfraClusterContractStatus;
    /// The contract the embedded status struct writes, which the CRD's contract label must
    /// name (the manager checks it at start-up); `None` when it cannot be told (an
    /// implementation not generated by the macro).
    fn contract_version() -> Option<ContractVersion> {
        None
    }
}

/// The contract of a status struct, from its type alone: what the macros' `contract_version`
/// returns.
#[doc(hidden)]
pub fn contract_version_of<S: ContractStatus + Default>(_: Option<&S>) -> Option<ContractVersion> {
    Some(S::default().contract_version())
}

mod sealed {
    /// Only capi-core's contract structs carry the contract: the SDK may add methods.
    pub trait Sealed {}
    impl Sealed for capi_core::contract::InfraMachineStatus {}
    impl Sealed for capi_core::contract::InfraClusterStatus {}
    impl Sealed for capi_core::contract::InfraClusterSpec {}
    impl Sealed for capi_core::contract::fields::v1beta1::InfraMachineStatus {}
    impl Sealed for capi_core::contract::fields::v1beta1::InfraClusterStatus {}
    impl Sealed for capi_core::contract::fields::v1beta1::InfraClusterSpec {}
}

/// A condition as the generated reconcilers write it, before it takes a contract's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractCondition<'a> {
    /// The condition type, e.g. `Ready`.
    pub type_: &'a str,
    /// Whether it holds (`True`) or not (`False`).
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'a str,
    /// Human-readable message, possibly empty.
    pub message: &'a str,
    /// How bad a False condition is, in the CAPI v1beta1 shape (v1beta2 conditions have none).
    pub severity: ConditionSeverity,
    /// The object's `metadata.generation` the condition was computed from.
    pub observed_generation: Option<i64>,
}

/// What the two contract status shapes of an InfraMachine and an InfraCluster have in common:
/// the provisioned flag, terminal failures, conditions.
///
/// Implemented for capi-core's contract structs only (v1beta2: [`InfraMachineStatus`],
/// [`InfraClusterStatus`]; v1beta1: [`v1beta1::InfraMachineStatus`],
/// [`v1beta1::InfraClusterStatus`]); authors embed those and never implement it.
///
/// ```
/// use capi_provider_sdk::capi_core::conditions::ConditionSeverity;
/// use capi_provider_sdk::capi_core::contract::fields::v1beta1;
/// use capi_provider_sdk::resource::{ContractCondition, ContractStatus};
///
/// let mut status = v1beta1::InfraMachineStatus::default();
/// status.set_condition(&ContractCondition {
///     type_: "Ready", status: false, reason: "InstanceStarting", message: "",
///     severity: ConditionSeverity::Info, observed_generation: Some(1),
/// });
/// // The v1beta1 shape in status.conditions, the v1beta2 one in status.v1beta2.conditions.
/// assert_eq!(status.conditions.as_ref().unwrap()[0].severity, Some(ConditionSeverity::Info));
/// assert!(!status.provisioned());
/// assert_eq!(status.v1beta2.unwrap().conditions.unwrap()[0].reason, "InstanceStarting");
/// ```
pub trait ContractStatus: sealed::Sealed + Debug + Send + Sync {
    /// The contract whose shape this is.
    fn contract_version(&self) -> ContractVersion;
    /// Whether the infrastructure is provisioned (`status.initialization.provisioned` or
    /// `status.ready`).
    fn provisioned(&self) -> bool;
    /// Marks the infrastructure provisioned. CAPI treats the flag as one-way.
    fn set_provisioned(&mut self);
    /// Sets (`Some`) or clears (`None`) the terminal failure, `status.failureReason` and
    /// `status.failureMessage`.
    fn set_terminal_failure(&mut self, failure: Option<(&str, &str)>);
    /// Sets a condition where this contract keeps it: v1beta2, a `metav1.Condition` in
    /// `status.conditions`; v1beta1, a CAPI v1beta1 condition (with severity) in
    /// `status.conditions` and the `metav1.Condition` in `status.v1beta2.conditions`
    /// (`Paused` only there: it came with the v1beta2 conditions).
    fn set_condition(&mut self, condition: &ContractCondition<'_>);
    /// Whether the condition `type_` is `True` (in the v1beta2 shape).
    fn is_condition_true(&self, type_: &str) -> bool;
    /// For a v1beta2-shaped status written also for v1beta1-contract readers (the manager's
    /// `v1beta1_fields` option): `status.ready` and the conditions copied into
    /// `status.deprecated.v1beta1.conditions`. Nothing for a v1beta1-shaped status, which has
    /// these fields natively.
    fn mirror_v1beta1_fields(&mut self);
}

/// The contract part of an InfraMachine's status, in either contract's shape.
pub trait InfraMachineContractStatus: ContractStatus {
    /// `status.addresses` (none when empty).
    fn set_addresses(&mut self, addresses: Vec<MachineAddress>);
    /// `status.failureDomain`, where the machine runs. Returns false when the shape has no
    /// such field (v1beta1: placement flows through `spec.failureDomain`).
    fn set_failure_domain(&mut self, failure_domain: Option<String>) -> bool;
    /// `status.interruptible` (both shapes): `true` sets it; `false` removes a `true` and
    /// otherwise leaves the field as it is (absent, or an explicit `false`: the same to core).
    fn set_interruptible(&mut self, interruptible: bool);
}

fn set_interruptible(field: &mut Option<bool>, interruptible: bool) {
    if interruptible {
        *field = Some(true);
    } else if *field == Some(true) {
        *field = None;
    }
}

/// The contract part of an InfraCluster's status, in either contract's shape.
pub trait InfraClusterContractStatus: ContractStatus {
    /// `status.failureDomains`, sorted by name: a list (v1beta2) or a map name →
    /// `{controlPlane, attributes}` (v1beta1); none when empty.
    fn set_failure_domains(&mut self, failure_domains: Vec<FailureDomain>);
}

/// The contract part of an InfraCluster's spec, in either contract's shape.
pub trait InfraClusterContractSpec: sealed::Sealed + Debug + Send + Sync {
    /// `spec.controlPlaneEndpoint`, as the v1beta2 shape.
    fn control_plane_endpoint(&self) -> Option<ApiEndpoint>;
    /// Sets `spec.controlPlaneEndpoint`.
    fn set_control_plane_endpoint(&mut self, endpoint: ApiEndpoint);
}

/// The `Ready`-style conditions, in the v1beta2 shape.
fn set_v1beta2_condition(
    list: &mut Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
    c: &ContractCondition<'_>,
) {
    crate::reconcile::conditions::set(
        list,
        c.type_,
        c.status,
        c.reason,
        c.message,
        c.observed_generation,
    );
}

/// A condition in the CAPI v1beta1 shape: severity only on False ones, empty reason and
/// message omitted; `lastTransitionTime` kept while the state is the same.
fn set_v1beta1_condition(list: &mut Option<Vec<V1Beta1Condition>>, c: &ContractCondition<'_>) {
    if c.type_ == capi_core::conditions::types::PAUSED {
        return;
    }
    let wanted = V1Beta1Condition {
        type_: c.type_.to_owned(),
        status: if c.status {
            condition_status::TRUE
        } else {
            condition_status::FALSE
        }
        .to_owned(),
        severity: (!c.status).then(|| c.severity.clone()),
        last_transition_time: capi_core::conditions::now(),
        reason: Some(c.reason.to_owned()).filter(|r| !r.is_empty()),
        message: Some(c.message.to_owned()).filter(|m| !m.is_empty()),
    };
    capi_core::conditions::v1beta1::set(list, wanted);
}

fn provisioned_v1beta2(initialization: &Option<Initialization>) -> bool {
    initialization.as_ref().and_then(|i| i.provisioned) == Some(true)
}

macro_rules! v1beta2_common {
    () => {
        fn contract_version(&self) -> ContractVersion {
            ContractVersion::V1Beta2
        }
        fn provisioned(&self) -> bool {
            provisioned_v1beta2(&self.initialization)
        }
        fn set_provisioned(&mut self) {
            self.initialization = Some(Initialization::provisioned());
        }
        fn set_terminal_failure(&mut self, failure: Option<(&str, &str)>) {
            self.failure_reason = failure.map(|f| f.0.to_owned());
            self.failure_message = failure.map(|f| f.1.to_owned());
        }
        fn set_condition(&mut self, condition: &ContractCondition<'_>) {
            set_v1beta2_condition(&mut self.conditions, condition);
        }
        fn is_condition_true(&self, type_: &str) -> bool {
            capi_core::conditions::v1beta2::is_true(&self.conditions, type_)
        }
        fn mirror_v1beta1_fields(&mut self) {
            let provisioned = provisioned_v1beta2(&self.initialization);
            crate::reconcile::conditions::mirror_v1beta1(
                &self.conditions,
                &mut self.deprecated,
                provisioned,
                &mut self.ready,
            );
        }
    };
}

macro_rules! v1beta1_common {
    () => {
        fn contract_version(&self) -> ContractVersion {
            ContractVersion::V1Beta1
        }
        fn provisioned(&self) -> bool {
            self.ready
        }
        fn set_provisioned(&mut self) {
            self.ready = true;
        }
        fn set_terminal_failure(&mut self, failure: Option<(&str, &str)>) {
            self.failure_reason = failure.map(|f| f.0.to_owned());
            self.failure_message = failure.map(|f| f.1.to_owned());
        }
        fn set_condition(&mut self, condition: &ContractCondition<'_>) {
            set_v1beta1_condition(&mut self.conditions, condition);
            set_v1beta2_condition(
                &mut self.v1beta2.get_or_insert_with(Default::default).conditions,
                condition,
            );
        }
        fn is_condition_true(&self, type_: &str) -> bool {
            self.v1beta2
                .as_ref()
                .is_some_and(|v| capi_core::conditions::v1beta2::is_true(&v.conditions, type_))
        }
        fn mirror_v1beta1_fields(&mut self) {}
    };
}

impl ContractStatus for InfraMachineStatus {
    v1beta2_common!();
}

impl ContractStatus for InfraClusterStatus {
    v1beta2_common!();
}

impl ContractStatus for v1beta1::InfraMachineStatus {
    v1beta1_common!();
}

impl ContractStatus for v1beta1::InfraClusterStatus {
    v1beta1_common!();
}

impl InfraMachineContractStatus for InfraMachineStatus {
    fn set_addresses(&mut self, addresses: Vec<MachineAddress>) {
        self.addresses = (!addresses.is_empty()).then_some(addresses);
    }
    fn set_failure_domain(&mut self, failure_domain: Option<String>) -> bool {
        self.failure_domain = failure_domain;
        true
    }
    fn set_interruptible(&mut self, interruptible: bool) {
        set_interruptible(&mut self.interruptible, interruptible);
    }
}

impl InfraMachineContractStatus for v1beta1::InfraMachineStatus {
    fn set_addresses(&mut self, addresses: Vec<MachineAddress>) {
        let addresses: Vec<v1beta1::MachineAddress> = addresses
            .into_iter()
            .map(|a| v1beta1::MachineAddress {
                address: a.address,
                type_: address_type_v1beta1(a.type_),
            })
            .collect();
        self.addresses = (!addresses.is_empty()).then_some(addresses);
    }
    fn set_failure_domain(&mut self, _failure_domain: Option<String>) -> bool {
        false
    }
    fn set_interruptible(&mut self, interruptible: bool) {
        set_interruptible(&mut self.interruptible, interruptible);
    }
}

fn address_type_v1beta1(
    t: capi_core::contract::fields::MachineAddressType,
) -> capi_core::v1beta1::MachineAddressType {
    use capi_core::contract::fields::MachineAddressType as V2;
    use capi_core::v1beta1::MachineAddressType as V1;
    match t {
        V2::Hostname => V1::Hostname,
        V2::ExternalIP => V1::ExternalIP,
        V2::InternalIP => V1::InternalIP,
        V2::ExternalDNS => V1::ExternalDNS,
        V2::InternalDNS => V1::InternalDNS,
    }
}

impl InfraClusterContractStatus for InfraClusterStatus {
    fn set_failure_domains(&mut self, mut failure_domains: Vec<FailureDomain>) {
        failure_domains.sort_by(|a, b| a.name.cmp(&b.name));
        self.failure_domains = (!failure_domains.is_empty()).then_some(failure_domains);
    }
}

impl InfraClusterContractStatus for v1beta1::InfraClusterStatus {
    fn set_failure_domains(&mut self, failure_domains: Vec<FailureDomain>) {
        let map: BTreeMap<String, v1beta1::FailureDomainSpec> = failure_domains
            .into_iter()
            .map(|fd| {
                let spec = v1beta1::FailureDomainSpec {
                    attributes: fd.attributes,
                    control_plane: fd.control_plane,
                };
                (fd.name, spec)
            })
            .collect();
        self.failure_domains = (!map.is_empty()).then_some(map);
    }
}

impl InfraClusterContractSpec for InfraClusterSpec {
    fn control_plane_endpoint(&self) -> Option<ApiEndpoint> {
        self.control_plane_endpoint.clone()
    }
    fn set_control_plane_endpoint(&mut self, endpoint: ApiEndpoint) {
        self.control_plane_endpoint = Some(endpoint);
    }
}

impl InfraClusterContractSpec for v1beta1::InfraClusterSpec {
    fn control_plane_endpoint(&self) -> Option<ApiEndpoint> {
        self.control_plane_endpoint.as_ref().map(|e| ApiEndpoint {
            host: e.host.clone(),
            port: e.port,
        })
    }
    fn set_control_plane_endpoint(&mut self, endpoint: ApiEndpoint) {
        self.control_plane_endpoint = Some(v1beta1::ApiEndpoint {
            host: endpoint.host,
            port: endpoint.port,
        });
    }
}

/// Implements [`InfraMachineResource`] for a kube-derive root type whose spec and status embed
/// the contract structs: `infra_machine_resource!(MyMachine, spec.<field>, status.<field>)`.
/// The status field's type picks the contract: [`capi_core::contract::InfraMachineStatus`]
/// (v1beta2) or [`capi_core::contract::fields::v1beta1::InfraMachineStatus`] (v1beta1).
#[macro_export]
macro_rules! infra_machine_resource {
    ($ty:ty, spec.$spec:ident, status.$status:ident) => {
        impl $crate::resource::InfraMachineResource for $ty {
            fn contract_spec(&self) -> &$crate::capi_core::contract::InfraMachineSpec {
                &self.spec.$spec
            }
            fn contract_spec_mut(&mut self) -> &mut $crate::capi_core::contract::InfraMachineSpec {
                &mut self.spec.$spec
            }
            fn contract_status(
                &self,
            ) -> ::std::option::Option<&dyn $crate::resource::InfraMachineContractStatus> {
                self.status
                    .as_ref()
                    .map(|s| &s.$status as &dyn $crate::resource::InfraMachineContractStatus)
            }
            fn contract_status_mut(
                &mut self,
            ) -> &mut dyn $crate::resource::InfraMachineContractStatus {
                &mut self
                    .status
                    .get_or_insert_with(::std::default::Default::default)
                    .$status
            }
            fn contract_version()
            -> ::std::option::Option<$crate::capi_core::contract::ContractVersion> {
                $crate::resource::contract_version_of(
                    ::std::option::Option::<&$ty>::None
                        .and_then(|r| r.status.as_ref())
                        .map(|s| &s.$status),
                )
            }
        }
    };
}

/// Implements [`InfraClusterResource`] for a kube-derive root type whose spec and status embed
/// the contract structs: `infra_cluster_resource!(MyCluster, spec.<field>, status.<field>)`.
/// The field types pick the contract: [`capi_core::contract::InfraClusterSpec`] and
/// [`capi_core::contract::InfraClusterStatus`] (v1beta2), or those of
/// [`capi_core::contract::fields::v1beta1`] (v1beta1).
#[macro_export]
macro_rules! infra_cluster_resource {
    ($ty:ty, spec.$spec:ident, status.$status:ident) => {
        impl $crate::resource::InfraClusterResource for $ty {
            fn contract_spec(&self) -> &dyn $crate::resource::InfraClusterContractSpec {
                &self.spec.$spec
            }
            fn contract_spec_mut(&mut self) -> &mut dyn $crate::resource::InfraClusterContractSpec {
                &mut self.spec.$spec
            }
            fn contract_status(
                &self,
            ) -> ::std::option::Option<&dyn $crate::resource::InfraClusterContractStatus> {
                self.status
                    .as_ref()
                    .map(|s| &s.$status as &dyn $crate::resource::InfraClusterContractStatus)
            }
            fn contract_status_mut(
                &mut self,
            ) -> &mut dyn $crate::resource::InfraClusterContractStatus {
                &mut self
                    .status
                    .get_or_insert_with(::std::default::Default::default)
                    .$status
            }
            fn contract_version()
            -> ::std::option::Option<$crate::capi_core::contract::ContractVersion> {
                $crate::resource::contract_version_of(
                    ::std::option::Option::<&$ty>::None
                        .and_then(|r| r.status.as_ref())
                        .map(|s| &s.$status),
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use capi_core::contract::fields::MachineAddressType;

    fn cond<'a>(
        type_: &'a str,
        status: bool,
        reason: &'a str,
        severity: ConditionSeverity,
    ) -> ContractCondition<'a> {
        ContractCondition {
            type_,
            status,
            reason,
            message: "",
            severity,
            observed_generation: Some(2),
        }
    }

    #[test]
    fn v1beta1_machine_status_has_the_v1beta1_shapes() {
        let mut s = v1beta1::InfraMachineStatus::default();
        s.set_condition(&cond("Paused", false, "NotPaused", ConditionSeverity::Info));
        s.set_condition(&cond("Ready", false, "Boom", ConditionSeverity::Error));
        s.set_terminal_failure(Some(("CreateError", "no capacity")));
        s.set_addresses(vec![MachineAddress {
            type_: MachineAddressType::InternalIP,
            address: "10.0.0.1".into(),
        }]);
        assert!(!s.set_failure_domain(Some("a".into())));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["ready"], false);
        assert_eq!(json["failureReason"], "CreateError");
        assert_eq!(json["addresses"][0]["type"], "InternalIP");
        let v1: Vec<_> = json["conditions"].as_array().unwrap().clone();
        assert_eq!(
            v1.len(),
            1,
            "Paused only among the v1beta2 conditions: {v1:?}"
        );
        assert_eq!(v1[0]["severity"], "Error");
        assert_eq!(v1[0]["reason"], "Boom");
        assert!(v1[0].get("observedGeneration").is_none());
        let v2 = json["v1beta2"]["conditions"].as_array().unwrap();
        assert_eq!(v2.len(), 2);
        assert!(
            v2.iter()
                .all(|c| c["observedGeneration"] == 2 && c.get("severity").is_none())
        );
        s.set_provisioned();
        s.set_condition(&cond("Ready", true, "Ready", ConditionSeverity::Info));
        s.set_terminal_failure(None);
        assert!(s.provisioned() && s.is_condition_true("Ready"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["ready"], true);
        assert!(json["conditions"][0].get("severity").is_none());
        assert!(json.get("failureReason").is_none());
        // Nothing to mirror: the fields are native.
        let before = s.clone();
        s.mirror_v1beta1_fields();
        assert_eq!(s, before);
    }

    #[test]
    fn v1beta1_cluster_failure_domains_are_a_map_and_the_endpoint_converts() {
        let mut s = v1beta1::InfraClusterStatus::default();
        s.set_failure_domains(vec![
            FailureDomain {
                name: "b".into(),
                control_plane: Some(false),
                attributes: Some(BTreeMap::from([("rack".into(), "2".into())])),
            },
            FailureDomain {
                name: "a".into(),
                control_plane: Some(true),
                attributes: None,
            },
        ]);
        assert_eq!(
            serde_json::to_value(&s).unwrap()["failureDomains"],
            serde_json::json!({"a": {"controlPlane": true}, "b": {"controlPlane": false, "attributes": {"rack": "2"}}})
        );
        s.set_failure_domains(Vec::new());
        assert_eq!(s.failure_domains, None);
        let mut spec = v1beta1::InfraClusterSpec::default();
        assert_eq!(
            InfraClusterContractSpec::control_plane_endpoint(&spec),
            None
        );
        spec.set_control_plane_endpoint(ApiEndpoint {
            host: Some("lb".into()),
            port: Some(6443),
        });
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({"controlPlaneEndpoint": {"host": "lb", "port": 6443}})
        );
    }

    #[test]
    fn v1beta2_status_keeps_its_shapes() {
        let mut s = InfraClusterStatus::default();
        s.set_failure_domains(vec![
            FailureDomain {
                name: "b".into(),
                control_plane: Some(false),
                attributes: None,
            },
            FailureDomain {
                name: "a".into(),
                control_plane: Some(true),
                attributes: None,
            },
        ]);
        s.set_provisioned();
        s.set_condition(&cond("Ready", true, "Ready", ConditionSeverity::Info));
        assert_eq!(s.contract_version(), ContractVersion::V1Beta2);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["failureDomains"][0]["name"], "a");
        assert_eq!(json["initialization"]["provisioned"], true);
        assert!(json.get("ready").is_none());
        s.mirror_v1beta1_fields();
        assert_eq!(s.ready, Some(true));
        assert!(
            s.deprecated
                .and_then(|d| d.v1beta1)
                .and_then(|v| v.conditions)
                .is_some()
        );
    }
}
