//! Cluster API types and the infrastructure-provider contract.
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
