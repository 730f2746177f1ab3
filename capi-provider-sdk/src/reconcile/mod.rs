//! The reconcilers the SDK generates around an author's traits, and what they share.

pub(crate) mod cluster;
pub(crate) mod conditions;
pub(crate) mod finalizers;
pub(crate) mod lookups;
pub(crate) mod machine;
pub(crate) mod stand_ins;
pub(crate) mod superseded;

use std::time::Duration;

use capi_core::v1beta2::Cluster;
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;

use crate::backoff::PerObjectBackoff;
use crate::cache::CachedMachine;
use crate::events::EventRecorder;
use crate::metrics::ControllerMetrics;
use crate::patch::{PatchError, PatchOptions, PatchSummary};

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
    /// A cache stopped before it had synced (the controller is shutting down).
    #[error("the {0} cache stopped before it synced")]
    CacheStopped(&'static str),
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

/// Whether the Machine and Cluster caches hold the cluster's state yet.
///
/// controller-runtime starts its workers only once every cache has synced; kube-runtime's
/// Controller starts as soon as the main stream delivers an object. Reconciling earlier finds
/// no owner Machine and writes a wrong `WaitingForOwner` condition (a write, too). Waiting
/// inside the reconcile would deadlock once every worker waits: the Controller stops polling
/// its watches while its workers are all busy. So the caller requeues shortly instead.
pub(crate) fn caches_synced(
    machines: Option<&Store<CachedMachine>>,
    clusters: &Store<Cluster>,
) -> Result<bool, ReconcileError> {
    use futures::FutureExt;
    let ready = |done: Option<Result<(), _>>, what| match done {
        Some(Ok(())) => Ok(true),
        Some(Err(_)) => Err(ReconcileError::CacheStopped(what)),
        None => Ok(false),
    };
    if let Some(machines) = machines
        && !ready(machines.wait_until_ready().now_or_never(), "Machine")?
    {
        return Ok(false);
    }
    ready(clusters.wait_until_ready().now_or_never(), "Cluster")
}

/// What every reconcile checks before doing any work: `Some` means stop with this action.
///
/// The caches must have synced (see [`caches_synced`]), and the cached object must not be a
/// version our own writes have already replaced (see [`superseded`]).
pub(crate) fn not_now<P, K: kube::Resource>(
    shared: &Shared<P>,
    key: &str,
    obj: &K,
    machines: Option<&Store<CachedMachine>>,
) -> Result<Option<Action>, ReconcileError> {
    if !caches_synced(machines, &shared.clusters)? {
        tracing::debug!("caches not synced yet: trying again shortly");
        return Ok(Some(Action::requeue(CACHE_SYNC_RETRY)));
    }
    if shared
        .superseded
        .is_superseded(key, obj.meta().resource_version.as_deref())
    {
        tracing::debug!("cache behind our last write: waiting for its watch event");
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

/// How soon a reconcile that found the caches not yet synced runs again.
pub(crate) const CACHE_SYNC_RETRY: Duration = Duration::from_millis(100);

/// Handles the patch helper's answer: remembers the versions our writes superseded, and
/// treats a 404 as done (the object vanished once its finalizer went).
pub(crate) fn written<P, K: kube::Resource>(
    shared: &Shared<P>,
    key: &str,
    before: &K,
    after: &K,
    summary: Result<PatchSummary, PatchError>,
) -> Result<(), ReconcileError> {
    match summary {
        Ok(s) => {
            tracing::trace!(writes = s.writes(), conflicts = s.conflicts, "patched");
            let gone = after.meta().deletion_timestamp.is_some()
                && after.meta().finalizers.as_ref().is_none_or(Vec::is_empty);
            if gone {
                shared.superseded.forget(key);
            } else {
                let rv = before.meta().resource_version.as_deref();
                shared.superseded.record(key, rv, &s.resource_versions);
            }
            Ok(())
        }
        Err(PatchError::Api {
            source: kube::Error::Api(e),
            ..
        }) if e.code == 404 => {
            shared.superseded.forget(key);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

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
    /// Machines without their status (see [`crate::cache`]).
    pub machines: Store<CachedMachine>,
    pub clusters: Store<Cluster>,
    pub recorder: EventRecorder,
    pub options: ControllerOptions,
    pub versions: lookups::VersionCache,
    pub backoff: PerObjectBackoff,
    pub metrics: ControllerMetrics,
    /// Cached versions our own writes replaced (see [`superseded`]).
    pub superseded: superseded::SupersededVersions,
}
