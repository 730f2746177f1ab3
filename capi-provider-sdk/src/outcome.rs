//! What an author's `reconcile` and `delete` report back to the SDK.
//!
//! Every outcome is data the SDK turns into contract fields, a condition and a requeue: the author
//! never writes status by hand.
//!
//! ```
//! use std::time::Duration;
//! use capi_provider_sdk::outcome::{Failure, MachineOutcome};
//!
//! // Still booting: the SDK sets Ready=False with this reason and checks again in 5 s.
//! let waiting = MachineOutcome::in_progress("InstanceStarting", Duration::from_secs(5));
//! // Done: providerID, addresses and placement, copied into the contract fields.
//! let done = MachineOutcome::provisioned("example://zone-a/i-42").with_internal_ip("10.0.0.7").in_failure_domain("zone-a");
//! // Errors are transient (retried with backoff) unless declared terminal.
//! let fatal: Failure<std::io::Error> = Failure::terminal("InvalidImage", "image ubuntu-99 does not exist");
//! # let _ = (waiting, done, fatal);
//! ```

use std::time::Duration;

use capi_core::contract::fields::{ApiEndpoint, FailureDomain, MachineAddress, MachineAddressType};

/// An InfraMachine's state after the author's `reconcile`.
#[derive(Debug, Clone, PartialEq)]
pub enum MachineOutcome {
    /// The instance exists and is ready to bootstrap.
    Provisioned(MachineProvisioned),
    /// Still working; the SDK reports `reason` and asks again after `requeue_after`.
    InProgress(InProgress),
}

impl MachineOutcome {
    /// A provisioned machine with its provider ID (the Node's `spec.providerID`).
    pub fn provisioned(provider_id: impl Into<String>) -> MachineProvisioned {
        MachineProvisioned {
            provider_id: provider_id.into(),
            addresses: Vec::new(),
            failure_domain: None,
            interruptible: false,
        }
    }

    /// Still working, with a CamelCase `reason` shown in the Ready condition.
    pub fn in_progress(reason: impl Into<String>, requeue_after: Duration) -> Self {
        Self::InProgress(InProgress {
            reason: reason.into(),
            message: None,
            requeue_after,
        })
    }
}

/// What a provisioned machine reports.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineProvisioned {
    /// `spec.providerID`: must equal the Node's `spec.providerID`.
    pub provider_id: String,
    /// `status.addresses`, in the order given.
    pub addresses: Vec<MachineAddress>,
    /// `status.failureDomain`: where the machine actually runs.
    pub failure_domain: Option<String>,
    /// `status.interruptible`: the instance is a spot/preemptible one (see
    /// [`interruptible`](Self::interruptible)).
    pub interruptible: bool,
}

impl MachineProvisioned {
    /// Adds an address.
    pub fn with_address(mut self, type_: MachineAddressType, address: impl Into<String>) -> Self {
        self.addresses.push(MachineAddress {
            type_,
            address: address.into(),
        });
        self
    }

    /// Adds an `InternalIP` address.
    pub fn with_internal_ip(self, address: impl Into<String>) -> Self {
        self.with_address(MachineAddressType::InternalIP, address)
    }

    /// Sets the failure domain the machine runs in.
    pub fn in_failure_domain(mut self, failure_domain: impl Into<String>) -> Self {
        self.failure_domain = Some(failure_domain.into());
        self
    }

    /// Reports whether the instance may be interrupted by the infrastructure (a spot or
    /// preemptible instance). The SDK writes `status.interruptible: true` (in both contracts'
    /// shapes) and CAPI core then labels the workload Node `cluster.x-k8s.io/interruptible`,
    /// which node-termination handlers and schedulers select on.
    ///
    /// Like the addresses, every provisioned outcome describes the instance afresh: one that
    /// does not report it (the default) means "not interruptible", and the SDK then leaves the
    /// field absent (an explicit `false` already there stays, a `true` is removed). Report it on
    /// every provisioned outcome of such an instance, typically from the instance's own data,
    /// so the field never flips between reconciles. Waits, in-progress outcomes and failures
    /// leave it as it is.
    ///
    /// ```
    /// use capi_provider_sdk::outcome::MachineOutcome;
    ///
    /// let spot = MachineOutcome::provisioned("example://zone-a/i-42").interruptible(true);
    /// assert!(spot.interruptible);
    /// // Not said: not interruptible.
    /// assert!(!MachineOutcome::provisioned("example://zone-a/i-43").interruptible);
    /// ```
    pub fn interruptible(mut self, interruptible: bool) -> Self {
        self.interruptible = interruptible;
        self
    }
}

impl From<MachineProvisioned> for MachineOutcome {
    fn from(p: MachineProvisioned) -> Self {
        Self::Provisioned(p)
    }
}

/// Work under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgress {
    /// CamelCase reason for the Ready condition, e.g. `WaitingForIP`.
    pub reason: String,
    /// Human-readable detail.
    pub message: Option<String>,
    /// When to look again.
    pub requeue_after: Duration,
}

impl InProgress {
    /// Adds a message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// An InfraCluster's state after the author's `reconcile`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterOutcome {
    /// The cluster infrastructure is ready.
    Provisioned(ClusterProvisioned),
    /// Still working.
    InProgress(InProgress),
}

impl ClusterOutcome {
    /// A provisioned cluster; add an endpoint and failure domains with the builder methods.
    pub fn provisioned() -> ClusterProvisioned {
        ClusterProvisioned::default()
    }

    /// Still working, with a CamelCase `reason`.
    pub fn in_progress(reason: impl Into<String>, requeue_after: Duration) -> Self {
        Self::InProgress(InProgress {
            reason: reason.into(),
            message: None,
            requeue_after,
        })
    }
}

/// What a provisioned cluster reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterProvisioned {
    /// `spec.controlPlaneEndpoint`, when this provider supplies it (a load balancer).
    pub control_plane_endpoint: Option<ApiEndpoint>,
    /// `status.failureDomains` (the SDK sorts them by name).
    pub failure_domains: Vec<FailureDomain>,
}

impl ClusterProvisioned {
    /// Sets the control-plane endpoint.
    pub fn with_endpoint(mut self, host: impl Into<String>, port: i32) -> Self {
        self.control_plane_endpoint = Some(ApiEndpoint {
            host: Some(host.into()),
            port: Some(port),
        });
        self
    }

    /// Adds a failure domain.
    pub fn with_failure_domain(mut self, name: impl Into<String>, control_plane: bool) -> Self {
        self.failure_domains.push(FailureDomain {
            name: name.into(),
            control_plane: Some(control_plane),
            attributes: None,
        });
        self
    }
}

impl From<ClusterProvisioned> for ClusterOutcome {
    fn from(p: ClusterProvisioned) -> Self {
        Self::Provisioned(p)
    }
}

/// The state of a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Everything is gone: the SDK removes the finalizer.
    Deleted,
    /// Teardown under way; the finalizer stays.
    InProgress(InProgress),
}

impl DeleteOutcome {
    /// Teardown under way, with a CamelCase `reason`.
    pub fn in_progress(reason: impl Into<String>, requeue_after: Duration) -> Self {
        Self::InProgress(InProgress {
            reason: reason.into(),
            message: None,
            requeue_after,
        })
    }
}

/// An author error: transient (retried with per-object exponential backoff) or terminal
/// (reported with the v1beta1 failure fields and a False Ready condition, not retried until the
/// object changes).
#[derive(Debug, thiserror::Error)]
pub enum Failure<E> {
    /// Retry later.
    #[error(transparent)]
    Transient(E),
    /// Will not succeed without a change to the object.
    #[error("{reason}: {message}")]
    Terminal {
        /// CamelCase reason.
        reason: String,
        /// Human-readable message.
        message: String,
    },
}

impl<E> Failure<E> {
    /// A terminal failure.
    pub fn terminal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Terminal {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl<E> From<E> for Failure<E> {
    fn from(e: E) -> Self {
        Self::Transient(e)
    }
}
