//! Fault injection through real kube-rs clients: watches cut mid-stream (now, every N events,
//! after a delay), expired watch history (410 and relist), server restarts on the same port
//! keeping or dropping state, and error rules matched by verb, resource, namespace and name.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use capi_testkit::env::{EnvError, TestEnv};
use capi_testkit::server::faults::{Cut, Fault, FaultRule};
use capi_testkit::server::restart::Restart;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// A reflector of the configmaps of `default`, polled in the background.
struct Reflected {
    store: Store<ConfigMap>,
    /// How many times the watcher (re)listed.
    inits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reflected {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reflect(env: &TestEnv) -> Reflected {
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let (store, writer) = reflector::store();
    let inits = Arc::new(AtomicUsize::new(0));
    let count = inits.clone();
    let task = tokio::spawn(async move {
        let mut events = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .boxed();
        while let Some(e) = events.next().await {
            if matches!(e, Ok(watcher::Event::Init)) {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    Reflected { store, inits, task }
}

fn names(store: &Store<ConfigMap>) -> BTreeSet<String> {
    store
        .state()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Waits until `ok` holds, failing with `what` after [`WAIT`].
async fn eventually(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(env: &TestEnv, name: &str) -> ConfigMap {
    Api::<ConfigMap>::namespaced(env.client(), "default")
        .create(&PostParams::default(), &cm(name))
        .await
        .unwrap()
}

fn rv(o: &ConfigMap) -> u64 {
    o.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_reflector_keeps_up_when_every_watch_is_cut_after_two_events() {
    let env = TestEnv::start().await.unwrap();
    env.faults().add(
        FaultRule::new(Fault::CutWatch(Cut::AfterEvents(2)))
            .verb("watch")
            .resource("configmaps"),
    );
    let r = reflect(&env);
    let mut all = Vec::new();
    for i in 0..6 {
        let name = format!("c{i}");
        create(&env, &name).await;
        all.push(name);
        // One write at a time, so that the watch really is cut between them.
        eventually("the reflector to catch up", || {
            names(&r.store).len() == all.len()
        })
        .await;
    }
    assert!(env.faults().injected() >= 2, "{}", env.faults().injected());
    // Every cut watch resumed from its last resourceVersion: one list only.
    assert_eq!(r.inits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cutting_open_watches_drops_them_mid_stream() {
    // `raw_watch` speaks plain HTTP on the socket.
    let env = TestEnv::builder()
        .insecure_http(true)
        .start()
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    create(&env, "a").await;
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    // From "0" the initial events end with their bookmark, as kube-apiserver 1.34+ defaults it.
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Bookmark(_)))
    ));
    assert_eq!(env.faults().open_watches(Some("configmaps")), 1);
    assert_eq!(env.faults().cut_watches(Some("secrets")), 0);
    assert_eq!(env.faults().cut_watches(Some("configmaps")), 1);
    // kube-rs reads the unexpected end of the chunked body as a resumable end of the watch.
    let next = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert!(next.is_none(), "{next:?}");
    eventually("the watch to be gone", || {
        env.faults().open_watches(None) == 0
    })
    .await;
    // The client itself is fine.
    api.get("a").await.unwrap();

    // On the wire: the connection closes with no last chunk.
    let (head, _) = raw_watch(&env, || {
        assert_eq!(env.faults().cut_watches(None), 1);
    })
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("\"ADDED\""), "{head}");
    assert!(!head.ends_with("0\r\n\r\n"), "{head}");
}

/// Opens a raw HTTP watch of configmaps, runs `then` once the first event arrived, and reads
/// until the server closes the connection: what came, and how long it took.
async fn raw_watch(env: &TestEnv, then: impl FnOnce()) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = env.url().unwrap().trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut then = Some(then);
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&out).contains("\"ADDED\"")
            && let Some(f) = then.take()
        {
            f();
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test]
async fn a_watch_cut_after_a_delay_drops_on_time_and_only_once() {
    // `raw_watch` speaks plain HTTP on the socket.
    let env = TestEnv::builder()
        .insecure_http(true)
        .start()
        .await
        .unwrap();
    env.faults().add(
        FaultRule::new(Fault::CutWatch(Cut::After(Duration::from_millis(300))))
            .resource("configmaps")
            .times(1),
    );
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    create(&env, "a").await;
    let (body, took) = raw_watch(&env, || {}).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(!body.ends_with("0\r\n\r\n"), "{body}");
    // The rule is used up: the next watch stays open.
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    // From "0" the initial events end with their bookmark, as kube-apiserver 1.34+ defaults it.
    assert!(matches!(
        stream.next().await,
        Some(Ok(WatchEvent::Bookmark(_)))
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(600), stream.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn expired_history_makes_a_watcher_relist() {
    let env = TestEnv::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let a = create(&env, "a").await;
    // The raw answer: 200 and one ERROR event with a 410 Expired Status.
    env.faults().add(
        FaultRule::new(Fault::ExpireWatch)
            .resource("configmaps")
            .times(1),
    );
    let mut stream = api
        .watch(&WatchParams::default(), &rv(&a).to_string())
        .await
        .unwrap()
        .boxed();
    let next = stream.next().await;
    assert!(
        matches!(&next, Some(Ok(WatchEvent::Error(s))) if s.code == 410 && s.reason == "Expired"),
        "{next:?}"
    );
    // A watcher resuming after a cut gets it, relists and goes on.
    let r = reflect(&env);
    eventually("the first list", || names(&r.store) == set(&["a"])).await;
    eventually("the watch", || {
        env.faults().open_watches(Some("configmaps")) == 1
    })
    .await;
    env.faults().add(
        FaultRule::new(Fault::ExpireWatch)
            .resource("configmaps")
            .times(1),
    );
    assert_eq!(env.faults().cut_watches(Some("configmaps")), 1);
    eventually("a relist", || r.inits.load(Ordering::SeqCst) == 2).await;
    create(&env, "b").await;
    eventually("b", || names(&r.store) == set(&["a", "b"])).await;
}

#[tokio::test]
async fn a_reflector_resumes_after_a_restart_keeping_state() {
    let mut env = TestEnv::start().await.unwrap();
    let url = env.url();
    let r = reflect(&env);
    let a = create(&env, "a").await;
    eventually("a", || names(&r.store) == set(&["a"])).await;
    eventually("the watch", || env.faults().open_watches(None) == 1).await;
    env.restart(Restart::KeepState).await.unwrap();
    assert_eq!(env.url(), url, "same port");
    // The same client works at once, and resourceVersions go on.
    let b = create(&env, "b").await;
    assert!(rv(&b) > rv(&a));
    eventually("b", || names(&r.store) == set(&["a", "b"])).await;
    // It resumed from its resourceVersion: no relist.
    assert_eq!(r.inits.load(Ordering::SeqCst), 1);
}

fn clusters(env: &TestEnv) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Cluster");
    Api::namespaced_with(
        env.client(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "clusters"),
    )
}

async fn env_with_crds() -> TestEnv {
    TestEnv::builder()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap()
}

async fn create_cluster(env: &TestEnv) {
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "demo"},
        "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}},
    }))
    .unwrap();
    clusters(env)
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reflector_sees_objects_disappear_after_a_restart_keeping_only_crds() {
    let mut env = env_with_crds().await;
    create_cluster(&env).await;
    let r = reflect(&env);
    let a = create(&env, "a").await;
    eventually("a", || names(&r.store) == set(&["a"])).await;
    env.restart(Restart::KeepCrds).await.unwrap();
    eventually("a to disappear", || names(&r.store).is_empty()).await;
    assert!(r.inits.load(Ordering::SeqCst) >= 2, "it relisted");
    // The CRDs are served again, with no objects; new objects get newer resourceVersions.
    assert!(
        clusters(&env)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let b = create(&env, "b").await;
    assert!(rv(&b) > rv(&a));
    eventually("b", || names(&r.store) == set(&["b"])).await;
}

#[tokio::test]
async fn a_restart_with_an_empty_store_forgets_crds_too() {
    let mut env = env_with_crds().await;
    create_cluster(&env).await;
    env.restart(Restart::EmptyStore).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    assert!(
        crds.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let err = clusters(&env)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
    let nss: Api<Namespace> = Api::all(env.client());
    nss.get("default").await.unwrap();
    // The CRDs can be installed again.
    env.install_crds(capi_core::crd::core_crds().unwrap())
        .await
        .unwrap();
    create_cluster(&env).await;
}

#[tokio::test]
async fn fault_rules_carry_over_a_restart_and_in_process_envs_cannot_restart() {
    let mut env = TestEnv::start().await.unwrap();
    env.faults().add(
        FaultRule::new(Fault::Status(503))
            .verb("create")
            .resource("configmaps")
            .times(1),
    );
    env.restart(Restart::EmptyStore).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let err = api
        .create(&PostParams::default(), &cm("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 503));
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let mut local = TestEnv::builder().in_process().start().await.unwrap();
    assert!(matches!(
        local.restart(Restart::KeepState).await,
        Err(EnvError::InProcess)
    ));
}

#[tokio::test]
async fn error_rules_match_on_verb_resource_namespace_and_name() {
    let env = TestEnv::start().await.unwrap();
    let nss: Api<Namespace> = Api::all(env.client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    env.faults().add(
        FaultRule::new(Fault::Status(500))
            .verb("create")
            .resource("configmaps")
            .namespace("other")
            .times(1),
    );
    env.faults()
        .add(FaultRule::new(Fault::Status(409)).verb("get").name("b"));
    let here: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let there: Api<ConfigMap> = Api::namespaced(env.client(), "other");
    here.create(&PostParams::default(), &cm("a")).await.unwrap();
    here.create(&PostParams::default(), &cm("b")).await.unwrap();
    let err = there
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 500));
    there
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap();
    here.get("a").await.unwrap();
    let err = here.get("b").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    // A list is not a get, even of the same name.
    assert_eq!(
        here.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    assert_eq!(env.faults().injected(), 2);
}
