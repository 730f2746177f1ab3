//! Write Cluster API infrastructure providers in Rust.
//!
//! Implement [`InfraMachine`] and [`InfraCluster`] for your infrastructure; the SDK generates the
//! reconcilers that do everything the CAPI infrastructure-provider contract demands, and the
//! [`Manager`] runs them.

pub mod backoff;
pub mod context;
mod controller;
mod interim;
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
