//! The provider: [`InfraCluster`] and [`InfraMachine`] for SimCloud.
//!
//! A SimCloudCluster gets a network and a load balancer (its DNS name becomes the control-plane
//! endpoint) and reports the cloud's zones as failure domains. A SimCloudMachine gets an
//! instance in its Machine's failure domain, booted with the bootstrap data, and reports a
//! providerID (`simcloud://<zone>/<instance-id>`) and addresses. Deletion tears everything down.
//!
//! Nothing leaks, whatever the cloud does, because of three rules:
//!
//! 1. **Intent before action.** The first time a resource is needed, the provider only records
//!    `requestedAt` (a status write) and comes back; the create call is made only once that
//!    record is read back from the API server. So an object without the record never created
//!    anything, and its deletion needs no cloud call.
//! 2. **Idempotent creates.** Every create carries a client token derived from the object's
//!    uid: a retry after a lost answer, a restart or a status loss gets the same resource.
//! 3. **Find before forgetting.** Deleting an object that recorded the intent but not the ID
//!    looks the resource up by tag, and keeps looking until the cloud's consistency window has
//!    passed since the deletion began.

use std::time::Duration;

use capi_provider_sdk::capi_core::contract::fields::MachineAddressType;
use capi_provider_sdk::{
    ClusterContext, ClusterOutcome, DeleteOutcome, Failure, InfraCluster, InfraMachine,
    MachineContext, MachineOutcome, async_trait,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::{CloudResource, SimCloudCluster, SimCloudMachine};
use crate::cloud::{CloudError, InstanceRequest, InstanceState, LoadBalancerState, SimCloud, Tags};

/// Tag on every cloud resource: the uid of the Kubernetes object it belongs to.
pub const OWNER_TAG: &str = "simcloud.capi-rs.dev/owner-uid";
/// Tag on every cloud resource: the CAPI cluster it belongs to.
pub const CLUSTER_TAG: &str = "simcloud.capi-rs.dev/cluster";
/// Port of the control-plane load balancer.
pub const API_SERVER_PORT: i32 = 6443;

/// The provider: one value serves both the cluster and the machine controller.
#[derive(Debug, Clone)]
pub struct SimCloudProvider {
    cloud: SimCloud,
    poll: Duration,
    consistency_grace: Duration,
}

impl SimCloudProvider {
    /// A provider for `cloud`. It polls the cloud every 250 ms while something is changing and
    /// waits for the cloud's consistency delay plus 2 s before deciding a resource whose
    /// creation was requested never came to be.
    pub fn new(cloud: SimCloud) -> Self {
        let consistency_grace = cloud.config().consistency_delay + Duration::from_secs(2);
        Self {
            cloud,
            poll: Duration::from_millis(250),
            consistency_grace,
        }
    }

    /// Sets how often the cloud is asked again while a resource is changing.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The cloud this provider drives.
    pub fn cloud(&self) -> &SimCloud {
        &self.cloud
    }

    fn waiting(&self, reason: &str, message: impl Into<String>) -> MachineOutcome {
        match MachineOutcome::in_progress(reason, self.poll) {
            MachineOutcome::InProgress(p) => MachineOutcome::InProgress(p.with_message(message)),
            other => other,
        }
    }

    /// Whether the consistency window since the deletion began has passed.
    fn grace_over(&self, deletion: Option<&Time>) -> bool {
        let Some(Time(started)) = deletion else {
            return true;
        };
        // deletionTimestamp has second precision: count from the end of that second.
        let grace = SignedDuration::try_from(self.consistency_grace + Duration::from_secs(1))
            .unwrap_or(SignedDuration::MAX);
        Timestamp::now().duration_since(*started) >= grace
    }
}

/// A cloud error as the SDK sees it: retryable ones are transient, the rest terminal.
fn classify(e: CloudError) -> Failure<CloudError> {
    if e.is_retryable() {
        Failure::Transient(e)
    } else {
        let reason = match e {
            CloudError::InvalidZone(_) => "InvalidZone",
            CloudError::InvalidSize(_) => "InvalidSize",
            _ => "CloudRejected",
        };
        Failure::terminal(reason, e.to_string())
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn tags(owner_uid: &str, cluster: &str, role: &str) -> Tags {
    Tags::from([
        (OWNER_TAG.to_owned(), owner_uid.to_owned()),
        (CLUSTER_TAG.to_owned(), cluster.to_owned()),
        ("simcloud.capi-rs.dev/role".to_owned(), role.to_owned()),
    ])
}

/// `simcloud://<zone>/<instance-id>` → the instance ID.
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<&str> {
    provider_id
        .strip_prefix("simcloud://")?
        .rsplit_once('/')
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
}

/// The network ID a SimCloudCluster recorded (`status.network.id`), read from the
/// InfraCluster the SDK hands over as JSON.
fn network_of(cx: &MachineContext<SimCloudMachine>) -> Option<String> {
    cx.infra_cluster.as_ref()?.data["status"]["network"]["id"]
        .as_str()
        .map(str::to_owned)
}

/// A zone for a machine CAPI placed in no failure domain: the same one for the same machine
/// every time, and machines spread over all zones.
fn spread(zones: &[String], uid: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    let n = zones.len().max(1) as u64;
    zones
        .get((h.finish() % n) as usize)
        .cloned()
        .unwrap_or_default()
}

fn state_name(state: InstanceState) -> String {
    format!("{state:?}")
}

#[async_trait]
impl InfraMachine for SimCloudProvider {
    type Resource = SimCloudMachine;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<SimCloudMachine>,
    ) -> Result<MachineOutcome, Failure<CloudError>> {
        let uid = cx.infra_machine.uid().unwrap_or_default();
        let name = cx.infra_machine.name_any();
        let cluster = cx.cluster.name_any();
        let zone = cx
            .failure_domain()
            .map(str::to_owned)
            .unwrap_or_else(|| spread(&self.cloud.config().zones, &uid));
        let network = network_of(cx);
        let size = cx.infra_machine.spec.size;
        let known_id = cx
            .infra_machine
            .spec
            .contract
            .provider_id
            .as_deref()
            .and_then(instance_id_from_provider_id)
            .map(str::to_owned);
        let user_data = cx
            .bootstrap
            .as_ref()
            .map(|b| b.value.clone())
            .unwrap_or_default();
        let status = cx.infra_machine.status.get_or_insert_with(Default::default);

        // After a status loss the providerID still names the instance.
        if status.instance_id.is_none() {
            status.instance_id = known_id;
        }
        let id = match status.instance_id.clone() {
            Some(id) => id,
            None if status.launch_requested_at.is_none() => {
                // Rule 1: record the intent; launch once it is stored.
                status.launch_requested_at = Some(now());
                return Ok(self.waiting("InstanceLaunching", "recording the launch request"));
            }
            None => {
                let Some(network_id) = network else {
                    return Ok(self.waiting(
                        "WaitingForNetwork",
                        "the SimCloudCluster has no network yet",
                    ));
                };
                let request = InstanceRequest {
                    name: name.clone(),
                    zone: zone.clone(),
                    network_id,
                    size: size.as_str().to_owned(),
                    user_data,
                    tags: tags(&uid, &cluster, "instance"),
                };
                match self.cloud.run_instance(&uid, request).await {
                    Ok(instance) => {
                        tracing::info!(instance = %instance.id, zone = %instance.zone, "instance launched");
                        cx.events
                            .normal("InstanceLaunched", format!("launched {}", instance.id))
                            .await;
                        status.instance_id = Some(instance.id.clone());
                        status.instance_state = Some(state_name(instance.state));
                        instance.id
                    }
                    Err(CloudError::QuotaExceeded { quota }) => {
                        return Ok(self.waiting(
                            "WaitingForQuota",
                            format!("the cloud's quota of {quota} instances is used up"),
                        ));
                    }
                    Err(e) => return Err(classify(e)),
                }
            }
        };

        let Some(instance) = self.cloud.describe_instance(&id).await.map_err(classify)? else {
            return Ok(self.waiting(
                "WaitingForInstance",
                format!("the cloud does not list {id} yet"),
            ));
        };
        status.instance_state = Some(state_name(instance.state));
        match instance.state {
            InstanceState::Pending => Ok(self.waiting(
                "InstanceStarting",
                format!("{id} is booting in {}", instance.zone),
            )),
            InstanceState::Running => Ok(MachineOutcome::provisioned(format!(
                "simcloud://{}/{}",
                instance.zone, instance.id
            ))
            .with_internal_ip(instance.private_ip)
            .with_address(
                MachineAddressType::InternalDNS,
                format!("{}.{}.simcloud.internal", instance.name, instance.zone),
            )
            .in_failure_domain(instance.zone)
            .into()),
            InstanceState::ShuttingDown | InstanceState::Terminated => Err(Failure::terminal(
                "InstanceTerminated",
                format!("instance {id} was terminated outside of Cluster API"),
            )),
        }
    }

    async fn delete(
        &self,
        cx: &mut MachineContext<SimCloudMachine>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        let uid = cx.infra_machine.uid().unwrap_or_default();
        let deletion = cx.infra_machine.metadata.deletion_timestamp.clone();
        let known_id = cx
            .infra_machine
            .spec
            .contract
            .provider_id
            .as_deref()
            .and_then(instance_id_from_provider_id)
            .map(str::to_owned);
        let status = cx.infra_machine.status.get_or_insert_with(Default::default);
        let ids = match status.instance_id.clone().or(known_id) {
            Some(id) => vec![id],
            // Rule 1: without a stored intent nothing was ever launched.
            None if status.launch_requested_at.is_none() => return Ok(DeleteOutcome::Deleted),
            None => {
                // Rule 3: the launch's answer may have been lost; find it by tag.
                let found = self
                    .cloud
                    .find_instances(OWNER_TAG, &uid)
                    .await
                    .map_err(classify)?;
                if found.is_empty() {
                    if self.grace_over(deletion.as_ref()) {
                        return Ok(DeleteOutcome::Deleted);
                    }
                    return Ok(DeleteOutcome::in_progress(
                        "WaitingForCloudConsistency",
                        self.poll,
                    ));
                }
                found.into_iter().map(|i| i.id).collect()
            }
        };
        let mut remaining = 0;
        for id in ids {
            match self.cloud.describe_instance(&id).await.map_err(classify)? {
                Some(i) if i.state == InstanceState::Terminated => continue,
                Some(i) if i.state == InstanceState::ShuttingDown => {}
                // Running, Pending, or not visible yet: terminating is safe in every case.
                _ => match self.cloud.terminate_instance(&id).await {
                    Ok(()) => {
                        tracing::info!(instance = %id, "terminating instance");
                    }
                    Err(CloudError::NotFound { .. }) => continue,
                    Err(e) => return Err(classify(e)),
                },
            }
            status.instance_state = Some(state_name(InstanceState::ShuttingDown));
            remaining += 1;
        }
        if remaining == 0 {
            status.instance_state = Some(state_name(InstanceState::Terminated));
            return Ok(DeleteOutcome::Deleted);
        }
        Ok(DeleteOutcome::in_progress("InstanceTerminating", self.poll))
    }
}

fn cluster_waiting(reason: &str, poll: Duration) -> ClusterOutcome {
    ClusterOutcome::in_progress(reason, poll)
}

/// What one teardown step found.
enum Teardown {
    Gone,
    InProgress(&'static str),
}

impl SimCloudProvider {
    /// Rule 3 for a cluster resource: the recorded ID, else the ones found by tag.
    async fn ids_to_delete<F, Fut>(
        &self,
        record: Option<&CloudResource>,
        deletion: Option<&Time>,
        find: F,
    ) -> Result<Result<Vec<String>, Teardown>, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<String>, CloudError>>,
    {
        let Some(record) = record.filter(|r| r.requested_at.is_some() || r.id.is_some()) else {
            return Ok(Err(Teardown::Gone));
        };
        if let Some(id) = &record.id {
            return Ok(Ok(vec![id.clone()]));
        }
        let found = find().await?;
        if found.is_empty() {
            return Ok(Err(if self.grace_over(deletion) {
                Teardown::Gone
            } else {
                Teardown::InProgress("WaitingForCloudConsistency")
            }));
        }
        Ok(Ok(found))
    }

    /// Tears down one cluster resource: the IDs to delete (rule 3), then each deleted.
    async fn tear_down<Find, FindFut, Delete, DeleteFut>(
        &self,
        record: Option<&CloudResource>,
        deletion: Option<&Time>,
        deleting: &'static str,
        find: Find,
        delete: Delete,
    ) -> Result<Teardown, CloudError>
    where
        Find: FnOnce() -> FindFut,
        FindFut: Future<Output = Result<Vec<String>, CloudError>>,
        Delete: Fn(String) -> DeleteFut,
        DeleteFut: Future<Output = Result<(), CloudError>>,
    {
        match self.ids_to_delete(record, deletion, find).await? {
            Ok(ids) => self.delete_each(ids, deleting, delete).await,
            Err(t) => Ok(t),
        }
    }

    /// Asks the cloud to delete each resource until every delete answers NotFound (strongly
    /// consistent: then it is gone). A resource still in use (instances of machines still
    /// terminating in a network) is waited for.
    async fn delete_each<F, Fut>(
        &self,
        ids: Vec<String>,
        deleting: &'static str,
        delete: F,
    ) -> Result<Teardown, CloudError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<(), CloudError>>,
    {
        let mut remaining = false;
        for id in ids {
            match delete(id).await {
                Ok(()) => remaining = true,
                Err(CloudError::NotFound { .. }) => {}
                Err(CloudError::DependencyViolation { .. }) => {
                    return Ok(Teardown::InProgress("WaitingForDependents"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(if remaining {
            Teardown::InProgress(deleting)
        } else {
            Teardown::Gone
        })
    }
}

#[async_trait]
impl InfraCluster for SimCloudProvider {
    type Resource = SimCloudCluster;
    type Error = CloudError;

    async fn reconcile(
        &self,
        cx: &mut ClusterContext<SimCloudCluster>,
    ) -> Result<ClusterOutcome, Failure<CloudError>> {
        let uid = cx.infra_cluster.uid().unwrap_or_default();
        let cluster = cx.cluster.name_any();
        let cidr = cx
            .infra_cluster
            .spec
            .network_cidr
            .clone()
            .unwrap_or_else(|| "10.0.0.0/16".into());
        let status = cx.infra_cluster.status.get_or_insert_with(Default::default);
        let network = status.network.get_or_insert_with(Default::default);
        let lb = status.load_balancer.get_or_insert_with(Default::default);
        if network.requested_at.is_none() || lb.requested_at.is_none() {
            // Rule 1: record the intent for both; create once it is stored.
            network.requested_at.get_or_insert_with(now);
            lb.requested_at.get_or_insert_with(now);
            return Ok(cluster_waiting("NetworkCreating", Duration::ZERO));
        }

        let network_id = match network.id.clone() {
            Some(id) => id,
            None => {
                let n = self
                    .cloud
                    .create_network(
                        &format!("{uid}/network"),
                        &cluster,
                        &cidr,
                        tags(&uid, &cluster, "network"),
                    )
                    .await
                    .map_err(classify)?;
                tracing::info!(network = %n.id, "network created");
                network.id = Some(n.id.clone());
                n.id
            }
        };
        if self
            .cloud
            .describe_network(&network_id)
            .await
            .map_err(classify)?
            .is_none()
        {
            return Ok(cluster_waiting("WaitingForNetwork", self.poll));
        }

        let lb_id = match lb.id.clone() {
            Some(id) => id,
            None => {
                let l = self
                    .cloud
                    .create_load_balancer(
                        &format!("{uid}/load-balancer"),
                        &cluster,
                        &network_id,
                        API_SERVER_PORT,
                        tags(&uid, &cluster, "load-balancer"),
                    )
                    .await
                    .map_err(classify)?;
                tracing::info!(load_balancer = %l.id, "load balancer created");
                lb.id = Some(l.id.clone());
                l.id
            }
        };
        let endpoint = match self
            .cloud
            .describe_load_balancer(&lb_id)
            .await
            .map_err(classify)?
        {
            Some(l) if l.state == LoadBalancerState::Active => (l.dns_name, l.port),
            _ => return Ok(cluster_waiting("LoadBalancerProvisioning", self.poll)),
        };

        let zones = self.cloud.zones().await.map_err(classify)?;
        Ok(zones
            .into_iter()
            .fold(
                ClusterOutcome::provisioned().with_endpoint(endpoint.0, endpoint.1),
                |p, zone| p.with_failure_domain(zone, true),
            )
            .into())
    }

    async fn delete(
        &self,
        cx: &mut ClusterContext<SimCloudCluster>,
    ) -> Result<DeleteOutcome, Failure<CloudError>> {
        let uid = cx.infra_cluster.uid().unwrap_or_default();
        let deletion = cx.infra_cluster.metadata.deletion_timestamp.clone();
        let status = cx.infra_cluster.status.clone().unwrap_or_default();
        // The load balancer lives in the network: it goes first.
        let load_balancer = self
            .tear_down(
                status.load_balancer.as_ref(),
                deletion.as_ref(),
                "LoadBalancerDeleting",
                || async {
                    let found = self.cloud.find_load_balancers(OWNER_TAG, &uid).await?;
                    Ok(found.into_iter().map(|l| l.id).collect())
                },
                |id| async move { self.cloud.delete_load_balancer(&id).await },
            )
            .await
            .map_err(classify)?;
        if let Teardown::InProgress(reason) = load_balancer {
            return Ok(DeleteOutcome::in_progress(reason, self.poll));
        }
        let network = self
            .tear_down(
                status.network.as_ref(),
                deletion.as_ref(),
                "NetworkDeleting",
                || async {
                    let found = self.cloud.find_networks(OWNER_TAG, &uid).await?;
                    Ok(found.into_iter().map(|n| n.id).collect())
                },
                |id| async move { self.cloud.delete_network(&id).await },
            )
            .await
            .map_err(classify)?;
        Ok(match network {
            Teardown::InProgress(reason) => DeleteOutcome::in_progress(reason, self.poll),
            Teardown::Gone => DeleteOutcome::Deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_name_their_instance() {
        assert_eq!(
            instance_id_from_provider_id("simcloud://zone-a/i-0000002a"),
            Some("i-0000002a")
        );
        assert_eq!(instance_id_from_provider_id("simcloud://zone-a/"), None);
        assert_eq!(instance_id_from_provider_id("aws:///i-1"), None);
    }
}
