//! MachineSet and MachineDeployment: InfraMachineTemplates cloned into InfraMachines, scaling.
//!
//! As upstream (capi-contract.md 3.2, 4.1): the InfraMachine is created before its Machine,
//! named like it, owned by the MachineSet until the Machine controller takes over, and carries
//! the Machine's labels plus the `cloned-from` annotations. A MachineDeployment owns one
//! MachineSet per template (rollouts are not simulated) and passes its replicas down.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use capi_core::v1beta2::{
    Machine, MachineDeployment, MachineDeploymentStatus, MachineSet, MachineSetSpec,
    MachineSetStatus, MachineStatusPhase,
};
use futures::Future;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::cluster::scoped;
use super::{
    CLUSTER_NAME_LABEL, Ctx, MACHINEDEPLOYMENT_FINALIZER, MACHINESET_FINALIZER, SimError,
    core_owner, drain, finalizers_patch, has_finalizer, retry,
};

const SET_NAME_LABEL: &str = "cluster.x-k8s.io/set-name";
const DEPLOYMENT_NAME_LABEL: &str = "cluster.x-k8s.io/deployment-name";
const TEMPLATE_HASH_LABEL: &str = "machine-template-hash";
const CLONED_FROM_NAME: &str = "cluster.x-k8s.io/cloned-from-name";
const CLONED_FROM_GROUPKIND: &str = "cluster.x-k8s.io/cloned-from-groupkind";
const DELETE_MACHINE_ANNOTATION: &str = "cluster.x-k8s.io/delete-machine";

pub(crate) async fn run_machinesets(
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let stream = Controller::new(scoped::<MachineSet>(&ctx), watcher::Config::default())
        .owns(scoped::<Machine>(&ctx), watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile_set, retry, ctx);
    drain("machineset", stream).await;
}

pub(crate) async fn run_machinedeployments(
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let stream = Controller::new(
        scoped::<MachineDeployment>(&ctx),
        watcher::Config::default(),
    )
    .owns(scoped::<MachineSet>(&ctx), watcher::Config::default())
    .graceful_shutdown_on(shutdown)
    .run(reconcile_deployment, retry, ctx);
    drain("machinedeployment", stream).await;
}

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

async fn ensure_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<bool, SimError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if has_finalizer(obj.meta(), finalizer) {
        return Ok(false);
    }
    let mut f = obj.meta().finalizers.clone().unwrap_or_default();
    f.push(finalizer.into());
    api.patch(
        &obj.meta().name.clone().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(finalizers_patch(obj.meta(), f)),
    )
    .await?;
    Ok(true)
}

/// What upstream's defaulting webhooks do for MachineSets and MachineDeployments: label them
/// with their cluster's name, which the Cluster controller's deletion finds them by. Returns
/// whether a write was made (the watch brings the object back).
async fn ensure_cluster_label<K>(api: &Api<K>, obj: &K, cluster: &str) -> Result<bool, SimError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if cluster.is_empty()
        || obj.labels().get(CLUSTER_NAME_LABEL).map(String::as_str) == Some(cluster)
    {
        return Ok(false);
    }
    api.patch(
        &obj.meta().name.clone().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {CLUSTER_NAME_LABEL: cluster}}})),
    )
    .await?;
    Ok(true)
}

async fn remove_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), SimError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let rest: Vec<String> = obj
        .meta()
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    api.patch(
        &obj.meta().name.clone().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(finalizers_patch(obj.meta(), rest)),
    )
    .await?;
    Ok(())
}

async fn reconcile_set(ms: Arc<MachineSet>, ctx: Arc<Ctx>) -> Result<Action, SimError> {
    let ns = ms.namespace().unwrap_or_default();
    let api: Api<MachineSet> = Api::namespaced(ctx.client.clone(), &ns);
    let machines: Api<Machine> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = ms.uid().unwrap_or_default();
    let mut mine: Vec<Machine> = machines
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|m| owned_by(m.meta(), &uid))
        .collect();

    if ms.meta().deletion_timestamp.is_none()
        && ensure_cluster_label(&api, ms.as_ref(), &ms.spec.cluster_name).await?
    {
        return Ok(Action::await_change());
    }
    if ms.meta().deletion_timestamp.is_some() {
        if !has_finalizer(ms.meta(), MACHINESET_FINALIZER) {
            return Ok(Action::await_change());
        }
        for m in &mine {
            if m.meta().deletion_timestamp.is_none() {
                machines
                    .delete(&m.name_any(), &DeleteParams::background())
                    .await?;
            }
        }
        if mine.is_empty() {
            remove_finalizer(&api, ms.as_ref(), MACHINESET_FINALIZER).await?;
            return Ok(Action::await_change());
        }
        return Ok(Action::requeue(ctx.options.poll));
    }
    if ensure_finalizer(&api, ms.as_ref(), MACHINESET_FINALIZER).await? {
        return Ok(Action::await_change());
    }

    let desired = usize::try_from(ms.spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
    mine.retain(|m| m.meta().deletion_timestamp.is_none());
    if mine.len() < desired {
        for _ in mine.len()..desired {
            create_machine(&ctx, &ms).await?;
        }
    } else if mine.len() > desired {
        // Upstream's default order: machines marked for deletion first, then the newest.
        mine.sort_by(|a, b| {
            let marked = |m: &Machine| m.annotations().contains_key(DELETE_MACHINE_ANNOTATION);
            marked(b).cmp(&marked(a)).then_with(|| {
                b.meta()
                    .creation_timestamp
                    .cmp(&a.meta().creation_timestamp)
            })
        });
        for m in mine.iter().take(mine.len() - desired) {
            machines
                .delete(&m.name_any(), &DeleteParams::background())
                .await?;
        }
    }

    let all: Vec<Machine> = machines
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|m| owned_by(m.meta(), &uid))
        .collect();
    let count = |f: &dyn Fn(&Machine) -> bool| {
        i32::try_from(all.iter().filter(|m| f(m)).count()).unwrap_or(i32::MAX)
    };
    let running =
        |m: &Machine| m.status.as_ref().and_then(|s| s.phase) == Some(MachineStatusPhase::Running);
    let status = MachineSetStatus {
        replicas: Some(count(&|_| true)),
        ready_replicas: Some(count(&running)),
        available_replicas: Some(count(&running)),
        up_to_date_replicas: Some(count(&|_| true)),
        selector: Some(selector_string(&ms.spec)),
        observed_generation: ms.meta().generation,
        ..ms.status.clone().unwrap_or_default()
    };
    if Some(&status) != ms.status.as_ref() {
        api.patch_status(
            &ms.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": status})),
        )
        .await?;
    }
    let settled = all.len() == desired && all.iter().all(running);
    Ok(if settled {
        Action::await_change()
    } else {
        Action::requeue(ctx.options.poll)
    })
}

fn selector_string(spec: &MachineSetSpec) -> String {
    let labels = spec.selector.match_labels.clone().unwrap_or_default();
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn random_suffix() -> String {
    let mut h = DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    let n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| ALPHABET[((n >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// Clones the InfraMachineTemplate into an InfraMachine, then creates the Machine.
async fn create_machine(ctx: &Ctx, ms: &MachineSet) -> Result<(), SimError> {
    let ns = ms.namespace().unwrap_or_default();
    let name = format!("{}-{}", ms.name_any(), random_suffix());
    let template = &ms.spec.template;
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CLUSTER_NAME_LABEL.into(), ms.spec.cluster_name.clone());
    labels.insert(SET_NAME_LABEL.into(), ms.name_any());
    if let Some(md) = ms.labels().get(DEPLOYMENT_NAME_LABEL) {
        labels.insert(DEPLOYMENT_NAME_LABEL.into(), md.clone());
    }
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    let ms_owner = core_owner(
        "MachineSet",
        &ms.name_any(),
        &ms.uid().unwrap_or_default(),
        false,
    );

    // InfraMachine from the template (`spec.template.spec` copied verbatim).
    let tref = &template.spec.infrastructure_ref;
    let (tmpl, tkind) = ctx
        .kinds
        .get(&ctx.client, &tref.api_group, &tref.kind, &ns, &tref.name)
        .await?
        .ok_or_else(|| SimError::Unresolvable {
            what: format!("{}/{} {}", tref.api_group, tref.kind, tref.name),
            reason: "the InfraMachineTemplate does not exist".into(),
        })?;
    let infra_kind = tref
        .kind
        .strip_suffix("Template")
        .unwrap_or(&tref.kind)
        .to_owned();
    let ikind = ctx
        .kinds
        .resolve(&ctx.client, &tref.api_group, &infra_kind)
        .await?;
    let tspec = &tmpl.data["spec"]["template"];
    let mut infra_labels = labels.clone();
    if let Some(l) = tspec["metadata"]["labels"].as_object() {
        infra_labels.extend(
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))),
        );
    }
    let mut infra_annotations = annotations.clone();
    infra_annotations.insert(CLONED_FROM_NAME.into(), tref.name.clone());
    infra_annotations.insert(
        CLONED_FROM_GROUPKIND.into(),
        format!("{}.{}", tref.kind, tref.api_group),
    );
    let infra = serde_json::json!({
        "apiVersion": ikind.resource.api_version,
        "kind": infra_kind,
        "metadata": {"name": name, "namespace": ns, "labels": infra_labels, "annotations": infra_annotations, "ownerReferences": [ms_owner]},
        "spec": tspec["spec"],
    });
    let infra: DynamicObject = serde_json::from_value(infra)?;
    let infra_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &ikind.resource);
    infra_api.create(&PostParams::default(), &infra).await?;
    let _ = tkind;

    let mut spec = template.spec.clone();
    spec.cluster_name = ms.spec.cluster_name.clone();
    spec.infrastructure_ref.kind = infra_kind;
    spec.infrastructure_ref.name = name.clone();
    let machine = Machine {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace: Some(ns.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![core_owner(
                "MachineSet",
                &ms.name_any(),
                &ms.uid().unwrap_or_default(),
                true,
            )]),
            ..Default::default()
        },
        spec,
        status: None,
    };
    let machines: Api<Machine> = Api::namespaced(ctx.client.clone(), &ns);
    machines.create(&PostParams::default(), &machine).await?;
    Ok(())
}

fn template_hash(md: &MachineDeployment) -> String {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&md.spec.template)
        .unwrap_or_default()
        .hash(&mut h);
    format!("{:x}", h.finish() % 0xff_ffff_ffff)
}

async fn reconcile_deployment(
    md: Arc<MachineDeployment>,
    ctx: Arc<Ctx>,
) -> Result<Action, SimError> {
    let ns = md.namespace().unwrap_or_default();
    let api: Api<MachineDeployment> = Api::namespaced(ctx.client.clone(), &ns);
    let sets: Api<MachineSet> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = md.uid().unwrap_or_default();
    let mine: Vec<MachineSet> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|s| owned_by(s.meta(), &uid))
        .collect();

    if md.meta().deletion_timestamp.is_none()
        && ensure_cluster_label(&api, md.as_ref(), &md.spec.cluster_name).await?
    {
        return Ok(Action::await_change());
    }
    if md.meta().deletion_timestamp.is_some() {
        if !has_finalizer(md.meta(), MACHINEDEPLOYMENT_FINALIZER) {
            return Ok(Action::await_change());
        }
        for s in &mine {
            if s.meta().deletion_timestamp.is_none() {
                sets.delete(&s.name_any(), &DeleteParams::background())
                    .await?;
            }
        }
        if mine.is_empty() {
            remove_finalizer(&api, md.as_ref(), MACHINEDEPLOYMENT_FINALIZER).await?;
            return Ok(Action::await_change());
        }
        return Ok(Action::requeue(ctx.options.poll));
    }
    if ensure_finalizer(&api, md.as_ref(), MACHINEDEPLOYMENT_FINALIZER).await? {
        return Ok(Action::await_change());
    }

    let hash = template_hash(&md);
    let replicas = md.spec.replicas.unwrap_or(1);
    match mine
        .iter()
        .find(|s| s.labels().get(TEMPLATE_HASH_LABEL) == Some(&hash))
    {
        Some(set) => {
            if set.spec.replicas != Some(replicas) {
                sets.patch(
                    &set.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
                )
                .await?;
            }
        }
        None => {
            let mut labels = md.labels().clone();
            labels.insert(CLUSTER_NAME_LABEL.into(), md.spec.cluster_name.clone());
            labels.insert(DEPLOYMENT_NAME_LABEL.into(), md.name_any());
            labels.insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut template = md.spec.template.clone();
            let tl = template
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(BTreeMap::new);
            tl.insert(DEPLOYMENT_NAME_LABEL.into(), md.name_any());
            tl.insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut selector = md.spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let set = MachineSet {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(format!("{}-{}", md.name_any(), random_suffix())),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    owner_references: Some(vec![core_owner(
                        "MachineDeployment",
                        &md.name_any(),
                        &uid,
                        true,
                    )]),
                    ..Default::default()
                },
                spec: MachineSetSpec {
                    cluster_name: md.spec.cluster_name.clone(),
                    replicas: Some(replicas),
                    selector,
                    template,
                    ..Default::default()
                },
                status: None,
            };
            sets.create(&PostParams::default(), &set).await?;
        }
    }
    // Old sets (another template) scale to zero: the simulator does not roll out gradually.
    for s in mine.iter().filter(|s| {
        s.labels().get(TEMPLATE_HASH_LABEL) != Some(&hash) && s.meta().deletion_timestamp.is_none()
    }) {
        sets.delete(&s.name_any(), &DeleteParams::background())
            .await?;
    }

    let sum = |f: fn(&MachineSetStatus) -> Option<i32>| {
        mine.iter()
            .filter_map(|s| s.status.as_ref().and_then(f))
            .sum::<i32>()
    };
    let status = MachineDeploymentStatus {
        replicas: Some(sum(|s| s.replicas)),
        ready_replicas: Some(sum(|s| s.ready_replicas)),
        available_replicas: Some(sum(|s| s.available_replicas)),
        up_to_date_replicas: Some(sum(|s| s.up_to_date_replicas)),
        observed_generation: md.meta().generation,
        selector: Some(
            md.spec
                .selector
                .match_labels
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ..md.status.clone().unwrap_or_default()
    };
    if Some(&status) != md.status.as_ref() {
        api.patch_status(
            &md.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": status})),
        )
        .await?;
    }
    Ok(Action::await_change())
}
