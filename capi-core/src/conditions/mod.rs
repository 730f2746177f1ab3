//! Conditions in both shapes CAPI uses, and a small API to read and write them.
//!
//! - [`v1beta2`]: `metav1.Condition` lists (`status.conditions` of v1beta2 objects): `reason` is
//!   required, `message` always serialized, `observedGeneration` stamped. As `conditions.Set`
//!   upstream (and `meta.SetStatusCondition`), `lastTransitionTime` moves only when the status
//!   changes.
//! - [`v1beta1`]: CAPI's own [`V1Beta1Condition`] with a severity (`status.conditions` of v1beta1
//!   objects, `status.deprecated.v1beta1.conditions` of v1beta2 ones). As upstream's deprecated
//!   v1beta1 `conditions.Set`, `lastTransitionTime` moves when the condition's state (status,
//!   reason, severity or message) changes.
//!
//! Both truncate times to whole seconds (what the API server stores) and keep lists in a
//! deterministic order, so writing the same conditions twice changes nothing.
//!
//! ```
//! use capi_core::conditions::{v1beta2, types, reasons};
//!
//! let mut list = None;
//! v1beta2::mark_false(&mut list, types::READY, "WaitingForBootstrapData", "no data yet", Some(1));
//! v1beta2::mark_false(&mut list, types::PAUSED, reasons::NOT_PAUSED, "", Some(1));
//! let first = v1beta2::get(&list, types::READY).unwrap().last_transition_time.clone();
//! // Same status, new reason: the transition time stays.
//! v1beta2::mark_false(&mut list, types::READY, "WaitingForInfrastructure", "", Some(2));
//! assert_eq!(v1beta2::get(&list, types::READY).unwrap().last_transition_time, first);
//! assert!(v1beta2::is_false(&list, types::READY));
//! assert_eq!(list.unwrap().iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), ["Ready", "Paused"]);
//! ```

mod severity;
pub mod v1beta1;
pub mod v1beta2;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use severity::ConditionSeverity;

/// Well-known condition types (api/core/v1beta2/condition_consts.go).
pub mod types {
    /// The object is ready; infrastructure providers keep it for the whole lifecycle.
    pub const READY: &str = "Ready";
    /// The object is paused (`spec.paused` of its Cluster or the paused annotation).
    pub const PAUSED: &str = "Paused";
    /// The object is available.
    pub const AVAILABLE: &str = "Available";
    /// The object is being deleted.
    pub const DELETING: &str = "Deleting";
    /// Mirrors the InfraCluster's / InfraMachine's Ready on the Cluster / Machine.
    pub const INFRASTRUCTURE_READY: &str = "InfrastructureReady";
    /// Mirrors the bootstrap config's Ready on the Machine.
    pub const BOOTSTRAP_CONFIG_READY: &str = "BootstrapConfigReady";
    /// The Cluster's control plane can accept requests.
    pub const CONTROL_PLANE_INITIALIZED: &str = "ControlPlaneInitialized";
    /// The Cluster's control plane is available.
    pub const CONTROL_PLANE_AVAILABLE: &str = "ControlPlaneAvailable";
    /// The Cluster's workers are available.
    pub const WORKERS_AVAILABLE: &str = "WorkersAvailable";
    /// The object's Machines are ready.
    pub const MACHINES_READY: &str = "MachinesReady";
    /// The object is up to date with its spec.
    pub const UP_TO_DATE: &str = "UpToDate";
}

/// Well-known condition reasons.
pub mod reasons {
    /// Ready.
    pub const READY: &str = "Ready";
    /// Not ready.
    pub const NOT_READY: &str = "NotReady";
    /// Readiness unknown.
    pub const READY_UNKNOWN: &str = "ReadyUnknown";
    /// Paused.
    pub const PAUSED: &str = "Paused";
    /// Not paused.
    pub const NOT_PAUSED: &str = "NotPaused";
    /// Being deleted.
    pub const DELETING: &str = "Deleting";
    /// Not being deleted.
    pub const NOT_DELETING: &str = "NotDeleting";
    /// Deletion finished.
    pub const DELETION_COMPLETED: &str = "DeletionCompleted";
    /// Waiting for `Cluster.status.initialization.infrastructureProvisioned`.
    pub const WAITING_FOR_CLUSTER_INFRASTRUCTURE_READY: &str =
        "WaitingForClusterInfrastructureReady";
    /// Waiting for the control plane to be initialized.
    pub const WAITING_FOR_CONTROL_PLANE_INITIALIZED: &str = "WaitingForControlPlaneInitialized";
    /// Waiting for the bootstrap data secret.
    pub const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapData";
    /// Provisioned.
    pub const PROVISIONED: &str = "Provisioned";
    /// Not provisioned.
    pub const NOT_PROVISIONED: &str = "NotProvisioned";
    /// A referenced object does not exist.
    pub const OBJECT_DOES_NOT_EXIST: &str = "ObjectDoesNotExist";
    /// A referenced object was deleted.
    pub const OBJECT_DELETED: &str = "ObjectDeleted";
    /// An unexpected error.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// A referenced object reported a condition that cannot be read.
    pub const INVALID_CONDITION_REPORTED: &str = "InvalidConditionReported";
    /// A condition was converted from a shape without a reason.
    pub const NO_REASON_REPORTED: &str = "NoReasonReported";
}

/// `True`, `False`, `Unknown`.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Unknown.
    pub const UNKNOWN: &str = "Unknown";
}

/// CAPI's v1beta1 Condition: a `metav1.Condition` ancestor with a severity and optional reason.
///
/// Its JSON schema is upstream's (bounds included) and any JSON the API accepts round-trips
/// unchanged, unknown severities included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct V1Beta1Condition {
    /// The condition's type, e.g. `Ready`.
    #[serde(rename = "type")]
    #[schemars(extend("minLength" = 1, "maxLength" = 256))]
    pub type_: String,
    /// `True`, `False` or `Unknown` (not enforced by the schema).
    pub status: String,
    /// How bad a False condition is: `Error`, `Warning`, `Info` (or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<ConditionSeverity>,
    /// When the condition last changed state.
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: Time,
    /// A CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minLength" = 1, "maxLength" = 256))]
    pub reason: Option<String>,
    /// Details for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minLength" = 1, "maxLength" = 10240))]
    pub message: Option<String>,
}

/// Now, truncated to whole seconds as the API server stores times.
pub fn now() -> Time {
    truncate(k8s_openapi::jiff::Timestamp::now())
}

/// `t` truncated to whole seconds.
pub fn truncate(t: k8s_openapi::jiff::Timestamp) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.as_second()).unwrap_or(t))
}

/// Upstream's order for v1beta2 conditions: these first, then other types alphabetically, then
/// `Paused`, then `Deleting`.
const ORDER_FIRST: &[&str] = &[
    "Available",
    "Ready",
    "UpToDate",
    "BootstrapConfigReady",
    "InfrastructureReady",
    "ControlPlaneInitialized",
    "ControlPlaneAvailable",
    "WorkersAvailable",
    "MachinesReady",
    "MachinesUpToDate",
    "NodeHealthy",
    "NodeReady",
    "RollingOut",
    "ScalingUp",
    "ScalingDown",
    "Remediating",
];

/// The sort key of a v1beta2 condition type.
pub(crate) fn order_key(type_: &str) -> (u8, usize, &str) {
    match type_ {
        "Paused" => (2, 0, ""),
        "Deleting" => (3, 0, ""),
        t => match ORDER_FIRST.iter().position(|k| *k == t) {
            Some(i) => (0, i, ""),
            None => (1, 0, t),
        },
    }
}
