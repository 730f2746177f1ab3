//! The core Machine controller and the bootstrap stand-in.

use std::collections::BTreeMap;
use std::sync::Arc;

use capi_core::contract::InfraMachineView;
use capi_core::v1beta2::{
    Cluster, Machine, MachineNodeReference, MachineStatus, MachineStatusPhase,
};
use futures::Future;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::cluster::scoped;
use super::{
    CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, Ctx, MACHINE_FINALIZER, SimError, core_owner, drain,
    finalizers_patch, has_finalizer, retry, set_condition,
};

/// The label the bootstrap stand-in puts on the secrets it writes.
pub const BOOTSTRAP_SECRET_LABEL: &str = "capi-testkit.io/bootstrap-stand-in";

pub(crate) async fn run(ctx: Arc<Ctx>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<Machine> = scoped(&ctx);
    let controller = Controller::new(api, watcher::Config::default());
    let machines = controller.store();
    // Like core: Cluster changes (unpause above all) re-trigger the cluster's Machines.
    let stream = controller
        .watches(
            scoped::<Cluster>(&ctx),
            watcher::Config::default(),
            move |c: Cluster| {
                let ns = c.namespace().unwrap_or_default();
                let name = c.name_any();
                machines
                    .state()
                    .into_iter()
                    .filter(|m| {
                        m.namespace().as_deref() == Some(ns.as_str()) && m.spec.cluster_name == name
                    })
                    .map(|m| kube::runtime::reflector::ObjectRef::from_obj(m.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, retry, ctx);
    drain("machine", stream).await;
}

async fn reconcile(machine: Arc<Machine>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = machine.namespace().unwrap_or_default();
    let api: Api<Machine> = Api::namespaced(ctx.client.clone(), &ns);
    let name = machine.name_any();
    if machine.meta().deletion_timestamp.is_some() {
        return delete(&ctx, &api, &machine).await;
    }
    let cluster_label =
        machine.labels().get(CLUSTER_NAME_LABEL) == Some(&machine.spec.cluster_name);
    if !has_finalizer(machine.meta(), MACHINE_FINALIZER) || !cluster_label {
        let mut f = machine.finalizers().to_vec();
        if !f.iter().any(|x| x == MACHINE_FINALIZER) {
            f.push(MACHINE_FINALIZER.into());
        }
        let mut patch = finalizers_patch(machine.meta(), f);
        patch["metadata"]["labels"] =
            serde_json::json!({CLUSTER_NAME_LABEL: machine.spec.cluster_name});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        return Ok(Action::await_change());
    }
    let clusters: Api<Cluster> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(cluster) = clusters.get_opt(&machine.spec.cluster_name).await? else {
        return Ok(Action::requeue(ctx.options.poll));
    };
    if cluster.spec.paused == Some(true) {
        return Ok(Action::requeue(ctx.options.poll));
    }

    let before = machine.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let generation = machine.meta().generation;
    let mut spec_patch = serde_json::Map::new();
    let mut requeue = false;

    // Bootstrap stand-in.
    if machine.spec.bootstrap.data_secret_name.is_none() && ctx.options.bootstrap {
        let worker = !machine.labels().contains_key(CONTROL_PLANE_LABEL);
        let cp_initialized = cluster
            .status
            .as_ref()
            .and_then(|s| s.initialization.as_ref())
            .and_then(|i| i.control_plane_initialized)
            == Some(true);
        let age = machine
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|t| {
                capi_core::conditions::now()
                    .0
                    .duration_since(t.0)
                    .unsigned_abs()
            })
            .unwrap_or_default();
        if worker && !cp_initialized {
            set_condition(
                &mut status.conditions,
                "BootstrapConfigReady",
                "False",
                "WaitingForControlPlaneInitialized",
                "",
                generation,
            );
            requeue = true;
        } else if age < ctx.options.bootstrap_delay {
            requeue = true;
        } else {
            let secret_name = format!("{name}-bootstrap");
            write_bootstrap_secret(&ctx, &machine, &secret_name).await?;
            spec_patch.insert(
                "bootstrap".into(),
                serde_json::json!({"dataSecretName": secret_name}),
            );
            status
                .initialization
                .get_or_insert_with(Default::default)
                .bootstrap_data_secret_created = Some(true);
            set_condition(
                &mut status.conditions,
                "BootstrapConfigReady",
                "True",
                "Ready",
                "",
                generation,
            );
        }
    } else if machine.spec.bootstrap.data_secret_name.is_some() {
        status
            .initialization
            .get_or_insert_with(Default::default)
            .bootstrap_data_secret_created = Some(true);
    }

    // Infrastructure.
    let r = &machine.spec.infrastructure_ref;
    match ctx
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
            adopt(&ctx, &machine, &infra, &kind).await?;
            let json = serde_json::to_value(&infra)?;
            let view = InfraMachineView::new(&json, kind.contract);
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
            let was = status
                .initialization
                .as_ref()
                .and_then(|i| i.infrastructure_provisioned)
                == Some(true);
            if infra.metadata.deletion_timestamp.is_none() && (provisioned || was) {
                match view.provider_id()? {
                    // Core waits for the providerID even when provisioned is true.
                    None => requeue = true,
                    Some(pid) => {
                        if machine.spec.provider_id.as_deref() != Some(pid) {
                            spec_patch.insert("providerID".into(), serde_json::json!(pid));
                        }
                        let addresses = view.addresses()?;
                        if !addresses.is_empty() {
                            status.addresses = Some(addresses);
                        }
                        if let Some(fd) = view.failure_domain()? {
                            status.failure_domain = Some(fd.to_owned());
                        }
                        status
                            .initialization
                            .get_or_insert_with(Default::default)
                            .infrastructure_provisioned = Some(true);
                        // Node stand-in: a workload cluster would register a Node with this providerID.
                        status
                            .node_ref
                            .get_or_insert_with(|| MachineNodeReference { name: name.clone() });
                    }
                }
            } else if !provisioned {
                requeue = true;
            }
        }
    }
    status.phase = Some(phase(&machine, &status));
    status.observed_generation = generation;

    if !spec_patch.is_empty() {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": spec_patch})),
        )
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

fn phase(machine: &Machine, status: &MachineStatus) -> MachineStatusPhase {
    let init = status.initialization.as_ref();
    if machine.meta().deletion_timestamp.is_some() {
        MachineStatusPhase::Deleting
    } else if status.node_ref.is_some() {
        MachineStatusPhase::Running
    } else if init.and_then(|i| i.infrastructure_provisioned) == Some(true) {
        MachineStatusPhase::Provisioned
    } else if init.and_then(|i| i.bootstrap_data_secret_created) == Some(true) {
        MachineStatusPhase::Provisioning
    } else {
        MachineStatusPhase::Pending
    }
}

async fn write_bootstrap_secret(
    ctx: &Ctx,
    machine: &Machine,
    secret_name: &str,
) -> Result<(), SimError> {
    let ns = machine.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let value = format!(
        "#cloud-config\nruncmd:\n  - echo bootstrapping {}\n",
        machine.name_any()
    );
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: Some(ns),
            labels: Some(BTreeMap::from([
                (
                    CLUSTER_NAME_LABEL.to_owned(),
                    machine.spec.cluster_name.clone(),
                ),
                (BOOTSTRAP_SECRET_LABEL.to_owned(), "true".to_owned()),
            ])),
            owner_references: Some(vec![core_owner(
                "Machine",
                &machine.name_any(),
                &machine.uid().unwrap_or_default(),
                true,
            )]),
            ..ObjectMeta::default()
        },
        type_: Some("cluster.x-k8s.io/secret".into()),
        data: Some(BTreeMap::from([
            ("value".to_owned(), ByteString(value.into_bytes())),
            ("format".to_owned(), ByteString(b"cloud-config".to_vec())),
        ])),
        ..Secret::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Swaps on-create owners (a MachineSet) for a controller reference to the Machine, and labels.
async fn adopt(
    ctx: &Ctx,
    machine: &Machine,
    infra: &DynamicObject,
    kind: &super::ProviderKind,
) -> Result<(), SimError> {
    let uid = machine.uid().unwrap_or_default();
    let owned = infra
        .owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true));
    let has_set_owner = infra
        .owner_references()
        .iter()
        .any(|o| o.kind == "MachineSet" && o.api_version.starts_with("cluster.x-k8s.io/"));
    let labelled = infra.labels().get(CLUSTER_NAME_LABEL) == Some(&machine.spec.cluster_name);
    if owned && labelled && !has_set_owner {
        return Ok(());
    }
    let mut owners: Vec<_> = infra
        .owner_references()
        .iter()
        .filter(|o| {
            !(o.api_version.starts_with("cluster.x-k8s.io/")
                && (o.kind == "MachineSet" || o.kind == "Machine"))
        })
        .cloned()
        .collect();
    owners.push(core_owner("Machine", &machine.name_any(), &uid, true));
    let patch = serde_json::json!({"metadata": {"ownerReferences": owners, "labels": {CLUSTER_NAME_LABEL: machine.spec.cluster_name}}});
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &machine.namespace().unwrap_or_default(),
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

/// The InfraMachine goes first and must be gone; then the bootstrap secret; then the finalizer.
async fn delete(ctx: &Ctx, api: &Api<Machine>, machine: &Machine) -> Result<Action, SimError> {
    if !has_finalizer(machine.meta(), MACHINE_FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = machine.namespace().unwrap_or_default();
    let name = machine.name_any();
    let mut status = machine.status.clone().unwrap_or_default();
    if status.phase != Some(MachineStatusPhase::Deleting) {
        status.phase = Some(MachineStatusPhase::Deleting);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": status})),
        )
        .await?;
    }
    let r = &machine.spec.infrastructure_ref;
    match ctx
        .kinds
        .get(&ctx.client, &r.api_group, &r.kind, &ns, &r.name)
        .await
    {
        Ok(Some((infra, kind))) => {
            if infra.metadata.deletion_timestamp.is_none() {
                let infra_api: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), &ns, &kind.resource);
                infra_api
                    .delete(&infra.name_any(), &DeleteParams::background())
                    .await?;
            }
            return Ok(Action::requeue(ctx.options.poll));
        }
        Ok(None) => {}
        // A kind whose CRD is gone cannot hold anything back.
        Err(SimError::Unresolvable { .. }) => {}
        Err(e) => return Err(e),
    }
    if let Some(secret) = &machine.spec.bootstrap.data_secret_name {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        if let Some(s) = secrets.get_opt(secret).await?
            && s.labels().contains_key(BOOTSTRAP_SECRET_LABEL)
        {
            secrets.delete(secret, &DeleteParams::default()).await?;
        }
    }
    let rest: Vec<String> = machine
        .finalizers()
        .iter()
        .filter(|f| *f != MACHINE_FINALIZER)
        .cloned()
        .collect();
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(finalizers_patch(machine.meta(), rest)),
    )
    .await?;
    Ok(Action::await_change())
}
