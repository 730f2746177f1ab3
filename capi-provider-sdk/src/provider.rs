//! The two traits a provider author implements.

use async_trait::async_trait;

use crate::context::{ClusterContext, MachineContext};
use crate::outcome::{ClusterOutcome, DeleteOutcome, Failure, MachineOutcome};
use crate::resource::{InfraClusterResource, InfraMachineResource};

/// The infrastructure behind an InfraMachine kind: create the instance, tear it down.
///
/// The SDK calls `reconcile` only once everything the contract makes a provider wait for is
/// there (owner Machine, Cluster, infrastructure provisioned, bootstrap data, control plane
/// initialized for workers), never while paused, and `delete` only while the InfraMachine is
/// being deleted and still has the SDK's finalizer. Both must be idempotent: they run again
/// after a restart, a conflict, or a status loss.
#[async_trait]
pub trait InfraMachine: Send + Sync + 'static {
    /// The provider's InfraMachine kind.
    type Resource: InfraMachineResource;
    /// The provider's error type; wrap it in [`Failure::Terminal`] for errors that retrying
    /// cannot fix.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Brings the instance towards the spec; reports how far it got.
    async fn reconcile(
        &self,
        cx: &mut MachineContext<Self::Resource>,
    ) -> Result<MachineOutcome, Failure<Self::Error>>;

    /// Tears the instance down; reports [`DeleteOutcome::Deleted`] once nothing is left.
    async fn delete(
        &self,
        cx: &mut MachineContext<Self::Resource>,
    ) -> Result<DeleteOutcome, Failure<Self::Error>>;
}

/// The infrastructure behind an InfraCluster kind: networks, load balancers, zones.
///
/// `reconcile` runs once the InfraCluster has its owner Cluster and is neither paused nor
/// externally managed; `delete` runs when it is deleted (CAPI deletes it after all machines).
#[async_trait]
pub trait InfraCluster: Send + Sync + 'static {
    /// The provider's InfraCluster kind.
    type Resource: InfraClusterResource;
    /// The provider's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Brings the cluster infrastructure towards the spec.
    async fn reconcile(
        &self,
        cx: &mut ClusterContext<Self::Resource>,
    ) -> Result<ClusterOutcome, Failure<Self::Error>>;

    /// Tears the cluster infrastructure down.
    async fn delete(
        &self,
        cx: &mut ClusterContext<Self::Resource>,
    ) -> Result<DeleteOutcome, Failure<Self::Error>>;
}
