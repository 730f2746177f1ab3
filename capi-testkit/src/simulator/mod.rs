//! A CAPI-core simulator: the core controllers an infrastructure provider depends on, played
//! against any API server, faithful to upstream where a provider can observe the difference
//! (capi-contract.md 2.3, 2.6, 3.2, 3.5, 4).
//!
//! - **Cluster**: owner reference and cluster-name label on the InfraCluster; its provisioned
//!   flag → `status.initialization.infrastructureProvisioned` (sticky); `controlPlaneEndpoint`
//!   and failure domains copied; the control-plane-initialized signal (a stand-in for a
//!   control-plane provider: set once a control-plane Machine is provisioned); deletion in
//!   upstream's order (workers, control plane, InfraCluster, finalizer).
//! - **Machine**: owner reference and labels on the InfraMachine (the MachineSet's on-create
//!   owner swapped for the Machine); providerID, addresses and failure domain copied; phases;
//!   on delete the InfraMachine goes before the Machine's finalizer.
//! - **Bootstrap stand-in**: writes the data secret (`value`, `format`) and sets
//!   `spec.bootstrap.dataSecretName`; workers get theirs only after the control plane is
//!   initialized, as kubeadm's join requires.
//! - **MachineSet / MachineDeployment**: InfraMachineTemplates cloned into InfraMachines owned
//!   first by the MachineSet, then by their Machine; scale up and down; delete.
//!
//! It speaks v1beta2, and reads providers by the contract their CRD declares (v1beta1-contract
//! providers through `status.ready` and map-shaped failure domains), as upstream does.
//!
//! ```no_run
//! # async fn run(client: kube::Client) {
//! let sim = capi_testkit::simulator::Simulator::new(client).start();
//! // ... create a Cluster, Machines, a MachineDeployment; the provider under test reacts ...
//! sim.stop().await;
//! # }
//! ```

mod cluster;
mod machine;
mod machineset;
mod resolve;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference};
use kube::Client;
use kube::runtime::controller::Action;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use resolve::{KindResolver, ProviderKind};

/// Finalizers core puts on its objects.
pub const CLUSTER_FINALIZER: &str = "cluster.cluster.x-k8s.io";
/// The Machine finalizer.
pub const MACHINE_FINALIZER: &str = "machine.cluster.x-k8s.io";
/// The MachineSet finalizer.
pub const MACHINESET_FINALIZER: &str = "cluster.x-k8s.io/machineset";
/// The MachineDeployment finalizer.
pub const MACHINEDEPLOYMENT_FINALIZER: &str = "cluster.x-k8s.io/machinedeployment";
/// The field manager of the simulator's writes.
pub const FIELD_MANAGER: &str = "capi-simulator";

/// Why one simulated reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An API request failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A referenced kind cannot be resolved through its CRD.
    #[error("cannot resolve {what}: {reason}")]
    Unresolvable {
        /// The reference.
        what: String,
        /// Why.
        reason: String,
    },
    /// A provider object breaks the contract's shapes.
    #[error("contract: {0}")]
    Contract(#[from] capi_core::contract::ContractError),
    /// JSON (de)serialization failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Only this namespace; `None`: all.
    pub namespace: Option<String>,
    /// How often to look again at provider objects core waits for.
    pub poll: Duration,
    /// Delay before the bootstrap stand-in writes a machine's data secret.
    pub bootstrap_delay: Duration,
    /// Whether the bootstrap stand-in runs (turn off to create secrets yourself).
    pub bootstrap: bool,
    /// Whether a provisioned control-plane Machine marks the control plane initialized.
    pub control_plane: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            poll: Duration::from_millis(200),
            bootstrap_delay: Duration::ZERO,
            bootstrap: true,
            control_plane: true,
        }
    }
}

/// What every simulated controller shares.
pub(crate) struct Ctx {
    pub client: Client,
    pub options: SimulatorOptions,
    pub kinds: KindResolver,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The simulator, ready to start.
pub struct Simulator {
    client: Client,
    options: SimulatorOptions,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A running simulator; stop it to shut its controllers down.
#[derive(Debug)]
pub struct SimulatorHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// A simulator talking through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            options: SimulatorOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: SimulatorOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the Cluster, Machine, MachineSet and MachineDeployment controllers.
    pub fn start(self) -> SimulatorHandle {
        let ctx = Arc::new(Ctx {
            client: self.client,
            options: self.options,
            kinds: KindResolver::default(),
        });
        let (stop, rx) = watch::channel(false);
        let signal = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let tasks = vec![
            tokio::spawn(cluster::run(ctx.clone(), signal())),
            tokio::spawn(machine::run(ctx.clone(), signal())),
            tokio::spawn(machineset::run_machinesets(ctx.clone(), signal())),
            tokio::spawn(machineset::run_machinedeployments(ctx, signal())),
        ];
        SimulatorHandle { stop, tasks }
    }
}

impl SimulatorHandle {
    /// Stops every controller: running reconciles get two seconds to finish, then the tasks are
    /// aborted (a watch stuck in backoff behind an injected fault must not hang a test).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for mut t in self.tasks {
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

/// Drives a kube Controller's run stream to its end, logging failures.
pub(crate) async fn drain<S, T, E>(name: &'static str, stream: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    stream
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(controller = name, error = %e, "reconcile failed");
            }
            std::future::ready(())
        })
        .await;
}

/// Retry policy of every simulated controller: soon, without growing (it is a test fixture).
pub(crate) fn retry<K>(_: Arc<K>, _: &SimError, ctx: Arc<Ctx>) -> Action {
    Action::requeue(ctx.options.poll)
}

/// Sets a metav1 condition the way core does (`lastTransitionTime` moves only with the status).
pub(crate) fn set_condition(
    list: &mut Option<Vec<Condition>>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    capi_core::conditions::v1beta2::set(
        list,
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: capi_core::conditions::now(),
        },
    );
}

/// Mirrors a provider object's Ready into `InfrastructureReady`, with core's fallbacks when the
/// provider reports none (reasons `Ready` / `NotReady`, `NoReasonReported` for an empty reason,
/// except that a True condition without a reason, as v1beta1 conditions are, gets `Ready`).
pub(crate) fn mirror_infrastructure_ready(
    conditions: &mut Option<Vec<Condition>>,
    ready: Option<capi_core::contract::ReadySummary>,
    provisioned: bool,
    kind: &ProviderKind,
    generation: Option<i64>,
) {
    let t = capi_core::conditions::types::INFRASTRUCTURE_READY;
    match ready {
        Some(r) => {
            let no_reason = if r.status == "True" {
                "Ready"
            } else {
                capi_core::conditions::reasons::NO_REASON_REPORTED
            };
            set_condition(
                conditions,
                t,
                &r.status,
                r.reason.as_deref().unwrap_or(no_reason),
                r.message.as_deref().unwrap_or(""),
                generation,
            )
        }
        None if provisioned => set_condition(conditions, t, "True", "Ready", "", generation),
        None => {
            let field = match kind.contract {
                capi_core::contract::ContractVersion::V1Beta2 => {
                    "status.initialization.provisioned"
                }
                capi_core::contract::ContractVersion::V1Beta1 => "status.ready",
            };
            set_condition(
                conditions,
                t,
                "False",
                "NotReady",
                &format!("{} {field} is not true", kind.resource.kind),
                generation,
            )
        }
    }
}

/// An owner reference to a v1beta2 core object.
pub(crate) fn core_owner(kind: &str, name: &str, uid: &str, controller: bool) -> OwnerReference {
    OwnerReference {
        api_version: "cluster.x-k8s.io/v1beta2".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: controller.then_some(true),
        block_owner_deletion: controller.then_some(true),
    }
}

pub(crate) fn has_finalizer(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    f: &str,
) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

/// The merge patch replacing `metadata.finalizers` with `finalizers` (guarded by resourceVersion).
pub(crate) fn finalizers_patch(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    finalizers: Vec<String>,
) -> serde_json::Value {
    serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version}})
}

pub(crate) use capi_core::labels::{
    CLUSTER_NAME as CLUSTER_NAME_LABEL, CONTROL_PLANE as CONTROL_PLANE_LABEL,
};
