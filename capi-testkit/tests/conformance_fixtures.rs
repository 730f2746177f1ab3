//! The conformance suite against small providers written here with plain kube-runtime (the
//! suite never uses capi-provider-sdk): a correct one passes, and deliberately broken ones fail
//! naming the scenario of the clause they break.

#![allow(clippy::unwrap_used, missing_docs)]

mod fixture;

use std::sync::Arc;
use std::time::Duration;

use capi_core::conditions::v1beta2 as conds;
use capi_core::contract::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus, Initialization,
    TemplateResource,
};
use capi_core::v1beta2::{Cluster, Machine, MachineAddress, MachineAddressType};
use capi_testkit::conformance::run;
use capi_testkit::env::TestEnv;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.fixture.io",
    version = "v1alpha1",
    kind = "FixMachine",
    namespaced,
    status = "FixMachineStatus"
)]
pub struct FixMachineSpec {
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FixMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.fixture.io",
    version = "v1alpha1",
    kind = "FixMachineTemplate",
    namespaced
)]
pub struct FixMachineTemplateSpec {
    pub template: TemplateResource<FixMachineSpec>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "infrastructure.fixture.io",
    version = "v1alpha1",
    kind = "FixCluster",
    namespaced,
    status = "FixClusterStatus"
)]
pub struct FixClusterSpec {
    #[serde(flatten)]
    pub contract: InfraClusterSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FixClusterStatus {
    #[serde(flatten)]
    pub contract: InfraClusterStatus,
}

/// The bugs a fixture provider can have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bugs {
    never_removes_finalizer: bool,
    ignores_pause: bool,
    provisions_before_bootstrap_data: bool,
    rewrites_status_every_loop: bool,
    never_sets_provider_id: bool,
}

const FINALIZER: &str = "infrastructure.fixture.io/fixture";

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

struct Ctx {
    client: kube::Client,
    bugs: Bugs,
}

fn paused(
    cluster: &Cluster,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    capi_core::labels::is_paused(cluster, meta)
}

async fn set_finalizers(
    api: &Api<
        impl Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    >,
    name: &str,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
    )
    .await?;
    Ok(())
}

async fn reconcile_machine(m: Arc<FixMachine>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let again = Action::requeue(Duration::from_millis(150));
    let ns = m.namespace().unwrap_or_default();
    let api: Api<FixMachine> = Api::namespaced(ctx.client.clone(), &ns);
    let name = m.name_any();
    let Some(owner) = capi_core::owner::owner_ref(m.meta(), capi_core::owner::Owner::MACHINE)
    else {
        if m.meta().deletion_timestamp.is_some() && !ctx.bugs.never_removes_finalizer {
            set_finalizers(&api, &name, vec![]).await?;
        }
        return Ok(again);
    };
    let Some(machine) = Api::<Machine>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&owner.name)
        .await?
    else {
        return Ok(again);
    };
    let Some(cluster) = Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&machine.spec.cluster_name)
        .await?
    else {
        return Ok(again);
    };
    if paused(&cluster, m.meta()) && !ctx.bugs.ignores_pause {
        return Ok(again);
    }
    if m.meta().deletion_timestamp.is_some() {
        if !ctx.bugs.never_removes_finalizer {
            set_finalizers(
                &api,
                &name,
                m.finalizers()
                    .iter()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect(),
            )
            .await?;
        }
        return Ok(again);
    }
    if !m.finalizers().iter().any(|f| f == FINALIZER) {
        let mut f = m.finalizers().to_vec();
        f.push(FINALIZER.into());
        set_finalizers(&api, &name, f).await?;
        return Ok(again);
    }
    if !ctx.bugs.provisions_before_bootstrap_data {
        let infra = cluster
            .status
            .as_ref()
            .and_then(|s| s.initialization.as_ref())
            .and_then(|i| i.infrastructure_provisioned)
            == Some(true);
        let Some(secret) = machine.spec.bootstrap.data_secret_name.as_deref() else {
            return Ok(again);
        };
        if !infra
            || Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(secret)
                .await?
                .is_none()
        {
            return Ok(again);
        }
    }
    let mut generation = m.meta().generation;
    if !ctx.bugs.never_sets_provider_id && m.spec.contract.provider_id.is_none() {
        // The spec write bumps the generation: the conditions below observe the new one.
        generation = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"providerID": format!("fixture:///{name}")}})),
            )
            .await?
            .meta()
            .generation;
    }
    let mut status = m.status.clone().unwrap_or_default().contract;
    status.initialization = Some(Initialization::provisioned());
    status.addresses = Some(vec![MachineAddress {
        type_: MachineAddressType::InternalIP,
        address: "10.1.0.1".into(),
    }]);
    conds::mark_true(&mut status.conditions, "Ready", "Ready", "", generation);
    conds::mark_false(
        &mut status.conditions,
        "Paused",
        "NotPaused",
        "",
        generation,
    );
    if ctx.bugs.rewrites_status_every_loop {
        // A message that changes every loop: the resourceVersion never settles.
        let t = format!("checked at {:?}", std::time::SystemTime::now());
        conds::mark_true(&mut status.conditions, "Ready", "Ready", &t, generation);
    }
    if m.status.as_ref().map(|s| &s.contract) != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    Ok(again)
}

async fn reconcile_cluster(c: Arc<FixCluster>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let again = Action::requeue(Duration::from_millis(150));
    if capi_core::labels::is_externally_managed(c.meta()) {
        return Ok(again);
    }
    let ns = c.namespace().unwrap_or_default();
    let api: Api<FixCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let name = c.name_any();
    let Some(owner) = capi_core::owner::owner_ref(c.meta(), capi_core::owner::Owner::CLUSTER)
    else {
        if c.meta().deletion_timestamp.is_some() {
            set_finalizers(&api, &name, vec![]).await?;
        }
        return Ok(again);
    };
    let Some(cluster) = Api::<Cluster>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&owner.name)
        .await?
    else {
        return Ok(again);
    };
    if paused(&cluster, c.meta()) && !ctx.bugs.ignores_pause {
        return Ok(again);
    }
    if c.meta().deletion_timestamp.is_some() {
        set_finalizers(
            &api,
            &name,
            c.finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
        )
        .await?;
        return Ok(again);
    }
    if !c.finalizers().iter().any(|f| f == FINALIZER) {
        let mut f = c.finalizers().to_vec();
        f.push(FINALIZER.into());
        set_finalizers(&api, &name, f).await?;
        return Ok(again);
    }
    if c.spec.contract.control_plane_endpoint.is_none() {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"controlPlaneEndpoint": {"host": "10.1.0.100", "port": 6443}}}),
            ),
        )
        .await?;
    }
    let mut status = c.status.clone().unwrap_or_default().contract;
    status.initialization = Some(Initialization::provisioned());
    conds::mark_true(
        &mut status.conditions,
        "Ready",
        "Ready",
        "",
        c.meta().generation,
    );
    conds::mark_false(
        &mut status.conditions,
        "Paused",
        "NotPaused",
        "",
        c.meta().generation,
    );
    if c.status.as_ref().map(|s| &s.contract) != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    }
    Ok(again)
}

async fn start(bugs: Bugs) -> TestEnv {
    let env = fixture::env_with(
        "v1beta2",
        vec![
            FixMachine::crd(),
            FixMachineTemplate::crd(),
            FixCluster::crd(),
        ],
    )
    .await;
    let ctx = Arc::new(Ctx {
        client: env.client(),
        bugs,
    });
    fixture::spawn_controller::<FixMachine, _, _, _, _>(
        env.client(),
        reconcile_machine,
        ctx.clone(),
    );
    fixture::spawn_controller::<FixCluster, _, _, _, _>(env.client(), reconcile_cluster, ctx);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_provider_passes() {
    let env = start(Bugs::default()).await;
    let report = run(fixture::config(&env, &[])).await.unwrap();
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
}

async fn fails(bugs: Bugs, scenarios: &[&str], expected: &str) {
    let env = start(bugs).await;
    let report = run(fixture::config(&env, scenarios)).await.unwrap();
    println!("{}", report.table());
    assert!(
        !report.passed(),
        "a broken provider passed:\n{}",
        report.table()
    );
    assert!(
        report.failures().contains(&expected),
        "expected {expected} to fail:\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_removes_its_finalizer_fails() {
    fails(
        Bugs {
            never_removes_finalizer: true,
            ..Bugs::default()
        },
        &["finalizer-lifecycle"],
        "finalizer-lifecycle",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_ignores_pause_fails() {
    fails(
        Bugs {
            ignores_pause: true,
            ..Bugs::default()
        },
        &["pause-spec", "pause-annotation"],
        "pause-spec",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_provisions_before_bootstrap_data_fails() {
    fails(
        Bugs {
            provisions_before_bootstrap_data: true,
            ..Bugs::default()
        },
        &["waits-for-bootstrap-data"],
        "waits-for-bootstrap-data",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_rewrites_status_every_loop_fails() {
    fails(
        Bugs {
            rewrites_status_every_loop: true,
            ..Bugs::default()
        },
        &["resource-versions-stable"],
        "resource-versions-stable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_sets_provider_id_fails() {
    fails(
        Bugs {
            never_sets_provider_id: true,
            ..Bugs::default()
        },
        &["provider-id-with-provisioned"],
        "provider-id-with-provisioned",
    )
    .await;
}
