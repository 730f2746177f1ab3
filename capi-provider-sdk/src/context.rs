//! What an author's `reconcile` and `delete` receive.

use std::sync::Arc;

use capi_core::v1beta2::{Cluster, Machine};
use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::events::{Event, EventType};

use crate::events::EventRecorder;

use capi_core::bootstrap::BootstrapData;

/// Everything known about one InfraMachine when the author is called.
#[derive(Clone)]
pub struct MachineContext<R> {
    /// The InfraMachine as the SDK will write it back: the object read at the start of this
    /// reconcile plus the SDK's own changes so far (its finalizer). Record provider-specific
    /// state here, such as an instance ID in your status: what you change is patched after
    /// `reconcile`/`delete` returns, also when it returns an error, in the same single
    /// write as the contract fields (none when nothing changed).
    pub infra_machine: R,
    /// The owning CAPI Machine (v1beta2 shape, whatever version the server stores), from the
    /// SDK's cache: its metadata (without `managedFields`) and spec; the status, CAPI core's
    /// view of the node, is not cached and is `None`. During
    /// `delete` it may be a stand-in carrying only its name, namespace and cluster name: when
    /// CAPI's objects went first (their namespace is being deleted), teardown still runs.
    pub machine: Arc<Machine>,
    /// The Cluster the machine belongs to (during `delete`, possibly a stand-in, as above).
    pub cluster: Arc<Cluster>,
    /// The Cluster's InfraCluster, if it has one (any provider kind, as JSON).
    pub infra_cluster: Option<Arc<DynamicObject>>,
    /// The bootstrap data: set for `reconcile`, `None` during `delete` (it may be gone).
    pub bootstrap: Option<BootstrapData>,
    /// A client for anything else the provider reads or writes.
    pub client: Client,
    /// Publishes Kubernetes events about this InfraMachine.
    pub events: EventPublisher,
}

impl<R> std::fmt::Debug for MachineContext<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bootstrap data is a secret: never printed.
        f.debug_struct("MachineContext")
            .field("machine", &self.machine.metadata.name)
            .field("cluster", &self.cluster.metadata.name)
            .field("bootstrap", &self.bootstrap.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl<R> MachineContext<R> {
    /// Whether the owning Machine is a control-plane machine (it has the
    /// `cluster.x-k8s.io/control-plane` label).
    pub fn is_control_plane(&self) -> bool {
        capi_core::labels::is_control_plane_machine(&self.machine.metadata)
    }

    /// The failure domain CAPI chose for the machine (`Machine.spec.failureDomain`).
    pub fn failure_domain(&self) -> Option<&str> {
        self.machine.spec.failure_domain.as_deref()
    }

    /// The Kubernetes version the machine should run (`Machine.spec.version`).
    pub fn version(&self) -> Option<&str> {
        self.machine.spec.version.as_deref()
    }
}

/// Everything known about one InfraCluster when the author is called.
#[derive(Clone)]
pub struct ClusterContext<R> {
    /// The InfraCluster as the SDK will write it back (see [`MachineContext::infra_machine`]):
    /// record network or load-balancer IDs here.
    pub infra_cluster: R,
    /// The owning Cluster (during `delete`, possibly a stand-in with only its name and
    /// namespace, when the Cluster went first).
    pub cluster: Arc<Cluster>,
    /// A client for anything else the provider reads or writes.
    pub client: Client,
    /// Publishes Kubernetes events about this InfraCluster.
    pub events: EventPublisher,
}

impl<R> std::fmt::Debug for ClusterContext<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterContext")
            .field("cluster", &self.cluster.metadata.name)
            .finish_non_exhaustive()
    }
}

/// Publishes `events.k8s.io/v1` Events about one object. Repeats within six minutes are
/// aggregated into a series, as with client-go's and kube's recorders (the SDK's own recorder,
/// which remembers ~100 bytes per series rather than the whole Event). Failing to publish is
/// logged, never an error of the reconcile.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: EventRecorder,
    reference: k8s_openapi::api::core::v1::ObjectReference,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("object", &self.reference.name)
            .finish()
    }
}

impl EventPublisher {
    pub(crate) fn new(
        recorder: EventRecorder,
        reference: k8s_openapi::api::core::v1::ObjectReference,
    ) -> Self {
        Self {
            recorder,
            reference,
        }
    }

    /// A Normal event: `reason` in CamelCase, `note` for people.
    pub async fn normal(&self, reason: &str, note: impl Into<String>) {
        self.publish(EventType::Normal, reason, note.into()).await;
    }

    /// A Warning event.
    pub async fn warning(&self, reason: &str, note: impl Into<String>) {
        self.publish(EventType::Warning, reason, note.into()).await;
    }

    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        match self.recorder.publish(&event, &self.reference).await {
            Ok(()) => {}
            // The namespace is going away with the object: nobody will read the event.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("terminat") => {
                tracing::debug!(reason, "event not published: namespace terminating");
            }
            Err(e) => tracing::warn!(error = %e, reason, "could not publish event"),
        }
    }
}
