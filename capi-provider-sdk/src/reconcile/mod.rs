//! The reconcilers the SDK generates around an author's traits, and what they share.

pub(crate) mod cluster;
pub(crate) mod conditions;
pub(crate) mod finalizers;
pub(crate) mod lookups;
pub(crate) mod machine;
pub(crate) mod stand_ins;

use std::time::Duration;

use capi_core::v1beta2::{Cluster, Machine};
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::backoff::PerObjectBackoff;
use crate::metrics::ControllerMetrics;
use crate::patch::{PatchError, PatchOptions};

/// Why a reconcile failed; it is retried with per-object exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A request to the API server failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Writing the result failed.
    #[error("writing the result failed: {0}")]
    Patch(#[from] PatchError),
    /// The provider's code returned a transient error.
    #[error("provider error: {0}")]
    Provider(Box<dyn std::error::Error + Send + Sync>),
    /// The provider's code panicked; only this object's reconcile is affected.
    #[error("provider code panicked: {0}")]
    Panicked(String),
    /// The bootstrap data secret is malformed.
    #[error("bootstrap data: {0}")]
    Bootstrap(String),
    /// A referenced kind's CRD declares no usable contract version.
    #[error("cannot resolve {group}/{kind}: {reason}")]
    Unresolvable {
        /// API group of the reference.
        group: String,
        /// Kind of the reference.
        kind: String,
        /// Why.
        reason: String,
    },
}

pub(crate) type StepResult = Result<Action, ReconcileError>;

/// Settings of one generated controller.
#[derive(Debug, Clone)]
pub(crate) struct ControllerOptions {
    /// The finalizer the SDK adds, `<group>/<kind-lowercase>`.
    pub finalizer: String,
    /// Condition ownership and conflict retries.
    pub patch: PatchOptions,
    /// Also write `status.ready` for v1beta1-contract readers (CAPI ≤ 1.10).
    pub v1beta1_fields: bool,
    /// Reconcile provisioned objects again after this long (drift detection); `None`: only on change.
    pub resync: Option<Duration>,
}

/// State shared by every reconcile of one controller.
pub(crate) struct Shared<P> {
    pub provider: P,
    pub client: Client,
    pub machines: Store<Machine>,
    pub clusters: Store<Cluster>,
    pub recorder: Recorder,
    pub options: ControllerOptions,
    pub versions: lookups::VersionCache,
    pub backoff: PerObjectBackoff,
    pub metrics: ControllerMetrics,
}
