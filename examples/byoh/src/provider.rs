//! The provider: [`ByohProvider`] implements the SDK's [`InfraMachine`] for [`ByoMachine`]
//! (claim a free matching [`ByoHost`], wait for its agent to bootstrap it, release it on delete)
//! and [`InfraCluster`] for [`ByoCluster`] (report the user's control-plane VIP).
//!
//! The source of truth for "which host serves which machine" is the host:
//! `ByoHost.spec.claim.uid == ByoMachine.metadata.uid`. Claims are written with optimistic
//! locking (a `PUT` carrying the listed `resourceVersion`), so two machines racing for one host
//! cannot both win: the loser gets a 409 and tries the next host.

use std::collections::BTreeMap;
use std::time::Duration;

use capi_provider_sdk::outcome::InProgress;
use capi_provider_sdk::{
    ClusterContext, ClusterOutcome, DeleteOutcome, Failure, InfraCluster, InfraMachine,
    MachineContext, MachineOutcome, async_trait,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Resource, ResourceExt};

use crate::api::{ByoCluster, ByoHost, ByoMachine, HostClaim, HostReference, SecretReference};
use crate::selector;

/// The annotation a release leaves on a host: the UID of the claim released, so that the
/// machine's deletion can wait for that host's cleanup.
pub const RELEASED_CLAIM_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/released-claim";

/// The endpoint reported for a ByoCluster whose `spec.controlPlaneEndpoint` is unset.
pub const DEFAULT_ENDPOINT: (&str, i32) = ("127.0.0.1", 6443);

/// What the provider's reconciles can fail with (all transient: retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ByohError {
    /// A request to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The bring-your-own-host provider.
#[derive(Clone, Debug)]
pub struct ByohProvider {
    /// The namespace ByoHosts register in; `None` = the ByoMachine's own namespace (upstream's
    /// behaviour). A fixed namespace lets one pool of hosts serve clusters in any namespace.
    pub host_namespace: Option<String>,
    /// How often to look again while waiting for a host, its bootstrap, or its cleanup (hosts
    /// are not watched).
    pub poll: Duration,
    /// Hosts whose `status.lastHeartbeat` is older than this are not claimed, and a dead host's
    /// cleanup is not waited for.
    pub heartbeat_timeout: Duration,
}

impl Default for ByohProvider {
    fn default() -> Self {
        Self {
            host_namespace: None,
            poll: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
        }
    }
}

impl ByohProvider {
    /// Hosts live in `namespace` rather than beside each ByoMachine.
    pub fn with_host_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.host_namespace = Some(namespace.into());
        self
    }

    /// Sets the polling interval while waiting.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sets how old a heartbeat may be for the host to count as alive.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    fn hosts(&self, cx: &MachineContext<ByoMachine>) -> (Api<ByoHost>, String) {
        let ns = self
            .host_namespace
            .clone()
            .unwrap_or_else(|| cx.infra_machine.namespace().unwrap_or_default());
        (Api::namespaced(cx.client.clone(), &ns), ns)
    }

    fn alive(&self, host: &ByoHost) -> bool {
        let Some(beat) = host.status.as_ref().and_then(|s| s.last_heartbeat.as_ref()) else {
            return false;
        };
        let age = k8s_openapi::jiff::Timestamp::now().as_second() - beat.0.as_second();
        age <= i64::try_from(self.heartbeat_timeout.as_secs()).unwrap_or(i64::MAX)
    }

    /// Whether `host` may be claimed by a machine with `selector`.
    fn free(&self, host: &ByoHost, selector: Option<&LabelSelector>) -> bool {
        let empty = BTreeMap::new();
        !host.claimed()
            && host.meta().deletion_timestamp.is_none()
            && host.clean()
            && self.alive(host)
            && selector::matches(selector, host.metadata.labels.as_ref().unwrap_or(&empty))
                == Ok(true)
    }

    /// Claims `host` with optimistic locking. On a conflict (another machine won, or the agent
    /// wrote a heartbeat in between) the host is read again and, while still free, tried again.
    /// `None`: the host is not available.
    async fn claim(
        &self,
        hosts: &Api<ByoHost>,
        host: &ByoHost,
        claim: &HostClaim,
        secret: &SecretReference,
        selector: Option<&LabelSelector>,
    ) -> Result<Option<ByoHost>, ByohError> {
        let mut current = host.clone();
        for _ in 0..3 {
            let mut next = current.clone();
            next.spec.claim = Some(claim.clone());
            next.spec.bootstrap_secret = Some(secret.clone());
            next.annotations_mut().remove(RELEASED_CLAIM_ANNOTATION);
            match hosts
                .replace(&host.name_any(), &PostParams::default(), &next)
                .await
            {
                Ok(h) => return Ok(Some(h)),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    match hosts.get_opt(&host.name_any()).await? {
                        Some(h) if self.free(&h, selector) => current = h,
                        _ => return Ok(None),
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    fn waiting(&self, reason: &str, message: String) -> InProgress {
        InProgress {
            reason: reason.into(),
            message: Some(message),
            requeue_after: self.poll,
        }
    }

    /// Releases claims whose ByoMachine no longer exists (or is another object of the same
    /// name): its deletion never reached the provider, e.g. because the Machine went first and
    /// the SDK let the ByoMachine go without calling `delete`. Returns how many were released;
    /// the hosts become claimable once their agents have cleaned up.
    pub async fn release_orphaned_claims(&self, client: &Client) -> Result<usize, ByohError> {
        let all: Api<ByoHost> = match &self.host_namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let mut released = 0;
        for host in all.list(&ListParams::default()).await?.items {
            let Some(claim) = &host.spec.claim else {
                continue;
            };
            let machines: Api<ByoMachine> = Api::namespaced(client.clone(), &claim.namespace);
            let owner = machines.get_opt(&claim.name).await?;
            if owner.is_some_and(|m| m.metadata.uid.as_deref() == Some(claim.uid.as_str())) {
                continue;
            }
            tracing::info!(host = %host.name_any(), claim = %claim.name, "releasing a claim whose ByoMachine is gone");
            let hosts = Api::namespaced(client.clone(), &host.namespace().unwrap_or_default());
            if release(&hosts, &host).await? {
                released += 1;
            }
        }
        Ok(released)
    }

    /// Runs [`release_orphaned_claims`](Self::release_orphaned_claims) every `every`, forever
    /// (spawn it beside the [`Manager`](capi_provider_sdk::Manager)).
    pub async fn collect_orphans(self, client: Client, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.release_orphaned_claims(&client).await {
                tracing::warn!(error = %e, "releasing orphaned claims failed");
            }
        }
    }
}

/// Removes the claim (optimistically locked); `false` when someone else changed the host first.
async fn release(hosts: &Api<ByoHost>, host: &ByoHost) -> Result<bool, ByohError> {
    let mut next = host.clone();
    let uid = next.spec.claim.take().map(|c| c.uid).unwrap_or_default();
    next.spec.bootstrap_secret = None;
    next.annotations_mut()
        .insert(RELEASED_CLAIM_ANNOTATION.into(), uid);
    match hosts
        .replace(&host.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Notes the host in the ByoMachine's status (written back by the SDK with the contract fields).
fn record_host(bm: &mut ByoMachine, host: &ByoHost) {
    let host_ref = Some(HostReference {
        name: host.name_any(),
        namespace: host.namespace().unwrap_or_default(),
    });
    let status = bm.status.get_or_insert_with(Default::default);
    if status.host_ref != host_ref {
        status.host_ref = host_ref;
    }
}

fn provisioned(host: &ByoHost) -> MachineOutcome {
    let mut outcome = MachineOutcome::provisioned(format!("byoh://{}", host.name_any()));
    for a in host
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default()
    {
        outcome = outcome.with_address(a.type_, a.address.clone());
    }
    outcome.into()
}

#[async_trait]
impl InfraMachine for ByohProvider {
    type Resource = ByoMachine;
    type Error = ByohError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<ByoMachine>,
    ) -> Result<MachineOutcome, Failure<ByohError>> {
        let bm = cx.infra_machine.clone();
        let Some(uid) = bm.meta().uid.clone() else {
            return Err(Failure::terminal(
                "InvalidObject",
                "the ByoMachine has no UID",
            ));
        };
        let selector = bm.spec.selector.as_ref();
        selector::validate(selector)
            .map_err(|e| Failure::terminal("InvalidSelector", e.to_string()))?;
        let (hosts, host_ns) = self.hosts(cx);
        let list = hosts
            .list(&ListParams::default())
            .await
            .map_err(ByohError::from)?
            .items;

        // Already ours?
        if let Some(host) = list
            .iter()
            .find(|h| h.spec.claim.as_ref().is_some_and(|c| c.uid == uid))
        {
            record_host(&mut cx.infra_machine, host);
            let status = host.status.clone().unwrap_or_default();
            if status.bootstrapped == Some(true)
                && status.applied_claim_uid.as_deref() == Some(uid.as_str())
            {
                return Ok(provisioned(host));
            }
            return Ok(MachineOutcome::InProgress(self.waiting(
                "WaitingForBootstrap",
                format!("host {} is running the bootstrap data", host.name_any()),
            )));
        }

        // A provisioned machine whose host no longer carries its claim (the host was deleted
        // or released by hand): taking another host would change its providerID.
        if let Some(pid) = bm.spec.contract.provider_id.as_deref() {
            return Err(Failure::terminal(
                "HostLost",
                format!(
                    "no host in namespace {host_ns} is claimed by this machine any more ({pid})"
                ),
            ));
        }
        let Some(secret) = cx.machine.spec.bootstrap.data_secret_name.clone() else {
            return Ok(MachineOutcome::InProgress(self.waiting(
                "WaitingForBootstrapData",
                "the Machine has no bootstrap dataSecretName yet".into(),
            )));
        };
        let mut candidates: Vec<&ByoHost> =
            list.iter().filter(|h| self.free(h, selector)).collect();
        candidates.sort_by_key(|h| h.name_any());
        // Machines start at different hosts (by their UID) so that they do not all race for
        // the first one.
        if !candidates.is_empty() {
            let start = usize::from(crate::hash::sha256(uid.as_bytes())[0]) % candidates.len();
            candidates.rotate_left(start);
        }
        let machine_ns = bm.namespace().unwrap_or_default();
        let claim = HostClaim {
            namespace: machine_ns.clone(),
            name: bm.name_any(),
            uid: uid.clone(),
        };
        let secret = SecretReference {
            name: secret,
            namespace: machine_ns,
        };
        for host in candidates {
            let Some(claimed) = self.claim(&hosts, host, &claim, &secret, selector).await? else {
                continue;
            };
            tracing::info!(host = %claimed.name_any(), "claimed host");
            cx.events
                .normal(
                    "HostClaimed",
                    format!("claimed host {}", claimed.name_any()),
                )
                .await;
            record_host(&mut cx.infra_machine, &claimed);
            return Ok(MachineOutcome::InProgress(self.waiting(
                "WaitingForBootstrap",
                format!("host {} is running the bootstrap data", claimed.name_any()),
            )));
        }

        let released = self.release_orphaned_claims(&cx.client).await?;
        let mut message = format!(
            "no unclaimed, clean host with a recent heartbeat matches the selector in namespace {host_ns}"
        );
        if released > 0 {
            message.push_str(&format!(
                "; released {released} stale claim(s), usable once cleaned"
            ));
        }
        Ok(MachineOutcome::InProgress(
            self.waiting("WaitingForHost", message),
        ))
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<ByoMachine>,
    ) -> Result<DeleteOutcome, Failure<ByohError>> {
        let Some(uid) = cx.infra_machine.meta().uid.clone() else {
            return Ok(DeleteOutcome::Deleted);
        };
        let (hosts, _) = self.hosts(cx);
        let list = hosts
            .list(&ListParams::default())
            .await
            .map_err(ByohError::from)?
            .items;
        if let Some(host) = list
            .iter()
            .find(|h| h.spec.claim.as_ref().is_some_and(|c| c.uid == uid))
        {
            if release(&hosts, host).await? {
                tracing::info!(host = %host.name_any(), "released host");
                cx.events
                    .normal("HostReleased", format!("released host {}", host.name_any()))
                    .await;
            }
            return Ok(DeleteOutcome::InProgress(self.waiting(
                "WaitingForHostCleanup",
                format!("waiting for host {} to clean up", host.name_any()),
            )));
        }
        let released = list.iter().find(|h| {
            h.annotations().get(RELEASED_CLAIM_ANNOTATION) == Some(&uid)
                || h.status.as_ref().and_then(|s| s.applied_claim_uid.as_ref()) == Some(&uid)
        });
        match released {
            Some(host) if !host.clean() && self.alive(host) => {
                Ok(DeleteOutcome::InProgress(self.waiting(
                    "WaitingForHostCleanup",
                    format!("waiting for host {} to clean up", host.name_any()),
                )))
            }
            Some(host) if !host.clean() => {
                tracing::warn!(host = %host.name_any(), "host released but its agent is silent; not waiting for its cleanup");
                Ok(DeleteOutcome::Deleted)
            }
            // Cleaned, gone, or never claimed.
            _ => Ok(DeleteOutcome::Deleted),
        }
    }
}

#[async_trait]
impl InfraCluster for ByohProvider {
    type Resource = ByoCluster;
    type Error = ByohError;

    async fn reconcile(
        &self,
        cx: &mut ClusterContext<ByoCluster>,
    ) -> Result<ClusterOutcome, Failure<ByohError>> {
        let endpoint = cx
            .infra_cluster
            .spec
            .contract
            .control_plane_endpoint
            .as_ref();
        let (host, port) = match endpoint.and_then(|e| e.host.clone().filter(|h| !h.is_empty())) {
            Some(host) => (
                host,
                endpoint
                    .and_then(|e| e.port)
                    .filter(|p| *p > 0)
                    .unwrap_or(DEFAULT_ENDPOINT.1),
            ),
            None => (DEFAULT_ENDPOINT.0.to_owned(), DEFAULT_ENDPOINT.1),
        };
        Ok(ClusterOutcome::provisioned()
            .with_endpoint(host, port)
            .into())
    }

    async fn delete(
        &self,
        _cx: &mut ClusterContext<ByoCluster>,
    ) -> Result<DeleteOutcome, Failure<ByohError>> {
        Ok(DeleteOutcome::Deleted)
    }
}
