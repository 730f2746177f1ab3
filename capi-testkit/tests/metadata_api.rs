//! The metadata API through kube-rs: `get_metadata`, `list_metadata`, `watch_metadata` and a
//! watcher of `PartialObjectMeta` get `PartialObjectMetadata` objects (metadata only), as
//! kube-apiserver answers them; asking for the list form of one object is a 406.

#![allow(clippy::unwrap_used)]

mod support;

use capi_testkit::env::TestEnv;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "x"}}, "data": {"secret": "not in metadata"}})).unwrap()
}

#[tokio::test]
async fn metadata_calls_get_partial_object_metadata() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &configmap("a"))
        .await
        .unwrap();

    let one = api.get_metadata("a").await.unwrap();
    let types = one.types.clone().unwrap();
    assert_eq!(
        (types.kind.as_str(), types.api_version.as_str()),
        ("PartialObjectMetadata", "meta.k8s.io/v1")
    );
    assert_eq!(one.metadata.labels.unwrap()["app"], "x");

    let list = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].types.as_ref().unwrap().kind,
        "PartialObjectMetadata"
    );
    assert!(list.metadata.resource_version.is_some());

    // On the wire: nothing but the metadata.
    let (code, body) = support::get(
        &env,
        "/api/v1/namespaces/default/configmaps/a",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["kind", "apiVersion", "metadata"]
    );
    // An empty list's items are null, as Go encodes them; kube-rs reads that as none.
    let (code, body) = support::get(
        &env,
        "/api/v1/namespaces/kube-system/configmaps",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(
        (code, &body["kind"], &body["items"]),
        (200, &json!("PartialObjectMetadataList"), &Value::Null)
    );
    let none = Api::<ConfigMap>::namespaced(env.client(), "kube-system")
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    assert!(none.items.is_empty());
    // The list form of one object is refused.
    let (code, body) = support::get(
        &env,
        "/api/v1/namespaces/default/configmaps/a",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!((code, &body["reason"]), (406, &json!("NotAcceptable")));
    assert_eq!(
        body["message"],
        "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)"
    );

    // A metadata watch: events carry metadata only.
    let rv = list.metadata.resource_version.unwrap();
    let mut events = api
        .watch_metadata(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("b"))
        .await
        .unwrap();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Added(o)) => {
            assert_eq!(o.metadata.name.as_deref(), Some("b"));
            assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata");
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn a_metadata_watcher_reflects_the_objects() {
    let env = TestEnv::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &configmap(name))
            .await
            .unwrap();
    }
    // kube 5: an Api of PartialObjectMeta makes metadata-only requests.
    let metadata: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(env.client());
    let mut names: Vec<String> = watcher(metadata, watcher::Config::default())
        .applied_objects()
        .take(2)
        .map(|o| {
            let o = o.unwrap();
            // What the server sent, not a full ConfigMap read as one.
            assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata");
            o.metadata.name.unwrap()
        })
        .collect()
        .await;
    names.sort();
    assert_eq!(names, ["a", "b"]);
}
