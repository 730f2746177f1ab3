//! The generated InfraCluster reconciler (capi-contract.md 2.7).
//!
//! Order: externally managed → owner Cluster → pause → delete → finalizer → the author's
//! `reconcile` → `spec.controlPlaneEndpoint`, failure domains sorted by name, the sticky
//! provisioned flag and conditions, written through the patch helper.

use std::sync::Arc;

use capi_core::v1beta2::Cluster;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{ReconcileError, Shared, StepResult, conditions, finalizers, stand_ins};
use crate::context::{ClusterContext, EventPublisher};
use crate::outcome::{ClusterOutcome, DeleteOutcome, Failure};
use crate::patch::PatchHelper;
use crate::provider::InfraCluster;
use crate::resource::InfraClusterResource;
use capi_core::conditions::ConditionSeverity;

/// Reconciles one InfraCluster.
pub(crate) async fn reconcile<P: InfraCluster>(
    obj: Arc<P::Resource>,
    shared: Arc<Shared<P>>,
) -> Result<Action, ReconcileError> {
    if capi_core::labels::is_externally_managed(obj.meta()) {
        tracing::debug!("externally managed (cluster.x-k8s.io/managed-by): skipping");
        return Ok(Action::await_change());
    }
    let key = crate::controller::key_of(obj.as_ref());
    if let Some(action) = super::not_now(&shared, &key, obj.as_ref(), None)? {
        return Ok(action);
    }
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<P::Resource> = Api::namespaced(shared.client.clone(), &ns);
    let helper = PatchHelper::new(&*obj)?;
    let mut next = (*obj).clone();
    let result = run_steps(&shared, &obj, &mut next).await;
    if shared.options.v1beta1_fields && next.meta().finalizers.is_some() {
        // `status.ready` and v1beta1 conditions beside v1beta2-shaped ones (a v1beta1-contract
        // status has them natively: nothing to do).
        next.contract_status_mut().mirror_v1beta1_fields();
    }
    let summary = helper.patch(&api, &next, &shared.options.patch).await;
    super::written(&shared, &key, obj.as_ref(), &next, summary)?;
    result
}

async fn run_steps<P: InfraCluster>(
    shared: &Shared<P>,
    obj: &Arc<P::Resource>,
    next: &mut P::Resource,
) -> StepResult {
    let generation = obj.meta().generation;
    let deleting = obj.meta().deletion_timestamp.is_some();

    // As for machines: with our finalizer, `delete` runs even when the Cluster went first.
    let finalized = finalizers::has(obj.meta(), &shared.options.finalizer);
    let owner = match owner_cluster(shared, obj.as_ref()) {
        None if deleting && finalized => {
            let name = capi_core::owner::owner_ref(obj.meta(), capi_core::owner::Owner::CLUSTER)
                .map(|o| o.name.clone())
                .unwrap_or_default();
            Some(stand_ins::cluster(&name, obj.meta()))
        }
        owner => owner,
    };
    let Some(cluster) = owner else {
        if deleting {
            return Ok(Action::await_change());
        }
        tracing::info!(
            reason = "WaitingForOwner",
            "waiting for the Cluster controller to set an owner reference"
        );
        if !next.contract_status().is_some_and(|s| s.provisioned()) {
            conditions::set_ready(
                next.contract_status_mut(),
                false,
                "WaitingForOwner",
                "waiting for the Cluster controller to set an owner reference",
                ConditionSeverity::Info,
                generation,
            );
        }
        return Ok(Action::await_change());
    };

    // Pause, also during deletion.
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
    if !causes.is_empty() {
        let message = causes.join(", ");
        tracing::info!(reason = "Paused", "{message}: skipping");
        conditions::set_paused(next.contract_status_mut(), Some(&message), generation);
        return Ok(Action::await_change());
    }
    conditions::set_paused(next.contract_status_mut(), None, generation);

    let mut cx = ClusterContext {
        infra_cluster: next.clone(),
        cluster: Arc::new(cluster),
        client: shared.client.clone(),
        events: EventPublisher::new(shared.recorder.clone(), obj.object_ref(&())),
    };

    if deleting {
        if !finalized {
            return Ok(Action::await_change());
        }
        let outcome = shared.provider.delete(&mut cx).await;
        // Kept unless the deletion is done (then only the finalizer changes, below).
        std::mem::swap(next, &mut cx.infra_cluster);
        return match outcome {
            Ok(DeleteOutcome::Deleted) => {
                tracing::info!("infrastructure deleted, removing finalizer");
                *next = (**obj).clone();
                finalizers::remove(next.meta_mut(), &shared.options.finalizer);
                Ok(Action::await_change())
            }
            Ok(DeleteOutcome::InProgress(p)) => {
                tracing::info!(reason = %p.reason, "deletion in progress");
                conditions::set_ready(
                    next.contract_status_mut(),
                    false,
                    &p.reason,
                    p.message.as_deref().unwrap_or(""),
                    ConditionSeverity::Info,
                    generation,
                );
                Ok(Action::requeue(p.requeue_after))
            }
            Err(Failure::Terminal { reason, message }) => {
                conditions::set_ready(
                    next.contract_status_mut(),
                    false,
                    &reason,
                    &message,
                    ConditionSeverity::Error,
                    generation,
                );
                Ok(Action::await_change())
            }
            Err(Failure::Transient(e)) => Err(ReconcileError::Provider(Box::new(e))),
        };
    }

    if !finalized {
        // The finalizer first, persisted before the provider creates anything (see the
        // machine reconciler), alone in its write.
        *next = (**obj).clone();
        finalizers::add(next.meta_mut(), &shared.options.finalizer);
        return Ok(Action::await_change());
    }
    let outcome = shared.provider.reconcile(&mut cx).await;
    // The author's changes to their object (a network ID) go out with the contract fields.
    std::mem::swap(next, &mut cx.infra_cluster);
    match outcome {
        Ok(ClusterOutcome::Provisioned(p)) => {
            let was = next.contract_status().is_some_and(|s| s.provisioned());
            if let Some(endpoint) = p.control_plane_endpoint {
                // A user-set endpoint is never overwritten.
                let spec = next.contract_spec_mut();
                let user_set = spec
                    .control_plane_endpoint()
                    .is_some_and(|e| e.host.as_deref().is_some_and(|h| !h.is_empty()));
                if !user_set {
                    spec.set_control_plane_endpoint(endpoint);
                }
            }
            let status = next.contract_status_mut();
            // Sorted by name; a v1beta1-contract status keeps them as a map.
            status.set_failure_domains(p.failure_domains);
            status.set_provisioned();
            status.set_terminal_failure(None);
            conditions::set_ready(
                status,
                true,
                "Ready",
                "",
                ConditionSeverity::Info,
                generation,
            );
            if !was {
                tracing::info!("cluster infrastructure provisioned");
                cx.events
                    .normal("Provisioned", "cluster infrastructure is provisioned")
                    .await;
            }
            Ok(shared
                .options
                .resync
                .map_or_else(Action::await_change, Action::requeue))
        }
        Ok(ClusterOutcome::InProgress(p)) => {
            tracing::info!(reason = %p.reason, "provisioning in progress");
            conditions::set_ready(
                next.contract_status_mut(),
                false,
                &p.reason,
                p.message.as_deref().unwrap_or(""),
                ConditionSeverity::Info,
                generation,
            );
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
            Ok(Action::await_change())
        }
        Err(Failure::Transient(e)) => Err(ReconcileError::Provider(Box::new(e))),
    }
}

/// The owner Cluster (group `cluster.x-k8s.io`, any version) from the informer cache.
fn owner_cluster<P: InfraCluster>(shared: &Shared<P>, obj: &P::Resource) -> Option<Cluster> {
    let owner = capi_core::owner::owner_ref(obj.meta(), capi_core::owner::Owner::CLUSTER)?;
    let ns = obj.namespace()?;
    shared
        .clusters
        .get(&ObjectRef::new(&owner.name).within(&ns))
        .map(|c| (*c).clone())
}
