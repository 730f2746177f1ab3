//! Request options over real HTTP, checked as kube-apiserver 1.36's handlers check them before
//! touching the object: `fieldManager`, `dryRun`, `fieldValidation` and `force` on writes,
//! `propagationPolicy` on deletes, `resourceVersionMatch` and `sendInitialEvents` on lists and
//! watches, each refused as a 422 on the options kind (`CreateOptions.meta.k8s.io ""`). A watch
//! from resourceVersion 0 streams its initial events and ends them with the
//! `initial-events-end` bookmark, as the WatchList defaulting does upstream; kube-rs and kubectl
//! see all of it.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use capi_testkit::env::TestEnv;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};
use support::send;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
}

/// The 422's message, after checking the Status is on the options kind with those causes.
fn refused(reply: (u16, Value), options_kind: &str, causes: &[(&str, &str)]) -> String {
    let (code, body) = reply;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    assert_eq!(body["details"]["kind"], options_kind, "{body}");
    assert_eq!(body["details"]["group"], "meta.k8s.io", "{body}");
    assert!(body["details"].get("name").is_none(), "{body}");
    let got: Vec<(String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = causes
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    assert_eq!(got, want, "{body}");
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn write_options_are_checked_before_the_object() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let long = "m".repeat(129);

    let reply = send(
        &env,
        "POST",
        &format!("{CMS}?fieldManager={long}"),
        "application/json",
        &configmap("c1"),
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "CreateOptions",
            &[("fieldManager", "FieldValueTooLong")]
        ),
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
    );
    // Checked before the body is read: a body that is not even JSON gets the same answer.
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{CMS}?dryRun=Some"))
        .header("Content-Type", "application/json")
        .body(kube::client::Body::from(b"{not json".to_vec()))
        .unwrap();
    let resp = env.client().send(request).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\""
    );

    // 128 bytes is the limit, not past it.
    let reply = send(
        &env,
        "POST",
        &format!("{CMS}?fieldManager={}", &long[..128]),
        "application/json",
        &configmap("c1"),
    )
    .await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    let managers = reply.1["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(managers[0]["manager"], long[..128]);

    let mut stored = reply.1.clone();
    stored["data"]["a"] = json!("c");
    let reply = send(
        &env,
        "PUT",
        &format!("{CMS}/c1?fieldValidation=Loose"),
        "application/json",
        &stored,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "UpdateOptions",
            &[("fieldValidation", "FieldValueNotSupported")]
        ),
        "UpdateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    // A control character in the manager, at its byte offset.
    let reply = send(
        &env,
        "PUT",
        &format!("{CMS}/c1?fieldManager=%C3%A9%07"),
        "application/json",
        &stored,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "UpdateOptions",
            &[("fieldManager", "FieldValueInvalid")]
        ),
        "UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"é\\a\": invalid character U+0007 (at position 2)"
    );

    // force belongs to apply patches; even force=false is refused on a merge patch.
    let reply = send(
        &env,
        "PATCH",
        &format!("{CMS}/c1?force=false&dryRun=Later"),
        "application/merge-patch+json",
        &json!({"data": {"a": "d"}}),
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "PatchOptions",
            &[
                ("force", "FieldValueForbidden"),
                ("dryRun", "FieldValueNotSupported")
            ]
        ),
        "PatchOptions.meta.k8s.io \"\" is invalid: [force: Forbidden: may not be specified for non-apply patch, dryRun: Unsupported value: []string{\"Later\"}: supported values: \"All\"]"
    );
    let reply = send(
        &env,
        "PATCH",
        &format!("{CMS}/c1?fieldManager="),
        "application/apply-patch+yaml",
        &configmap("c1"),
    )
    .await;
    refused(
        reply,
        "PatchOptions",
        &[("fieldManager", "FieldValueRequired")],
    );
    // Nothing of the refused writes landed.
    let (code, now) = send(
        &env,
        "GET",
        &format!("{CMS}/c1"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(now["data"]["a"], "b");
    assert_eq!(
        now["metadata"]["resourceVersion"],
        stored["metadata"]["resourceVersion"]
    );

    // Reads take no write options: a dryRun on a GET is ignored, as upstream ignores it.
    let (code, _) = send(
        &env,
        "GET",
        &format!("{CMS}/c1?dryRun=Some"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(code, 200);

    // Through kube-rs (which refuses over-long managers itself): its typed error carries the
    // same Status.
    let api: Api<ConfigMap> = Api::default_namespaced(env.client().clone());
    let params = PostParams {
        field_manager: Some("tab\tbed".to_owned()),
        ..PostParams::default()
    };
    let cm: ConfigMap = serde_json::from_value(configmap("c2")).unwrap();
    match api.create(&params, &cm).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert_eq!(status.reason, "Invalid");
            assert_eq!(
                status.message,
                "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"tab\\tbed\": invalid character U+0009 (at position 3)"
            );
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_and_list_options_are_checked() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let (code, _) = send(&env, "POST", CMS, "application/json", &configmap("c1")).await;
    assert_eq!(code, 201);

    let reply = send(
        &env,
        "DELETE",
        &format!("{CMS}/c1"),
        "application/json",
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Cascade"}),
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "DeleteOptions",
            &[("propagationPolicy", "FieldValueNotSupported")]
        ),
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Cascade\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    let reply = send(
        &env,
        "DELETE",
        &format!("{CMS}/c1"),
        "application/json",
        &json!({"orphanDependents": true, "propagationPolicy": "Background", "dryRun": ["Soon"]}),
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "DeleteOptions",
            &[
                ("propagationPolicy", "FieldValueInvalid"),
                ("dryRun", "FieldValueNotSupported")
            ]
        ),
        "DeleteOptions.meta.k8s.io \"\" is invalid: [propagationPolicy: Invalid value: \"Background\": orphanDependents and deletionPropagation cannot be both set, dryRun: Unsupported value: []string{\"Soon\"}: supported values: \"All\"]"
    );
    // Collection deletes check their list options first.
    let reply = send(
        &env,
        "DELETE",
        &format!("{CMS}?resourceVersionMatch=Exact"),
        "application/json",
        &Value::Null,
    )
    .await;
    refused(
        reply,
        "ListOptions",
        &[("resourceVersionMatch", "FieldValueForbidden")],
    );
    let (code, _) = send(
        &env,
        "GET",
        &format!("{CMS}/c1"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(code, 200, "the refused deletes removed nothing");

    let reply = send(
        &env,
        "GET",
        &format!("{CMS}?resourceVersion=0&resourceVersionMatch=Exact&continue=x"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "ListOptions",
            &[
                ("resourceVersionMatch", "FieldValueForbidden"),
                ("resourceVersionMatch", "FieldValueForbidden")
            ]
        ),
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided, resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"]"
    );
    let reply = send(
        &env,
        "GET",
        &format!("{CMS}?resourceVersion=1&resourceVersionMatch=Newest"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "ListOptions",
            &[("resourceVersionMatch", "FieldValueNotSupported")]
        ),
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""
    );
    let reply = send(
        &env,
        "GET",
        &format!("{CMS}?sendInitialEvents=true"),
        "application/json",
        &Value::Null,
    )
    .await;
    refused(
        reply,
        "ListOptions",
        &[("sendInitialEvents", "FieldValueForbidden")],
    );
    let reply = send(
        &env,
        "GET",
        &format!("{CMS}?watch=true&resourceVersion=5&sendInitialEvents=true"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "ListOptions",
            &[("resourceVersionMatch", "FieldValueForbidden")]
        ),
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    );
    let reply = send(
        &env,
        "GET",
        &format!("{CMS}?watch=true&resourceVersionMatch=NotOlderThan"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(
        refused(
            reply,
            "ListOptions",
            &[("resourceVersionMatch", "FieldValueForbidden")]
        ),
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    );
}

#[tokio::test]
async fn watches_from_zero_end_their_initial_events_with_a_bookmark() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client().clone());
    for name in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(configmap(name)).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    // kube-rs's WatchParams allow bookmarks by default.
    let mut events = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while let Some(e) = events.try_next().await.unwrap() {
        match e {
            WatchEvent::Added(cm) => seen.push(cm.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true"),
                    "{:?}",
                    b.metadata.annotations
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b"]);

    // Without bookmarks allowed, the same watch has only the objects, then the live events.
    let mut events = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    for _ in 0..2 {
        assert!(matches!(
            events.next().await,
            Some(Ok(WatchEvent::Added(_)))
        ));
    }
    let cm: ConfigMap = serde_json::from_value(configmap("c")).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.metadata.name.as_deref(), Some("c")),
        other => panic!("expected the new object, got {other:?}"),
    }

    // sendInitialEvents=false from no resourceVersion: only what happens from now on.
    let request = http::Request::builder()
        .uri(format!("{CMS}?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"))
        .body(kube::client::Body::empty())
        .unwrap();
    let watch = env.client().send(request).await.unwrap();
    assert_eq!(watch.status().as_u16(), 200);
    let cm: ConfigMap = serde_json::from_value(configmap("d")).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let bytes = watch.into_body().collect().await.unwrap().to_bytes();
    let frames: Vec<(String, String)> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let e: Value = serde_json::from_slice(l).unwrap();
            (
                e["type"].as_str().unwrap().to_owned(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(frames, [("ADDED".to_owned(), "d".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_the_refusal() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::builder().start().await.unwrap();
    let kubeconfig = env.kubeconfig_path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["create", "configmap", "c1", "--from-literal=a=b"])
            .arg(format!("--field-manager={}", "m".repeat(129)))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"),
        "{stderr}"
    );
}

async fn post(env: &TestEnv, path: &str, body: &Value) -> support::Reply {
    support::request(env, "POST", path, "application/json", body).await
}

/// A built-in kind's body is decoded into its Go type: fields the type does not declare are
/// dropped with a warning each (`Warn`, the default), silently (`Ignore`) or refused as a strict
/// decoding error (`Strict`).
#[tokio::test]
async fn built_in_kinds_drop_the_fields_their_types_do_not_declare() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "spec": {"x": 1}, "metadata": {"name": "c", "bogus": true}, "data": {"free": "form"}});
    let support::Reply {
        code,
        warnings,
        body: created,
    } = post(&env, CMS, &body).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"spec\\\"\"",
            "299 - \"unknown field \\\"metadata.bogus\\\"\""
        ]
    );
    assert!(created.get("spec").is_none() && created["metadata"].get("bogus").is_none());
    assert_eq!(created["data"], json!({"free": "form"}));

    let support::Reply { code, warnings, .. } = post(
        &env,
        &format!("{CMS}?fieldValidation=Ignore"),
        &json!({"metadata": {"name": "d"}, "extra": 1}),
    )
    .await;
    assert_eq!((code, warnings.len()), (201, 0));
    let support::Reply {
        code, body: status, ..
    } = post(
        &env,
        &format!("{CMS}?fieldValidation=Strict"),
        &json!({"metadata": {"name": "e"}, "extra": 1}),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"extra\""
    );

    // Nested fields, list items included.
    let binding = json!({
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r", "typo": "x"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "User", "name": "v", "nmae": "w"}],
    });
    let support::Reply {
        code,
        warnings,
        body: created,
    } = post(
        &env,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        &binding,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"roleRef.typo\\\"\"",
            "299 - \"unknown field \\\"subjects[1].nmae\\\"\""
        ]
    );
    assert_eq!(created["subjects"][1], json!({"kind": "User", "name": "v"}));
}
