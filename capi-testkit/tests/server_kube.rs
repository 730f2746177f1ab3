//! The fake API server through kube-rs: CRUD, conflicts, status rules, watches, finalizers,
//! garbage collection and namespaces, over real HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use capi_core::v1beta2::{Cluster, ClusterSpec, Machine};
use capi_testkit::env::TestEnv;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

async fn env() -> TestEnv {
    TestEnv::builder()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn crud_conflicts_and_noops() {
    let env = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let created = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let err = cms
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.reason == "AlreadyExists" && s.code == 409),
        "{err:?}"
    );
    // A patch that changes nothing keeps the resourceVersion.
    let same = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version.as_deref(), Some(rv.as_str()));
    // Stale resourceVersion on update: 409 Conflict.
    let mut stale = created.clone();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    stale.data = Some([("k".to_string(), "x".to_string())].into());
    let err = cms
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.reason == "Conflict"),
        "{err:?}"
    );
    let err = cms.get("missing").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"missing\" not found"),
        "{err:?}"
    );
    // Missing namespace.
    let other: Api<ConfigMap> = Api::namespaced(env.client(), "nope");
    let err = other
        .create(&PostParams::default(), &cm("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.message == "namespaces \"nope\" not found"),
        "{err:?}"
    );
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn custom_resources_with_status_subresource_and_generation() {
    let env = env().await;
    let clusters: Api<Cluster> = Api::namespaced(env.client(), "default");
    // The v1beta2 spec needs at least one property (minProperties: 1, as upstream).
    let spec = ClusterSpec {
        paused: Some(false),
        ..ClusterSpec::default()
    };
    let mut c = Cluster::new("c1", spec);
    c.status = Some(Default::default());
    let created = clusters.create(&PostParams::default(), &c).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Status through the main resource is ignored; spec changes bump generation.
    let p = clusters
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}, "status": {"phase": "Provisioned"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert!(p.status.is_none_or(|s| s.phase.is_none()));
    // Status writes never bump generation and ignore spec.
    let s = clusters
        .patch_status(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}, "status": {"phase": "Provisioned"}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(2));
    assert_eq!(s.spec.paused, Some(true));
    assert!(s.status.unwrap().phase.is_some());
    // The deprecated version is served with apiVersion rewritten.
    let v1: Api<capi_core::v1beta1::Cluster> = Api::namespaced(env.client(), "default");
    let old = v1.get("c1").await.unwrap();
    assert_eq!(old.metadata.name.as_deref(), Some("c1"));
}

#[tokio::test]
async fn finalizers_and_json_patch_test_quirk() {
    let env = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    cms.create(&PostParams::default(), &cm("f")).await.unwrap();
    // kube-runtime's finalizer helper: test null on a missing path, then add.
    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/f"]}
    ]))
    .unwrap();
    cms.patch("f", &PatchParams::default(), &Patch::<()>::Json(p))
        .await
        .unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = cms.get("f").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn watches_resume_filter_and_expire() {
    let env = env().await;
    let machines: Api<Machine> = Api::namespaced(env.client(), "default");
    let list = machines.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = machines
        .watch(&WatchParams::default().labels("role=worker"), &rv)
        .await
        .unwrap()
        .boxed();
    let m: Machine = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": "w1", "labels": {"role": "worker"}},
        "spec": {"clusterName": "c", "bootstrap": {}, "infrastructureRef": {"apiGroup": "x", "kind": "Y", "name": "w1"}}
    })).unwrap();
    machines.create(&PostParams::default(), &m).await.unwrap();
    machines
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"role": "cp"}}})),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(o) => seen.push(("ADDED", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(("DELETED", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(("MODIFIED", o.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [("ADDED", "w1".to_string()), ("DELETED", "w1".to_string())]
    );
    // Too old: an ERROR 410 event.
    env.server().store().compact();
    let mut old = machines
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), old.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_streaming_list_and_reflector() {
    let env = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    for n in ["s1", "s2"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let cfg = watcher::Config::default().streaming_lists();
    let mut events = watcher(cms.clone(), cfg).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    names.sort();
    assert_eq!(names, ["s1", "s2"]);
    // And the classic list+watch path through a reflector.
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(cms.clone(), watcher::Config::default())
        .reflect(writer)
        .applied_objects();
    tokio::spawn(stream.for_each(|_| std::future::ready(())));
    reader.wait_until_ready().await.unwrap();
    assert_eq!(reader.len(), 2);
}

#[tokio::test]
async fn garbage_collection_and_namespace_deletion() {
    let env = env().await;
    let nss: Api<Namespace> = Api::all(env.client());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "gc"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "gc");
    let owner = cms
        .create(&PostParams::default(), &cm("owner"))
        .await
        .unwrap();
    let mut dep = cm("dep");
    dep.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.unwrap(),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    for _ in 0..100 {
        if cms.get_opt("dep").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        cms.get_opt("dep").await.unwrap().is_none(),
        "dependent not collected"
    );
    cms.create(&PostParams::default(), &cm("inside"))
        .await
        .unwrap();
    nss.delete("gc", &DeleteParams::default()).await.unwrap();
    for _ in 0..100 {
        if nss.get_opt("gc").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        nss.get_opt("gc").await.unwrap().is_none(),
        "namespace not finalized"
    );
}

/// A CRD created by server-side apply is served, as one created by POST is (`kubectl apply
/// --server-side -f crds/`, or any controller installing its CRDs that way).
#[tokio::test]
async fn crds_created_by_server_side_apply_are_served() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = TestEnv::start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    for crd in capi_core::crd::core_crds().unwrap() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let applied = crds.get("clusters.cluster.x-k8s.io").await.unwrap();
    assert!(
        applied
            .status
            .and_then(|s| s.conditions)
            .is_some_and(|cs| cs
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")),
        "the applied CRD is Established"
    );
    let clusters: Api<Cluster> = Api::namespaced(env.client(), "default");
    clusters
        .create(
            &PostParams::default(),
            &Cluster::new(
                "c1",
                ClusterSpec {
                    paused: Some(false),
                    ..ClusterSpec::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        clusters
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn secret_string_data_is_written_into_data() {
    use k8s_openapi::api::core::v1::Secret;
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let api: Api<Secret> = Api::default_namespaced(env.client());
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "data": {"kept": "YQ==", "over": "b2xk"},
        "stringData": {"over": "new", "plain": "text"}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    assert!(created.string_data.is_none(), "stringData is write-only");
    let data = created.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(
        (text("kept"), text("over"), text("plain")),
        ("a".into(), "new".into(), "text".into())
    );
    // Patches merge it too.
    let patched = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"kept": "b"}})),
        )
        .await
        .unwrap();
    assert!(patched.string_data.is_none());
    assert_eq!(patched.data.unwrap()["kept"].0, b"b");
}
