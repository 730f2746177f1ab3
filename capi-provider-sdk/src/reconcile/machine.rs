//! The generated InfraMachine reconciler: every contract step as a named function.
//!
//! Order (capi-contract.md 3.4, DESIGN.md): owner Machine → Cluster → pause → delete →
//! finalizer → InfraCluster → cluster infrastructure provisioned → bootstrap data (workers wait
//! for the control plane) → the author's `reconcile` → contract fields and conditions written
//! through the patch helper. Each wait or skip sets the Ready condition's reason and logs a line.

use std::sync::Arc;

use capi_core::v1beta2::{Cluster, Machine};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{ReconcileError, Shared, StepResult, conditions, finalizers, lookups, stand_ins};
use crate::context::{EventPublisher, MachineContext};
use crate::outcome::{DeleteOutcome, Failure, MachineOutcome};
use crate::patch::PatchHelper;
use crate::provider::InfraMachine;
use crate::resource::InfraMachineResource;
use capi_core::bootstrap::BootstrapData;
use capi_core::conditions::ConditionSeverity;

/// Reconciles one InfraMachine: runs the steps on a copy, then writes what changed.
pub(crate) async fn reconcile<P: InfraMachine>(
    obj: Arc<P::Resource>,
    shared: Arc<Shared<P>>,
) -> Result<Action, ReconcileError> {
    let key = crate::controller::key_of(obj.as_ref());
    if let Some(action) = super::not_now(&shared, &key, obj.as_ref(), Some(&shared.machines))? {
        return Ok(action);
    }
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<P::Resource> = Api::namespaced(shared.client.clone(), &ns);
    let helper = PatchHelper::new(&*obj)?;
    let mut next = (*obj).clone();
    let result = run_steps(&shared, &obj, &mut next).await;
    let summary = helper.patch(&api, &next, &shared.options.patch).await;
    super::written(&shared, &key, obj.as_ref(), &next, summary)?;
    result
}

async fn run_steps<P: InfraMachine>(
    shared: &Shared<P>,
    obj: &Arc<P::Resource>,
    next: &mut P::Resource,
) -> StepResult {
    let generation = obj.meta().generation;
    let deleting = obj.meta().deletion_timestamp.is_some();

    // Our finalizer is only added once the owner exists: with it, infrastructure may exist
    // and `delete` must run even when the Machine or Cluster went first (their namespace is
    // being deleted, say). Without it, nothing was created.
    let finalized = finalizers::has(obj.meta(), &shared.options.finalizer);
    let machine = match owner_machine(shared, obj.as_ref()) {
        Some(m) => m,
        None if deleting && finalized => stand_ins::machine(obj.meta()),
        None if deleting => return Ok(Action::await_change()),
        None => {
            return wait(
                shared,
                next,
                generation,
                "WaitingForOwner",
                "waiting for the Machine controller to set an owner reference",
            );
        }
    };

    let cluster = match cluster_of(shared, &machine) {
        Some(c) => c,
        None if deleting && finalized => stand_ins::cluster(&machine.spec.cluster_name, obj.meta()),
        None if deleting => return Ok(Action::await_change()),
        None => {
            return wait(
                shared,
                next,
                generation,
                "WaitingForCluster",
                "waiting for the Machine's Cluster",
            );
        }
    };

    if let Some(action) = pause(shared, obj.as_ref(), next, &cluster, generation) {
        return Ok(action);
    }

    if deleting {
        return delete(shared, obj, next, machine, cluster, generation).await;
    }

    if !finalized {
        // Persist the finalizer before anything can be created, as CAPI's
        // util/finalizers.EnsureFinalizer does: a deletion racing this first reconcile would
        // otherwise remove the object while the provider creates its infrastructure. Our own
        // write brings the object back. Only the finalizer goes out (one write, no status
        // request): the conditions follow with the provisioning result.
        *next = (**obj).clone();
        finalizers::add(next.meta_mut(), &shared.options.finalizer);
        return Ok(Action::await_change());
    }

    let infra_cluster = match infra_cluster(shared, &cluster).await? {
        InfraClusterLookup::Found(ic) => Some(*ic),
        InfraClusterLookup::NotReferenced => None,
        InfraClusterLookup::Missing => {
            return wait(
                shared,
                next,
                generation,
                "WaitingForInfraCluster",
                "waiting for the Cluster's infrastructure object",
            );
        }
    };

    let already_provisioned = obj.contract_status().is_some_and(|s| s.provisioned());
    if !already_provisioned && !cluster_infrastructure_provisioned(&cluster) {
        return wait(
            shared,
            next,
            generation,
            "WaitingForClusterInfrastructureReady",
            "waiting for the Cluster's infrastructure to be provisioned",
        );
    }

    let bootstrap = match bootstrap_data(shared, &machine, &cluster).await? {
        BootstrapLookup::Ready(data) => data,
        BootstrapLookup::Wait(reason, message) => {
            return wait(shared, next, generation, reason, message);
        }
    };

    let mut cx = MachineContext {
        infra_machine: next.clone(),
        machine: Arc::new(machine),
        cluster: Arc::new(cluster),
        infra_cluster: infra_cluster.map(Arc::new),
        bootstrap: Some(bootstrap),
        client: shared.client.clone(),
        events: events_for(shared, obj.as_ref()),
    };
    let outcome = shared.provider.reconcile(&mut cx).await;
    // The author's changes to their object (an instance ID) go out with the contract fields.
    std::mem::swap(next, &mut cx.infra_machine);
    apply_outcome(shared, &cx, next, generation, outcome).await
}

fn wait<P: InfraMachine>(
    shared: &Shared<P>,
    next: &mut P::Resource,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) -> StepResult {
    tracing::info!(reason, "{message}");
    let provisioned = next.contract_status().is_some_and(|s| s.provisioned());
    // A provisioned machine stays Ready while core catches up; only new ones report the wait.
    if !provisioned {
        conditions::set_ready(
            next.contract_status_mut(),
            false,
            reason,
            message,
            ConditionSeverity::Info,
            generation,
        );
        mirror_v1beta1(shared, next);
    }
    Ok(Action::await_change())
}

/// The owner Machine (group `cluster.x-k8s.io`, any version) from the informer cache.
fn owner_machine<P: InfraMachine>(shared: &Shared<P>, obj: &P::Resource) -> Option<Machine> {
    let owner = capi_core::owner::owner_ref(obj.meta(), capi_core::owner::Owner::MACHINE)?;
    let ns = obj.namespace()?;
    shared
        .machines
        .get(&ObjectRef::new(&owner.name).within(&ns))
        .map(|m| m.to_machine())
}

/// The Machine's Cluster, by `spec.clusterName` (the cluster-name label as a fallback).
fn cluster_of<P: InfraMachine>(shared: &Shared<P>, machine: &Machine) -> Option<Cluster> {
    let ns = machine.namespace()?;
    let name = Some(machine.spec.cluster_name.as_str())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            machine
                .labels()
                .get(capi_core::labels::CLUSTER_NAME)
                .map(String::as_str)
        })?;
    shared
        .clusters
        .get(&ObjectRef::new(name).within(&ns))
        .map(|c| (*c).clone())
}

/// Pause: `Cluster.spec.paused` or the paused annotation. Sets the Paused condition either way;
/// `Some` means stop here (also during deletion).
fn pause<P: InfraMachine>(
    shared: &Shared<P>,
    obj: &P::Resource,
    next: &mut P::Resource,
    cluster: &Cluster,
    generation: Option<i64>,
) -> Option<Action> {
    let mut causes = Vec::new();
    if cluster.spec.paused == Some(true) {
        causes.push("Cluster spec.paused is set to true".to_owned());
    }
    if capi_core::labels::has_paused_annotation(obj.meta()) {
        causes.push(format!(
            "{} has the cluster.x-k8s.io/paused annotation",
            P::Resource::kind(&())
        ));
    }
    if causes.is_empty() {
        conditions::set_paused(next.contract_status_mut(), None, generation);
        return None;
    }
    let message = causes.join(", ");
    tracing::info!(reason = "Paused", "{message}: skipping");
    conditions::set_paused(next.contract_status_mut(), Some(&message), generation);
    mirror_v1beta1(shared, next);
    Some(Action::await_change())
}

async fn delete<P: InfraMachine>(
    shared: &Shared<P>,
    obj: &Arc<P::Resource>,
    next: &mut P::Resource,
    machine: Machine,
    cluster: Cluster,
    generation: Option<i64>,
) -> StepResult {
    if !finalizers::has(obj.meta(), &shared.options.finalizer) {
        return Ok(Action::await_change());
    }
    let mut cx = MachineContext {
        infra_machine: next.clone(),
        machine: Arc::new(machine),
        cluster: Arc::new(cluster),
        infra_cluster: None,
        bootstrap: None,
        client: shared.client.clone(),
        events: events_for(shared, obj.as_ref()),
    };
    let outcome = shared.provider.delete(&mut cx).await;
    // Kept unless the deletion is done (then only the finalizer changes, below).
    *next = cx.infra_machine;
    match outcome {
        Ok(DeleteOutcome::Deleted) => {
            tracing::info!("infrastructure deleted, removing finalizer");
            // Only the finalizer changes: the object may vanish with this write.
            *next = (**obj).clone();
            finalizers::remove(next.meta_mut(), &shared.options.finalizer);
            Ok(Action::await_change())
        }
        Ok(DeleteOutcome::InProgress(p)) => {
            tracing::info!(reason = %p.reason, "deletion in progress");
            let message = p.message.clone().unwrap_or_default();
            conditions::set_ready(
                next.contract_status_mut(),
                false,
                &p.reason,
                &message,
                ConditionSeverity::Info,
                generation,
            );
            mirror_v1beta1(shared, next);
            Ok(Action::requeue(p.requeue_after))
        }
        Err(Failure::Terminal { reason, message }) => {
            tracing::warn!(reason, message, "deletion failed terminally");
            conditions::set_ready(
                next.contract_status_mut(),
                false,
                &reason,
                &message,
                ConditionSeverity::Error,
                generation,
            );
            mirror_v1beta1(shared, next);
            Ok(Action::await_change())
        }
        Err(Failure::Transient(e)) => Err(ReconcileError::Provider(Box::new(e))),
    }
}

enum InfraClusterLookup {
    Found(Box<DynamicObject>),
    NotReferenced,
    Missing,
}

async fn infra_cluster<P: InfraMachine>(
    shared: &Shared<P>,
    cluster: &Cluster,
) -> Result<InfraClusterLookup, ReconcileError> {
    let Some(reference) = cluster.spec.infrastructure_ref.as_ref() else {
        return Ok(InfraClusterLookup::NotReferenced);
    };
    let ns = cluster.namespace().unwrap_or_default();
    match lookups::get_referenced(
        &shared.client,
        &shared.versions,
        &reference.api_group,
        &reference.kind,
        &reference.name,
        &ns,
    )
    .await?
    {
        Some(obj) => Ok(InfraClusterLookup::Found(Box::new(obj))),
        None => Ok(InfraClusterLookup::Missing),
    }
}

fn cluster_infrastructure_provisioned(cluster: &Cluster) -> bool {
    cluster
        .status
        .as_ref()
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.infrastructure_provisioned)
        == Some(true)
}

fn control_plane_initialized(cluster: &Cluster) -> bool {
    let status = cluster.status.as_ref();
    status
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.control_plane_initialized)
        == Some(true)
        || status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "ControlPlaneInitialized" && c.status == "True")
            })
}

enum BootstrapLookup {
    Ready(BootstrapData),
    Wait(&'static str, &'static str),
}

/// Bootstrap data from `Machine.spec.bootstrap.dataSecretName`; workers first wait for the
/// control plane to be initialized.
async fn bootstrap_data<P: InfraMachine>(
    shared: &Shared<P>,
    machine: &Machine,
    cluster: &Cluster,
) -> Result<BootstrapLookup, ReconcileError> {
    let Some(secret_name) = machine.spec.bootstrap.data_secret_name.as_deref() else {
        if !capi_core::labels::is_control_plane_machine(&machine.metadata)
            && !control_plane_initialized(cluster)
        {
            return Ok(BootstrapLookup::Wait(
                "WaitingForControlPlaneInitialized",
                "waiting for the control plane to be initialized",
            ));
        }
        return Ok(BootstrapLookup::Wait(
            "WaitingForBootstrapData",
            "waiting for the bootstrap data secret",
        ));
    };
    let ns = machine.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(shared.client.clone(), &ns);
    match secrets.get_opt(secret_name).await? {
        None => Ok(BootstrapLookup::Wait(
            "WaitingForBootstrapData",
            "the bootstrap data secret does not exist yet",
        )),
        Some(secret) => Ok(BootstrapLookup::Ready(
            BootstrapData::from_secret(&secret)
                .map_err(|e| ReconcileError::Bootstrap(e.to_string()))?,
        )),
    }
}

/// Writes the author's outcome into the contract fields and conditions.
async fn apply_outcome<P: InfraMachine>(
    shared: &Shared<P>,
    cx: &MachineContext<P::Resource>,
    next: &mut P::Resource,
    generation: Option<i64>,
    outcome: Result<MachineOutcome, Failure<P::Error>>,
) -> StepResult {
    match outcome {
        Ok(MachineOutcome::Provisioned(p)) => {
            let was = next.contract_status().is_some_and(|s| s.provisioned());
            next.contract_spec_mut().provider_id = Some(p.provider_id.clone());
            let placed = p
                .failure_domain
                .clone()
                .or_else(|| cx.machine.spec.failure_domain.clone());
            let status = next.contract_status_mut();
            status.set_provisioned();
            status.set_addresses(p.addresses);
            // Not reported means not interruptible: a `true` goes, an absent field stays absent.
            status.set_interruptible(p.interruptible);
            let in_status = status.set_failure_domain(placed);
            status.set_terminal_failure(None);
            conditions::set_ready(
                status,
                true,
                "Ready",
                "",
                ConditionSeverity::Info,
                generation,
            );
            // The v1beta1 contract has no status.failureDomain: a placement the author
            // reports flows back through spec.failureDomain, which v1beta1 core copies.
            if !in_status && let Some(fd) = p.failure_domain {
                next.contract_spec_mut().failure_domain = Some(fd);
            }
            mirror_v1beta1(shared, next);
            if !was {
                tracing::info!(provider_id = %p.provider_id, "provisioned");
                cx.events
                    .normal(
                        "Provisioned",
                        format!("instance {} is provisioned", p.provider_id),
                    )
                    .await;
            }
            Ok(shared
                .options
                .resync
                .map_or_else(Action::await_change, Action::requeue))
        }
        Ok(MachineOutcome::InProgress(p)) => {
            tracing::info!(reason = %p.reason, requeue_after = ?p.requeue_after, "provisioning in progress");
            let message = p.message.clone().unwrap_or_default();
            conditions::set_ready(
                next.contract_status_mut(),
                false,
                &p.reason,
                &message,
                ConditionSeverity::Info,
                generation,
            );
            mirror_v1beta1(shared, next);
            Ok(Action::requeue(p.requeue_after))
        }
        Err(Failure::Terminal { reason, message }) => {
            tracing::warn!(reason, message, "terminal failure");
            cx.events.warning(&reason, message.clone()).await;
            let status = next.contract_status_mut();
            status.set_terminal_failure(Some((&reason, &message)));
            conditions::set_ready(
                status,
                false,
                &reason,
                &message,
                ConditionSeverity::Error,
                generation,
            );
            mirror_v1beta1(shared, next);
            Ok(Action::await_change())
        }
        Err(Failure::Transient(e)) => Err(ReconcileError::Provider(Box::new(e))),
    }
}

/// With v1beta1 fields on, `status.ready` and a v1beta1 Ready condition follow the v1beta2 ones
/// (a v1beta1-contract status has them natively: nothing to do).
fn mirror_v1beta1<P: InfraMachine>(shared: &Shared<P>, next: &mut P::Resource) {
    if shared.options.v1beta1_fields {
        next.contract_status_mut().mirror_v1beta1_fields();
    }
}

fn events_for<P: InfraMachine>(shared: &Shared<P>, obj: &P::Resource) -> EventPublisher {
    EventPublisher::new(shared.recorder.clone(), obj.object_ref(&()))
}
