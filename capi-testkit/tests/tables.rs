//! `Table` answers (kubectl get): watches in Table form, as `kubectl get -w` asks for them, with
//! the column definitions in the first event only.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use capi_testkit::env::TestEnv;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"a": "1", "b": "2"}}))
        .unwrap()
}

#[tokio::test]
async fn a_table_watch_sends_the_columns_once() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    let rv = api
        .create(&PostParams::default(), &configmap("a"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let request = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0&timeoutSeconds=1")
        .header("Accept", TABLE)
        .body(kube::client::Body::empty())
        .unwrap();
    let watch = env.client().send(request).await.unwrap();
    api.create(&PostParams::default(), &configmap("b"))
        .await
        .unwrap();
    let bytes = watch.into_body().collect().await.unwrap().to_bytes();
    let events: Vec<Value> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let (first, second) = (&events[0]["object"], &events[1]["object"]);
    assert_eq!(
        (&events[0]["type"], &first["kind"]),
        (&json!("ADDED"), &json!("Table"))
    );
    assert!(
        first["columnDefinitions"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(first["rows"][0]["cells"][0], "a");
    assert_eq!(first["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(first["metadata"]["resourceVersion"], rv);
    assert_eq!(second["columnDefinitions"], Value::Null);
    assert_eq!(second["rows"][0]["cells"][0], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_one_header() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &configmap("a"))
        .await
        .unwrap();
    let (mut watch, mut rx) =
        support::kubectl_lines(&env.kubeconfig_path(), &["get", "configmaps", "-w"]);
    let next = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        let line = rx.try_recv();
        line.ok()
    };
    // The header and the listed object, then wait until kubectl watches.
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lines.len() < 2 || env.faults().open_watches(Some("configmaps")) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl printed {lines:?}"
        );
        match next(&mut rx) {
            Some(l) => lines.push(l),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    api.create(&PostParams::default(), &configmap("b"))
        .await
        .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    lines.push(line);
    let _ = watch.kill();
    let _ = watch.wait();
    let words: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0][0], "NAME", "{lines:?}");
    assert_eq!(words[1][0], "a", "{lines:?}");
    assert_eq!(words[2][0], "b", "one header only: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_the_built_in_printers_columns() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::start().await.unwrap();
    let manifests = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
type: Opaque
stringData: {k: v}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: l}
spec: {holderIdentity: me}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: User, name: alice}]
"#;
    let kubeconfig = env.kubeconfig_path();
    let run = move |args: &[&str], stdin: Option<&str>| {
        let (ok, out) = support::kubectl(&kubeconfig, args, stdin);
        assert!(ok, "{out}");
        out
    };
    tokio::task::spawn_blocking(move || {
        run(&["apply", "-f", "-"], Some(manifests));
        let header = |kind: &str| -> (Vec<String>, Vec<String>) {
            let out = run(&["get", kind], None);
            let mut lines = out.lines().map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<String>>()
            });
            (
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
            )
        };
        let (h, row) = header("configmaps");
        assert_eq!(h, ["NAME", "DATA", "AGE"]);
        assert_eq!(row[..2], ["cm".to_owned(), "2".to_owned()]);
        let (h, row) = header("secrets");
        assert_eq!(h, ["NAME", "TYPE", "DATA", "AGE"]);
        assert_eq!(
            row[..3],
            ["s".to_owned(), "Opaque".to_owned(), "1".to_owned()]
        );
        assert_eq!(header("namespaces").0, ["NAME", "STATUS", "AGE"]);
        let (h, row) = header("leases");
        assert_eq!(h, ["NAME", "HOLDER", "AGE"]);
        assert_eq!(row[..2], ["l".to_owned(), "me".to_owned()]);
        assert_eq!(header("roles").0, ["NAME", "CREATED AT"]);
        let (h, row) = header("rolebindings");
        assert_eq!(h, ["NAME", "ROLE", "AGE"]);
        assert_eq!(row[..2], ["rb".to_owned(), "Role/r".to_owned()]);
        let wide = run(&["get", "rolebindings", "-o", "wide"], None);
        assert!(
            wide.lines().next().unwrap_or_default().contains("USERS"),
            "{wide}"
        );
        assert!(wide.contains("alice"), "{wide}");
    })
    .await
    .unwrap();
}

/// The ConfigMap table's columns are what kube-apiserver 1.36 answered in the golden
/// transcripts (skipped where they are absent).
#[tokio::test]
async fn the_configmap_table_matches_the_golden_transcript() {
    let Some(golden) = support::golden("builtins.json") else {
        return;
    };
    let recorded = golden["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["response"]["body"])
        .find(|b| b["kind"] == "Table")
        .unwrap()
        .clone();
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &configmap("cm"))
        .await
        .unwrap();
    let (_, ours) = support::get(&env, "/api/v1/namespaces/default/configmaps", TABLE).await;
    assert_eq!(ours["columnDefinitions"], recorded["columnDefinitions"]);
    assert_eq!(
        ours["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        recorded["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    assert_eq!(ours["rows"][0]["cells"], json!(["cm", 2, "0s"]));
}
