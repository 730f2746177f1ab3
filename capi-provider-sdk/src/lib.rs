//! Write Cluster API infrastructure providers in Rust.
//!
//! Implement [`InfraMachine`] and [`InfraCluster`] for your infrastructure; the SDK generates the
//! reconcilers that do everything the CAPI infrastructure-provider contract demands (owner
//! lookup, pause, finalizers, waiting for cluster infrastructure, bootstrap data and the control
//! plane, contract fields, `Ready`/`Paused` conditions, events, metrics) and the [`Manager`] runs
//! them with leader election, probes and graceful shutdown.
//!
//! A complete provider, for a cloud reached through some `CloudApi`:
//!
//! ```no_run
//! use std::time::Duration;
//! use capi_provider_sdk::capi_core::contract::{InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus};
//! use capi_provider_sdk::{async_trait, ClusterContext, ClusterOutcome, DeleteOutcome, Failure, InfraCluster,
//!     InfraMachine, MachineContext, MachineOutcome, Manager, ManagerOptions};
//! use kube::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "ExampleMachine", namespaced)]
//! #[kube(status = "ExampleMachineStatus", derive = "PartialEq")]
//! pub struct ExampleMachineSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineSpec,
//!     pub size: String,
//! }
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct ExampleMachineStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineStatus,
//! }
//! capi_provider_sdk::infra_machine_resource!(ExampleMachine, spec.contract, status.contract);
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "ExampleCluster", namespaced)]
//! #[kube(status = "ExampleClusterStatus", derive = "PartialEq")]
//! pub struct ExampleClusterSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterSpec,
//! }
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct ExampleClusterStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterStatus,
//! }
//! capi_provider_sdk::infra_cluster_resource!(ExampleCluster, spec.contract, status.contract);
//!
//! # #[derive(Clone)] struct CloudApi;
//! # impl CloudApi {
//! #     async fn instance(&self, _: &str) -> Result<Option<(String, bool)>, std::io::Error> { Ok(None) }
//! #     async fn create_instance(&self, _: &str, _: &str, _: &[u8]) -> Result<(), std::io::Error> { Ok(()) }
//! #     async fn delete_instance(&self, _: &str) -> Result<bool, std::io::Error> { Ok(true) }
//! #     async fn load_balancer(&self, _: &str) -> Result<String, std::io::Error> { Ok("10.0.0.1".into()) }
//! # }
//! #[derive(Clone)]
//! struct Example { cloud: CloudApi }
//!
//! #[async_trait]
//! impl InfraMachine for Example {
//!     type Resource = ExampleMachine;
//!     type Error = std::io::Error;
//!
//!     async fn reconcile(&self, cx: &mut MachineContext<ExampleMachine>) -> Result<MachineOutcome, Failure<std::io::Error>> {
//!         let name = cx.machine.metadata.name.clone().unwrap_or_default();
//!         match self.cloud.instance(&name).await? {
//!             Some((ip, true)) => Ok(MachineOutcome::provisioned(format!("example:///{name}")).with_internal_ip(ip).into()),
//!             Some(_) => Ok(MachineOutcome::in_progress("InstanceStarting", Duration::from_secs(5))),
//!             None => {
//!                 let data = cx.bootstrap.as_ref().map(|b| b.value.clone()).unwrap_or_default();
//!                 self.cloud.create_instance(&name, &cx.infra_machine.spec.size, &data).await?;
//!                 Ok(MachineOutcome::in_progress("InstanceCreating", Duration::from_secs(5)))
//!             }
//!         }
//!     }
//!
//!     async fn delete(&self, cx: &mut MachineContext<ExampleMachine>) -> Result<DeleteOutcome, Failure<std::io::Error>> {
//!         let name = cx.machine.metadata.name.clone().unwrap_or_default();
//!         Ok(if self.cloud.delete_instance(&name).await? { DeleteOutcome::Deleted }
//!            else { DeleteOutcome::in_progress("InstanceDeleting", Duration::from_secs(5)) })
//!     }
//! }
//!
//! #[async_trait]
//! impl InfraCluster for Example {
//!     type Resource = ExampleCluster;
//!     type Error = std::io::Error;
//!
//!     async fn reconcile(&self, cx: &mut ClusterContext<ExampleCluster>) -> Result<ClusterOutcome, Failure<std::io::Error>> {
//!         let host = self.cloud.load_balancer(&cx.cluster.metadata.name.clone().unwrap_or_default()).await?;
//!         Ok(ClusterOutcome::provisioned().with_endpoint(host, 6443).with_failure_domain("zone-a", true).into())
//!     }
//!
//!     async fn delete(&self, _cx: &mut ClusterContext<ExampleCluster>) -> Result<DeleteOutcome, Failure<std::io::Error>> {
//!         Ok(DeleteOutcome::Deleted)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let provider = Example { cloud: CloudApi };
//!     let client = kube::Client::try_default().await?;
//!     Manager::new(client, ManagerOptions::new("example-provider"))
//!         .machine(provider.clone())
//!         .cluster(provider)
//!         .run()
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! # Targeting CAPI ≤ 1.10 (the v1beta1 contract)
//!
//! CAPI 1.11 and later read the v1beta2 contract; 1.10 and earlier only the v1beta1 one
//! (`status.ready`, failure domains as a map name → `{controlPlane, attributes}`, CAPI v1beta1
//! conditions with severity, terminal `failureReason`/`failureMessage`). For those, embed the
//! structs of [`capi_core::contract::fields::v1beta1`] instead and label the CRDs
//! `cluster.x-k8s.io/v1beta1`; nothing else changes: the same macro line, the same
//! [`InfraMachine`]/[`InfraCluster`] code and outcomes. The SDK then writes `status.ready`, the
//! failure-domain map, `Ready` in `status.conditions` (v1beta1 shape: severity `Info` while
//! waiting or in progress, `Error` for terminal failures) and `Ready`/`Paused` as
//! `metav1.Condition`s in `status.v1beta2.conditions`, which v1beta2 core reads first, so the
//! provider also works with newer CAPI through its v1beta1 compatibility.
//!
//! (A v1beta2 provider that must *also* be readable by older tools can instead keep the
//! v1beta2 structs and set [`ManagerOptions::v1beta1_fields`]: `status.ready` and
//! `status.deprecated.v1beta1.conditions` are then written beside the v1beta2 fields. CAPI ≤ 1.10
//! still needs the v1beta1 label and shapes above.)
//!
//! ```
//! use capi_provider_sdk::capi_core::contract::fields::v1beta1::{
//!     InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus,
//! };
//! use capi_provider_sdk::capi_core::crd::{provider_crd, ContractVersionLabels};
//! use kube::{CustomResource, CustomResourceExt};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "OldMachine", namespaced)]
//! #[kube(status = "OldMachineStatus", derive = "PartialEq")]
//! pub struct OldMachineSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineSpec,
//! }
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct OldMachineStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineStatus,
//! }
//! capi_provider_sdk::infra_machine_resource!(OldMachine, spec.contract, status.contract);
//!
//! #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "OldCluster", namespaced)]
//! #[kube(status = "OldClusterStatus", derive = "PartialEq")]
//! pub struct OldClusterSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterSpec,
//! }
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
//! pub struct OldClusterStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraClusterStatus,
//! }
//! capi_provider_sdk::infra_cluster_resource!(OldCluster, spec.contract, status.contract);
//!
//! // CAPI ≤ 1.10 finds the version to use through this label.
//! let labels = ContractVersionLabels::new().with("v1beta1", ["v1alpha1"]);
//! let crd = provider_crd(vec![OldMachine::crd()], "v1alpha1", &labels).unwrap();
//! assert_eq!(crd.metadata.labels.unwrap()["cluster.x-k8s.io/v1beta1"], "v1alpha1");
//!
//! // The status structs choose the contract the SDK writes.
//! use capi_provider_sdk::capi_core::contract::ContractVersion;
//! use capi_provider_sdk::resource::InfraClusterResource;
//! let mut c = OldCluster::new("c1", OldClusterSpec::default());
//! assert_eq!(c.contract_status_mut().contract_version(), ContractVersion::V1Beta1);
//! ```

pub mod backoff;
mod cache;
pub mod context;
mod controller;
mod events;
#[cfg(feature = "clap")]
pub mod flags;
pub mod manager;
pub mod metrics;
pub mod outcome;
pub mod patch;
mod probes;
pub mod provider;
pub mod rbac;
mod reconcile;
pub mod resource;

pub use async_trait::async_trait;
pub use capi_core;
pub use context::{ClusterContext, EventPublisher, MachineContext};
pub use manager::{LeaderElection, Manager, ManagerError, ManagerOptions};
pub use outcome::{ClusterOutcome, DeleteOutcome, Failure, MachineOutcome};
pub use provider::{InfraCluster, InfraMachine};
pub use reconcile::ReconcileError;
