//! Cluster API types and the infrastructure-provider contract, for Rust.
//!
//! - [`v1beta1`] and [`v1beta2`]: the core kinds (Cluster, Machine, MachineSet,
//!   MachineDeployment, MachineHealthCheck, MachinePool) in both versions CAPI serves,
//!   generated from the upstream CRD schemas (`cargo xtask codegen`) so names, optionality,
//!   enums and validation match upstream; [`convert`] converts Cluster and Machine between them.
//!   ClusterClass is not generated yet: `xtask/src/codegen.rs` takes it by adding its CRD.
//! - [`contract`]: what InfraCluster / InfraMachine kinds carry ([`contract::fields`]) and how
//!   CAPI reads them from any provider ([`contract::view`]), in both contract versions.
//! - [`conditions`] (both shapes), [`labels`] (labels, annotations, pause), [`owner`],
//!   [`provider_id`], [`bootstrap`] data, [`naming`] (CRD names as CAPI computes them).
//! - [`crd`]: the core CRDs and provider CRDs with contract labels; [`template`]: clusterctl
//!   variables.
//!
//! Reading a Cluster and checking it against the contract:
//!
//! ```
//! use capi_core::contract::{ContractVersion, InfraClusterView};
//! use capi_core::{labels, naming, v1beta2};
//!
//! let cluster: v1beta2::Cluster = serde_saphyr::from_str(r#"
//! apiVersion: cluster.x-k8s.io/v1beta2
//! kind: Cluster
//! metadata: {name: demo, namespace: default}
//! spec:
//!   clusterNetwork: {pods: {cidrBlocks: ["192.168.0.0/16"]}}
//!   infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: DevCluster, name: demo}
//! status:
//!   initialization: {infrastructureProvisioned: true}
//!   conditions:
//!   - {type: Ready, status: "False", reason: WaitingForControlPlane, message: "", lastTransitionTime: "2026-01-01T00:00:00Z"}
//! "#).unwrap();
//!
//! // Core finds the InfraCluster's CRD by a computed name, then reads it under its contract.
//! let infra = cluster.spec.infrastructure_ref.as_ref().unwrap();
//! assert_eq!(naming::crd_name(&infra.api_group, &infra.kind), "devclusters.infrastructure.cluster.x-k8s.io");
//! assert!(!labels::is_paused(&cluster, &cluster.metadata));
//! let status = cluster.status.as_ref().unwrap();
//! assert_eq!(status.initialization.as_ref().unwrap().infrastructure_provisioned, Some(true));
//! assert!(capi_core::conditions::v1beta2::is_false(&status.conditions, "Ready"));
//!
//! // The InfraCluster behind it, as core reads a v1beta2-contract provider.
//! let dev_cluster = serde_json::json!({
//!     "spec": {"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443}},
//!     "status": {"initialization": {"provisioned": true}, "failureDomains": [{"name": "fd-b"}, {"name": "fd-a", "controlPlane": true}]},
//! });
//! let view = InfraClusterView::new(&dev_cluster, ContractVersion::V1Beta2);
//! assert!(view.provisioned().unwrap());
//! assert_eq!(view.control_plane_endpoint().unwrap().unwrap().port, Some(6443));
//! let domains: Vec<_> = view.failure_domains().unwrap().into_iter().map(|f| f.name).collect();
//! assert_eq!(domains, ["fd-a", "fd-b"]);
//! ```

pub mod bootstrap;
pub mod conditions;
pub mod contract;
pub mod convert;
pub mod crd;
pub mod labels;
pub mod naming;
pub mod owner;
pub mod provider_id;
pub mod template;
pub mod v1beta1;
pub mod v1beta2;

/// The API group of the core Cluster API kinds.
pub const GROUP: &str = "cluster.x-k8s.io";
