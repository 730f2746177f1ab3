//! Wiring a generated reconciler into a kube-runtime Controller: the watches CAPI needs, mapped
//! back to the right keys, panic isolation, per-object backoff, metrics and a span per reconcile.

use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use capi_core::v1beta2::Cluster;
use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::backoff::PerObjectBackoff;
use crate::cache::{self, CachedMachine};
use crate::events::EventRecorder;
use crate::metrics::{ControllerMetrics, Metrics, ReconcileResult};
use crate::provider::{InfraCluster, InfraMachine};
use crate::reconcile::{self, ControllerOptions, ReconcileError, Shared};

/// What every controller of a manager shares.
#[derive(Clone)]
pub(crate) struct ControllerEnv {
    pub client: Client,
    pub namespace: Option<String>,
    pub watch_filter: Option<String>,
    pub concurrency: u16,
    pub metrics: Metrics,
    pub reporter: String,
    pub v1beta1_fields: bool,
    pub resync: Option<std::time::Duration>,
}

impl ControllerEnv {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn watcher_config(&self) -> watcher::Config {
        let wc = cache_watcher_config();
        match &self.watch_filter {
            Some(v) => wc.labels(&format!("cluster.x-k8s.io/watch-filter={v}")),
            None => wc,
        }
    }
}

/// Objects per page of a cache's initial list (and of each relist).
///
/// kube-runtime lists 500 at a time. A page is read into one buffer and decoded whole before
/// its objects are stripped and stored, so while a cache fills, the page's JSON and all its
/// decoded objects are live at once, on top of the cache itself: with 500 InfraMachines that
/// is megabytes of heap the allocator keeps as resident memory after it is freed. A hundred
/// per page costs five requests instead of one per 500 objects, once per (re)list.
pub(crate) const LIST_PAGE_SIZE: u32 = 100;

/// The watcher settings of every SDK cache: [`LIST_PAGE_SIZE`] objects per list page.
fn cache_watcher_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// `<group>/<kind>` in lower case: the finalizer style Kubernetes does not warn about.
fn finalizer_for<K: Resource<DynamicType = ()>>() -> String {
    format!("{}/{}", K::group(&()), K::kind(&()).to_lowercase())
}

pub(crate) fn key_of<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// A reflector store of `K` and the stream feeding it, every object passed through `strip`
/// before it is stored (see [`crate::cache`] for what the SDK's caches leave out).
fn store_and_stream<K>(
    api: Api<K>,
    wc: watcher::Config,
    strip: fn(&mut K),
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, wc)
        .default_backoff()
        .modify(strip)
        .reflect(writer)
        .applied_objects();
    (reader, stream)
}

/// The controller's own objects are reconciled and patched from the cache, so only what a
/// merge patch of the changes never touches is left out (see [`crate::cache`]).
fn strip_own<K: Resource>(obj: &mut K) {
    cache::strip_metadata(obj.meta_mut());
}

fn shared_for<P>(
    env: &ControllerEnv,
    provider: P,
    machines: Store<CachedMachine>,
    clusters: Store<Cluster>,
    name: &str,
    finalizer: String,
) -> Arc<Shared<P>> {
    let metrics = env.metrics.controller(name);
    metrics.set_max_concurrent(i64::from(env.concurrency));
    Arc::new(Shared {
        provider,
        client: env.client.clone(),
        machines,
        clusters,
        recorder: EventRecorder::new(env.client.clone(), env.reporter.clone(), None),
        options: ControllerOptions {
            finalizer,
            patch: crate::patch::PatchOptions::owning(reconcile::conditions::OWNED),
            v1beta1_fields: env.v1beta1_fields,
            resync: env.resync,
        },
        versions: Default::default(),
        backoff: PerObjectBackoff::default(),
        metrics,
        superseded: Default::default(),
    })
}

/// Runs one reconcile inside a span, timing it, turning a panic into an error of this object.
async fn guarded<K: Resource>(
    obj: Arc<K>,
    metrics: &ControllerMetrics,
    backoff: &PerObjectBackoff,
    controller: &str,
    fut: impl Future<Output = Result<Action, ReconcileError>>,
) -> Result<Action, ReconcileError> {
    let key = key_of(obj.as_ref());
    let span = tracing::info_span!("reconcile", controller, object = %key);
    let timer = metrics.reconcile_started(&key);
    let result = AssertUnwindSafe(fut)
        .catch_unwind()
        .instrument(span.clone())
        .await;
    match result {
        Ok(Ok(action)) => {
            backoff.succeeded(&key);
            let kind = if action == Action::await_change() {
                ReconcileResult::Success
            } else {
                ReconcileResult::RequeueAfter
            };
            timer.finish(kind);
            Ok(action)
        }
        Ok(Err(e)) => {
            timer.finish(ReconcileResult::Error);
            Err(e)
        }
        Err(panic) => {
            timer.finish(ReconcileResult::Panic);
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            span.in_scope(|| tracing::error!(panic = %message, "reconcile panicked"));
            Err(ReconcileError::Panicked(message))
        }
    }
}

fn error_policy<K: Resource, P>(
    obj: Arc<K>,
    err: &ReconcileError,
    shared: Arc<Shared<P>>,
) -> Action {
    let key = key_of(obj.as_ref());
    let delay = shared.backoff.failed(&key);
    shared.metrics.queue_retry();
    tracing::warn!(object = %key, error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Runs the InfraMachine controller of `provider` until `shutdown` resolves.
pub(crate) async fn run_machine_controller<P: InfraMachine>(
    env: ControllerEnv,
    provider: P,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    type R<P> = <P as InfraMachine>::Resource;
    let name = R::<P>::kind(&()).to_lowercase();
    let (reader, main) =
        store_and_stream(env.api::<R<P>>(), env.watcher_config(), strip_own::<R<P>>);
    let (machines, machine_stream) =
        store_and_stream(env.api::<CachedMachine>(), cache_watcher_config(), |m| {
            cache::strip_metadata(&mut m.metadata)
        });
    let (clusters, cluster_stream) = store_and_stream(
        env.api::<Cluster>(),
        cache_watcher_config(),
        cache::strip_cluster,
    );
    let shared = shared_for(
        &env,
        provider,
        machines,
        clusters,
        &name,
        finalizer_for::<R<P>>(),
    );

    let m1 = shared.metrics.clone();
    let main = main.inspect(move |r| {
        if let Ok(o) = r {
            m1.queue_add(&key_of(o));
        }
    });
    let m2 = shared.metrics.clone();
    let (group, kind) = (
        R::<P>::group(&()).to_string(),
        R::<P>::kind(&()).to_string(),
    );
    // Machine → its InfraMachine, through spec.infrastructureRef.
    let machine_to_infra = move |m: CachedMachine| {
        let r = &m.spec.infrastructure_ref;
        let hit = (r.api_group == group && r.kind == kind)
            .then(|| ObjectRef::<R<P>>::new(&r.name).within(&m.namespace().unwrap_or_default()));
        if let Some(h) = &hit {
            m2.queue_add(&format!(
                "{}/{}",
                h.namespace.as_deref().unwrap_or(""),
                h.name
            ));
        }
        hit
    };
    // Cluster → every InfraMachine of the cluster (pause transitions, infrastructure provisioned).
    let m3 = shared.metrics.clone();
    let infra_reader = reader.clone();
    let cluster_to_infra = move |c: Cluster| {
        let ns = c.namespace().unwrap_or_default();
        let name = c.name_any();
        let refs: Vec<ObjectRef<R<P>>> = infra_reader
            .state()
            .into_iter()
            .filter(|o| {
                o.namespace().as_deref() == Some(ns.as_str())
                    && o.labels().get(capi_core::labels::CLUSTER_NAME) == Some(&name)
            })
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect();
        for r in &refs {
            m3.queue_add(&format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or(""),
                r.name
            ));
        }
        refs
    };

    let controller = Controller::for_stream(main, reader)
        .watches_stream(machine_stream, machine_to_infra)
        .watches_stream(cluster_stream, cluster_to_infra);
    drive(
        controller,
        &env,
        shared,
        name,
        shutdown,
        reconcile::machine::reconcile,
    )
    .await;
}

/// Runs a built controller: bounded concurrency, graceful shutdown, every reconcile guarded.
async fn drive<K, P, Fut>(
    controller: Controller<K>,
    env: &ControllerEnv,
    shared: Arc<Shared<P>>,
    name: String,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    reconcile: fn(Arc<K>, Arc<Shared<P>>) -> Fut,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    P: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, ReconcileError>> + Send + 'static,
{
    controller
        .with_config(ControllerConfig::default().concurrency(env.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, shared: Arc<Shared<P>>| {
                let name = name.clone();
                async move {
                    let fut = reconcile(obj.clone(), shared.clone());
                    guarded(obj, &shared.metrics, &shared.backoff, &name, fut).await
                }
            },
            error_policy,
            shared,
        )
        .for_each(|_| std::future::ready(()))
        .await;
}

/// Runs the InfraCluster controller of `provider` until `shutdown` resolves.
pub(crate) async fn run_cluster_controller<P: InfraCluster>(
    env: ControllerEnv,
    provider: P,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    type R<P> = <P as InfraCluster>::Resource;
    let name = R::<P>::kind(&()).to_lowercase();
    let (reader, main) =
        store_and_stream(env.api::<R<P>>(), env.watcher_config(), strip_own::<R<P>>);
    let (clusters, cluster_stream) = store_and_stream(
        env.api::<Cluster>(),
        cache_watcher_config(),
        cache::strip_cluster,
    );
    let (machines, _) = reflector::store::<CachedMachine>();
    let shared = shared_for(
        &env,
        provider,
        machines,
        clusters,
        &name,
        finalizer_for::<R<P>>(),
    );

    let m1 = shared.metrics.clone();
    let main = main.inspect(move |r| {
        if let Ok(o) = r {
            m1.queue_add(&key_of(o));
        }
    });
    let m2 = shared.metrics.clone();
    let (group, kind) = (
        R::<P>::group(&()).to_string(),
        R::<P>::kind(&()).to_string(),
    );
    let cluster_to_infra = move |c: Cluster| {
        let r = c.spec.infrastructure_ref.as_ref()?;
        let hit = (r.api_group == group && r.kind == kind)
            .then(|| ObjectRef::<R<P>>::new(&r.name).within(&c.namespace().unwrap_or_default()));
        if let Some(h) = &hit {
            m2.queue_add(&format!(
                "{}/{}",
                h.namespace.as_deref().unwrap_or(""),
                h.name
            ));
        }
        hit
    };
    let controller =
        Controller::for_stream(main, reader).watches_stream(cluster_stream, cluster_to_infra);
    drive(
        controller,
        &env,
        shared,
        name,
        shutdown,
        reconcile::cluster::reconcile,
    )
    .await;
}
