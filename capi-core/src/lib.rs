//! Cluster API types and the infrastructure-provider contract.
pub mod conditions;
pub mod contract;
pub mod crd;
pub mod template;
pub mod v1beta1;
pub mod v1beta2;
