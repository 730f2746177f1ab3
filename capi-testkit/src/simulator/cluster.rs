//! The core Cluster controller, as far as an infrastructure provider can observe it.

use std::sync::Arc;

use capi_core::contract::InfraClusterView;
use capi_core::v1beta2::{
    Cluster, ClusterInitializationStatus, ClusterStatus, ClusterStatusPhase, Machine,
    MachineDeployment, MachineSet,
};
use futures::Future;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::{
    CLUSTER_FINALIZER, CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, Ctx, SimError, core_owner, drain,
    finalizers_patch, has_finalizer, retry, set_condition,
};

pub(crate) async fn run(ctx: Arc<Ctx>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<Cluster> = scoped(&ctx);
    let machines: Api<Machine> = scoped(&ctx);
    let stream = Controller::new(api, watcher::Config::default())
        // Machines change the control-plane-initialized signal and gate deletion.
        .watches(machines, watcher::Config::default(), |m: Machine| {
            let ns = m.namespace().unwrap_or_default();
            m.labels()
                .get(CLUSTER_NAME_LABEL)
                .map(|c| ObjectRef::<Cluster>::new(c).within(&ns))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, retry, ctx);
    drain("cluster", stream).await;
}

pub(crate) fn scoped<K>(ctx: &Ctx) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match &ctx.options.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = cluster.namespace().unwrap_or_default();
    let api: Api<Cluster> = Api::namespaced(ctx.client.clone(), &ns);
    let name = cluster.name_any();
    if cluster.meta().deletion_timestamp.is_some() {
        return delete(&ctx, &api, &cluster).await;
    }
    if !has_finalizer(cluster.meta(), CLUSTER_FINALIZER) {
        let mut f = cluster.finalizers().to_vec();
        f.push(CLUSTER_FINALIZER.into());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(finalizers_patch(cluster.meta(), f)),
        )
        .await?;
        return Ok(Action::await_change());
    }

    let before = cluster.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let generation = cluster.meta().generation;
    let mut requeue = false;
    let mut spec_patch = None;

    match &cluster.spec.infrastructure_ref {
        None => init(&mut status).infrastructure_provisioned = Some(true),
        Some(r) => match ctx
            .kinds
            .get(&ctx.client, &r.api_group, &r.kind, &ns, &r.name)
            .await?
        {
            None => {
                set_condition(
                    &mut status.conditions,
                    "InfrastructureReady",
                    "False",
                    "ObjectDoesNotExist",
                    &format!("{} does not exist", r.kind),
                    generation,
                );
                requeue = true;
            }
            Some((infra, kind)) => {
                adopt(&ctx, &cluster, &infra, &kind).await?;
                let json = serde_json::to_value(&infra)?;
                let view = InfraClusterView::new(&json, kind.contract);
                if let Some(f) = view.failure()? {
                    let dep = status
                        .deprecated
                        .get_or_insert_with(Default::default)
                        .v1beta1
                        .get_or_insert_with(Default::default);
                    dep.failure_reason = f.reason;
                    dep.failure_message = f.message;
                }
                let provisioned = view.provisioned()?;
                super::mirror_infrastructure_ready(
                    &mut status.conditions,
                    view.ready_condition(),
                    provisioned,
                    &kind,
                    generation,
                );
                if provisioned && infra.metadata.deletion_timestamp.is_none() {
                    let endpoint_valid =
                        cluster
                            .spec
                            .control_plane_endpoint
                            .as_ref()
                            .is_some_and(|e| {
                                e.host.as_deref().is_some_and(|h| !h.is_empty())
                                    && e.port.is_some_and(|p| p != 0)
                            });
                    if !endpoint_valid && let Some(ep) = view.control_plane_endpoint()? {
                        spec_patch =
                            Some(serde_json::json!({"spec": {"controlPlaneEndpoint": ep}}));
                    }
                    let fds = view.failure_domains()?;
                    status.failure_domains = (!fds.is_empty()).then_some(fds);
                    init(&mut status).infrastructure_provisioned = Some(true);
                } else if !provisioned {
                    requeue = true;
                }
            }
        },
    }

    // The control-plane stand-in: initialized once a control-plane Machine is provisioned.
    if ctx.options.control_plane
        && status
            .initialization
            .as_ref()
            .and_then(|i| i.control_plane_initialized)
            != Some(true)
    {
        let machines: Api<Machine> = Api::namespaced(ctx.client.clone(), &ns);
        let lp = ListParams::default().labels(&format!(
            "{CLUSTER_NAME_LABEL}={name},{CONTROL_PLANE_LABEL}"
        ));
        let cp_ready = machines.list(&lp).await?.items.iter().any(|m| {
            m.status
                .as_ref()
                .and_then(|s| s.initialization.as_ref())
                .and_then(|i| i.infrastructure_provisioned)
                == Some(true)
        });
        if cp_ready {
            init(&mut status).control_plane_initialized = Some(true);
            set_condition(
                &mut status.conditions,
                "ControlPlaneInitialized",
                "True",
                "Initialized",
                "",
                generation,
            );
        } else {
            set_condition(
                &mut status.conditions,
                "ControlPlaneInitialized",
                "False",
                "NotInitialized",
                "waiting for a control-plane Machine",
                generation,
            );
        }
    }

    let infra = status
        .initialization
        .as_ref()
        .and_then(|i| i.infrastructure_provisioned)
        == Some(true);
    status.phase = Some(if infra {
        ClusterStatusPhase::Provisioned
    } else {
        ClusterStatusPhase::Provisioning
    });
    status.observed_generation = generation;

    if let Some(p) = spec_patch {
        api.patch(&name, &PatchParams::default(), &Patch::Merge(p))
            .await?;
    }
    if status != before {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": status})),
        )
        .await?;
    }
    Ok(if requeue {
        Action::requeue(ctx.options.poll)
    } else {
        Action::await_change()
    })
}

fn init(status: &mut ClusterStatus) -> &mut ClusterInitializationStatus {
    status.initialization.get_or_insert_with(Default::default)
}

/// Owner reference (controller only for topology clusters, as since v1.13) and cluster-name label.
async fn adopt(
    ctx: &Ctx,
    cluster: &Cluster,
    infra: &DynamicObject,
    kind: &super::ProviderKind,
) -> Result<(), SimError> {
    let uid = cluster.uid().unwrap_or_default();
    let name = cluster.name_any();
    let owned = infra.owner_references().iter().any(|o| o.uid == uid);
    let labelled = infra.labels().get(CLUSTER_NAME_LABEL) == Some(&name);
    if owned && labelled {
        return Ok(());
    }
    let mut owners: Vec<_> = infra
        .owner_references()
        .iter()
        .filter(|o| !(o.kind == "Cluster" && o.api_version.starts_with("cluster.x-k8s.io/")))
        .cloned()
        .collect();
    owners.push(core_owner(
        "Cluster",
        &name,
        &uid,
        cluster.spec.topology.is_some(),
    ));
    let patch = serde_json::json!({"metadata": {"ownerReferences": owners, "labels": {CLUSTER_NAME_LABEL: name}}});
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &cluster.namespace().unwrap_or_default(),
        &kind.resource,
    );
    api.patch(
        &infra.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

/// Upstream's order: workers (MachineDeployments, MachineSets, worker Machines), then the
/// control plane, then the InfraCluster; then the finalizer goes.
async fn delete(ctx: &Ctx, api: &Api<Cluster>, cluster: &Cluster) -> Result<Action, SimError> {
    if !has_finalizer(cluster.meta(), CLUSTER_FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = cluster.namespace().unwrap_or_default();
    let name = cluster.name_any();
    let lp = ListParams::default().labels(&format!("{CLUSTER_NAME_LABEL}={name}"));
    let dp = DeleteParams::background();
    let mut waiting = false;

    let mds: Api<MachineDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    for md in mds.list(&lp).await?.items {
        waiting = true;
        if md.meta().deletion_timestamp.is_none() {
            mds.delete(&md.name_any(), &dp).await?;
        }
    }
    let mss: Api<MachineSet> = Api::namespaced(ctx.client.clone(), &ns);
    for ms in mss.list(&lp).await?.items {
        waiting = true;
        if ms.meta().deletion_timestamp.is_none() {
            mss.delete(&ms.name_any(), &dp).await?;
        }
    }
    let machines: Api<Machine> = Api::namespaced(ctx.client.clone(), &ns);
    let all = machines.list(&lp).await?.items;
    let (cp, workers): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|m| m.labels().contains_key(CONTROL_PLANE_LABEL));
    for m in &workers {
        waiting = true;
        if m.meta().deletion_timestamp.is_none() {
            machines.delete(&m.name_any(), &dp).await?;
        }
    }
    if waiting {
        return Ok(Action::requeue(ctx.options.poll));
    }
    for m in &cp {
        if m.meta().deletion_timestamp.is_none() {
            machines.delete(&m.name_any(), &dp).await?;
        }
    }
    if !cp.is_empty() {
        return Ok(Action::requeue(ctx.options.poll));
    }
    if let Some(r) = &cluster.spec.infrastructure_ref
        && let Some((infra, kind)) = ctx
            .kinds
            .get(&ctx.client, &r.api_group, &r.kind, &ns, &r.name)
            .await?
    {
        if infra.metadata.deletion_timestamp.is_none() {
            let infra_api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), &ns, &kind.resource);
            infra_api.delete(&infra.name_any(), &dp).await?;
        }
        return Ok(Action::requeue(ctx.options.poll));
    }
    let rest: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != CLUSTER_FINALIZER)
        .cloned()
        .collect();
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(finalizers_patch(cluster.meta(), rest)),
    )
    .await?;
    Ok(Action::await_change())
}
