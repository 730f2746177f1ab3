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
//! m.contract_status_mut().failure_domain = Some("zone-a".into());
//! assert_eq!(m.status.unwrap().contract.failure_domain.as_deref(), Some("zone-a"));
//! ```

use std::fmt::Debug;

use capi_core::contract::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus,
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
pub trait InfraMachineResource: ProviderResource {
    /// The contract part of the spec.
    fn contract_spec(&self) -> &InfraMachineSpec;
    /// The contract part of the spec, mutably.
    fn contract_spec_mut(&mut self) -> &mut InfraMachineSpec;
    /// The contract part of the status, if there is a status.
    fn contract_status(&self) -> Option<&InfraMachineStatus>;
    /// The contract part of the status, creating an empty status if there is none.
    fn contract_status_mut(&mut self) -> &mut InfraMachineStatus;
}

/// An InfraCluster kind: where its contract fields live.
pub trait InfraClusterResource: ProviderResource {
    /// The contract part of the spec.
    fn contract_spec(&self) -> &InfraClusterSpec;
    /// The contract part of the spec, mutably.
    fn contract_spec_mut(&mut self) -> &mut InfraClusterSpec;
    /// The contract part of the status, if there is a status.
    fn contract_status(&self) -> Option<&InfraClusterStatus>;
    /// The contract part of the status, creating an empty status if there is none.
    fn contract_status_mut(&mut self) -> &mut InfraClusterStatus;
}

/// Implements [`InfraMachineResource`] for a kube-derive root type whose spec and status embed
/// the contract structs: `infra_machine_resource!(MyMachine, spec.<field>, status.<field>)`.
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
            ) -> ::std::option::Option<&$crate::capi_core::contract::InfraMachineStatus> {
                self.status.as_ref().map(|s| &s.$status)
            }
            fn contract_status_mut(
                &mut self,
            ) -> &mut $crate::capi_core::contract::InfraMachineStatus {
                &mut self
                    .status
                    .get_or_insert_with(::std::default::Default::default)
                    .$status
            }
        }
    };
}

/// Implements [`InfraClusterResource`] for a kube-derive root type whose spec and status embed
/// the contract structs: `infra_cluster_resource!(MyCluster, spec.<field>, status.<field>)`.
#[macro_export]
macro_rules! infra_cluster_resource {
    ($ty:ty, spec.$spec:ident, status.$status:ident) => {
        impl $crate::resource::InfraClusterResource for $ty {
            fn contract_spec(&self) -> &$crate::capi_core::contract::InfraClusterSpec {
                &self.spec.$spec
            }
            fn contract_spec_mut(&mut self) -> &mut $crate::capi_core::contract::InfraClusterSpec {
                &mut self.spec.$spec
            }
            fn contract_status(
                &self,
            ) -> ::std::option::Option<&$crate::capi_core::contract::InfraClusterStatus> {
                self.status.as_ref().map(|s| &s.$status)
            }
            fn contract_status_mut(
                &mut self,
            ) -> &mut $crate::capi_core::contract::InfraClusterStatus {
                &mut self
                    .status
                    .get_or_insert_with(::std::default::Default::default)
                    .$status
            }
        }
    };
}
