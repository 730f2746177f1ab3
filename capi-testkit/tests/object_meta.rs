//! ObjectMeta validation over real HTTP, as kube-apiserver 1.36 words it: owner references,
//! finalizers, managedFields and the update-only rules come back as one 422 Invalid (merged with
//! a custom resource's schema errors), the core types refuse unqualified finalizers that custom
//! resources are only warned about, and exact duplicate owner references are dropped with a
//! warning. A proptest throws random owner reference and finalizer shapes at the server.

#![allow(clippy::unwrap_used)]

mod support;

use capi_testkit::env::TestEnv;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Reply, request as send};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";
const INVALID: &str = "FieldValueInvalid";
const FORBIDDEN: &str = "FieldValueForbidden";
const TOO_LONG: &str = "FieldValueTooLong";
const PREFER: &str = "prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers";
const UNQUALIFIED: &str = "name is neither a standard finalizer name nor is it fully qualified";

async fn post(env: &TestEnv, path: &str, body: &Value) -> Reply {
    send(env, "POST", path, "application/json", body).await
}

async fn merge(env: &TestEnv, path: &str, body: &Value) -> Reply {
    send(env, "PATCH", path, "application/merge-patch+json", body).await
}

/// A `Widget` CRD (`example.com/v1`, namespaced) whose `spec.size` is an integer.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}
            }}}]
        }
    })
}

async fn env() -> TestEnv {
    let env = TestEnv::builder().start().await.unwrap();
    let r = post(
        &env,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &widget_crd(),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    env
}

fn cm(metadata: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}})
}

fn widget(metadata: Value, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata, "spec": spec})
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "name": name, "uid": uid})
}

/// Asserts a 422 Invalid for `qualified "name"` with exactly these `(field, reason, message)`
/// causes, and the message kube-apiserver builds from them.
fn assert_invalid(r: &Reply, qualified: &str, name: &str, causes: &[(&str, &str, &str)]) {
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid", "{}", r.body);
    let want: Vec<Value> = causes
        .iter()
        .map(|(f, reason, m)| json!({"field": f, "reason": reason, "message": m}))
        .collect();
    assert_eq!(r.body["details"]["causes"], json!(want), "{}", r.body);
    let mut parts: Vec<String> = Vec::new();
    for (f, _, m) in causes {
        let p = format!("{f}: {m}");
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    let list = match parts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    assert_eq!(
        r.body["message"],
        format!("{qualified} \"{name}\" is invalid: {list}")
    );
}

#[tokio::test]
async fn configmap_owner_reference_and_finalizer_errors_are_one_422() {
    let env = env().await;
    let mut a = owner("Secret", "a", "u1");
    a["controller"] = json!(true);
    let mut b = owner("Secret", "b", "u2");
    b["controller"] = json!(true);
    let meta = json!({
        "name": "c",
        "labels": {"ok": "v"},
        "ownerReferences": [owner("ConfigMap", "o", ""), a, b],
        "finalizers": ["mine", "bad name"],
    });
    let r = post(&env, CMS, &cm(meta)).await;
    let list = r#"[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":""},{"apiVersion":"v1","kind":"Secret","name":"a","uid":"u1","controller":true},{"apiVersion":"v1","kind":"Secret","name":"b","uid":"u2","controller":true}]"#;
    let controllers = format!(
        "Invalid value: {list}: Only one reference can have Controller set to true. Found \"true\" in references for Secret/a and Secret/b"
    );
    let bad_name = "Invalid value: \"bad name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let unqualified = |v: &str| format!("Invalid value: \"{v}\": {UNQUALIFIED}");
    assert_invalid(
        &r,
        "ConfigMap",
        "c",
        &[
            (
                "metadata.ownerReferences.uid",
                INVALID,
                "Invalid value: \"\": must not be empty",
            ),
            ("metadata.ownerReferences", INVALID, &controllers),
            ("metadata.finalizers", INVALID, bad_name),
            ("metadata.finalizers[0]", INVALID, &unqualified("mine")),
            ("metadata.finalizers[1]", INVALID, &unqualified("bad name")),
        ],
    );
    assert_eq!(r.body["details"]["kind"], "ConfigMap");
}

#[tokio::test]
async fn kube_rs_sees_an_invalid_owner_reference_as_a_422_invalid() {
    let env = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let bad: ConfigMap = serde_json::from_value(cm(json!({
        "name": "ev-owned",
        "ownerReferences": [owner("Event", "e", "u1")],
    })))
    .unwrap();
    let err = cms.create(&PostParams::default(), &bad).await.unwrap_err();
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        r#"ConfigMap "ev-owned" is invalid: metadata.ownerReferences: Invalid value: {"apiVersion":"v1","kind":"Event","name":"e","uid":"u1"}: /v1, Kind=Event is disallowed from being an owner"#
    );
    // Valid owners and standard or qualified finalizers are accepted.
    let good: ConfigMap = serde_json::from_value(cm(json!({
        "name": "owned",
        "ownerReferences": [owner("Secret", "s", "u1")],
        "finalizers": ["example.com/keep", "orphan"],
    })))
    .unwrap();
    let created = cms.create(&PostParams::default(), &good).await.unwrap();
    assert_eq!(
        created.metadata.finalizers.unwrap(),
        ["example.com/keep", "orphan"]
    );
}

#[tokio::test]
async fn custom_resource_metadata_and_schema_errors_come_back_in_one_422() {
    let env = env().await;
    let meta = json!({
        "name": "w",
        "ownerReferences": [{"apiVersion": "apps/", "kind": "Deployment", "uid": "u1"}],
        "finalizers": ["orphan", "foregroundDeletion"],
    });
    let r = post(&env, WIDGETS, &widget(meta, json!({"size": "big"}))).await;
    assert_invalid(
        &r,
        "Widget.example.com",
        "w",
        &[
            (
                "metadata.ownerReferences.apiVersion",
                INVALID,
                "Invalid value: \"apps/\": version must not be empty",
            ),
            (
                "metadata.ownerReferences.name",
                INVALID,
                "Invalid value: \"\": must not be empty",
            ),
            (
                "metadata.finalizers",
                INVALID,
                r#"Invalid value: ["orphan","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set"#,
            ),
            (
                "spec.size",
                "FieldValueTypeInvalid",
                "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
            ),
        ],
    );
    assert_eq!(r.body["details"]["kind"], "Widget");
    assert_eq!(r.body["details"]["group"], "example.com");
}

#[tokio::test]
async fn custom_resources_get_a_warning_for_an_unqualified_finalizer() {
    let env = env().await;
    let meta = json!({"name": "w", "finalizers": ["mine", "example.com/ok"]});
    let r = post(&env, WIDGETS, &widget(meta, json!({}))).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.warnings,
        [format!(
            "299 - \"metadata.finalizers: \\\"mine\\\": {PREFER}\""
        )]
    );
    // An update is warned about the finalizers it adds only.
    let r = merge(
        &env,
        &format!("{WIDGETS}/w"),
        &json!({"metadata": {"finalizers": ["mine", "example.com/ok", "also"]}}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        r.warnings,
        [format!(
            "299 - \"metadata.finalizers: \\\"also\\\": {PREFER}\""
        )]
    );
    // Through kube-rs too: the write succeeds.
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(widget(
        json!({"name": "w2", "finalizers": ["mine"]}),
        json!({}),
    ))
    .unwrap();
    let created = widgets.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.finalizers.unwrap(), ["mine"]);
}

#[tokio::test]
async fn configmaps_refuse_an_unqualified_finalizer_on_update() {
    let env = env().await;
    assert_eq!(post(&env, CMS, &cm(json!({"name": "c"}))).await.code, 201);
    let r = merge(
        &env,
        &format!("{CMS}/c"),
        &json!({"metadata": {"finalizers": ["kubernetes", "mine"]}}),
    )
    .await;
    assert_invalid(
        &r,
        "ConfigMap",
        "c",
        &[(
            "metadata.finalizers[1]",
            INVALID,
            &format!("Invalid value: \"mine\": {UNQUALIFIED}"),
        )],
    );
}

#[tokio::test]
async fn patches_cannot_change_the_uid_name_or_deletion_fields() {
    let env = env().await;
    for (path, body, qualified) in [
        (CMS, cm(json!({"name": "a"})), "ConfigMap"),
        (
            WIDGETS,
            widget(json!({"name": "a"}), json!({})),
            "Widget.example.com",
        ),
    ] {
        assert_eq!(post(&env, path, &body).await.code, 201);
        let url = format!("{path}/a");
        let immutable = |v: &str| format!("Invalid value: {v}: field is immutable");
        let r = merge(&env, &url, &json!({"metadata": {"uid": "other"}})).await;
        let uid = immutable("\"other\"");
        assert_invalid(
            &r,
            qualified,
            "a",
            &[
                ("metadata.uid", INVALID, &uid),
                ("metadata.uid", INVALID, &uid),
            ],
        );
        let r = merge(
            &env,
            &url,
            &json!({"metadata": {"deletionTimestamp": "2030-01-02T03:04:05+01:00", "deletionGracePeriodSeconds": 30}}),
        )
        .await;
        let ts = immutable("\"2030-01-02T02:04:05Z\"");
        let grace = immutable("30");
        assert_invalid(
            &r,
            qualified,
            "a",
            &[
                ("metadata.deletionTimestamp", INVALID, &ts),
                ("metadata.deletionGracePeriodSeconds", INVALID, &grace),
                ("metadata.deletionTimestamp", INVALID, &ts),
                ("metadata.deletionGracePeriodSeconds", INVALID, &grace),
            ],
        );
        let r = send(
            &env,
            "PATCH",
            &url,
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/metadata/name", "value": "b"}]),
        )
        .await;
        let name = immutable("\"b\"");
        // Upstream names the object as the patch left it.
        assert_invalid(
            &r,
            qualified,
            "b",
            &[
                ("metadata.name", INVALID, &name),
                ("metadata.name", INVALID, &name),
            ],
        );
        // Sending back what was read changes nothing and is accepted.
        let r = merge(&env, &url, &json!({"metadata": {"labels": {"x": "y"}}})).await;
        assert_eq!(r.code, 200, "{}", r.body);
        let echo = json!({"metadata": {
            "uid": r.body["metadata"]["uid"],
            "creationTimestamp": "1999-01-01T00:00:00Z",
        }});
        let r2 = merge(&env, &url, &echo).await;
        assert_eq!(r2.code, 200, "{}", r2.body);
        assert_eq!(
            r2.body["metadata"]["creationTimestamp"],
            r.body["metadata"]["creationTimestamp"]
        );
    }
}

#[tokio::test]
async fn a_put_with_another_uid_fails_its_precondition() {
    let env = env().await;
    let created = post(&env, CMS, &cm(json!({"name": "p"}))).await;
    let mut body = created.body.clone();
    let uid = body["metadata"]["uid"].as_str().unwrap().to_owned();
    body["metadata"]["uid"] = json!("not-the-uid");
    let r = send(&env, "PUT", &format!("{CMS}/p"), "application/json", &body).await;
    assert_eq!(r.code, 409, "{}", r.body);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"p\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )
    );
    // PUT can't set a deletionTimestamp either.
    let mut body = created.body.clone();
    body["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
    let r = send(&env, "PUT", &format!("{CMS}/p"), "application/json", &body).await;
    let ts = "Invalid value: \"2030-01-01T00:00:00Z\": field is immutable";
    assert_invalid(
        &r,
        "ConfigMap",
        "p",
        &[
            ("metadata.deletionTimestamp", INVALID, ts),
            ("metadata.deletionTimestamp", INVALID, ts),
        ],
    );
}

#[tokio::test]
async fn no_new_finalizers_on_a_deleting_object_is_still_refused_once_per_check() {
    let env = env().await;
    let meta = json!({"name": "d", "finalizers": ["example.com/hold"]});
    assert_eq!(post(&env, CMS, &cm(meta)).await.code, 201);
    let r = send(
        &env,
        "DELETE",
        &format!("{CMS}/d"),
        "application/json",
        &json!({}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = merge(
        &env,
        &format!("{CMS}/d"),
        &json!({"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}}),
    )
    .await;
    let msg = "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/new\"}";
    assert_invalid(
        &r,
        "ConfigMap",
        "d",
        &[
            ("metadata.finalizers", FORBIDDEN, msg),
            ("metadata.finalizers", FORBIDDEN, msg),
        ],
    );
}

#[tokio::test]
async fn exact_duplicate_owner_references_are_dropped_with_a_warning() {
    let env = env().await;
    let o = owner("Secret", "s", "u1");
    let mut o2 = o.clone();
    o2["blockOwnerDeletion"] = json!(true);
    let r = post(
        &env,
        CMS,
        &cm(json!({"name": "dup", "ownerReferences": [o, o, o2]})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["metadata"]["ownerReferences"], json!([o, o2]));
    assert_eq!(
        r.warnings,
        [
            "299 - \".metadata.ownerReferences contains duplicate entries; API server dedups owner references in 1.20+, and may reject such requests as early as 1.24; please fix your requests; duplicate UID(s) observed: u1\""
        ]
    );
    // A patch is deduplicated after mutating admission, and says so.
    let p = owner("Secret", "t", "u2");
    let r = merge(
        &env,
        &format!("{CMS}/dup"),
        &json!({"metadata": {"ownerReferences": [p, p]}}),
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["ownerReferences"], json!([p]));
    assert_eq!(
        r.warnings,
        [
            "299 - \".metadata.ownerReferences contains duplicate entries after mutating admission happens; API server dedups owner references in 1.20+, and may reject such requests as early as 1.24; please fix your requests; duplicate UID(s) observed: u2\""
        ]
    );
    // Two exact duplicates that both claim to be the controller are one reference.
    let mut c = owner("Secret", "c", "u3");
    c["controller"] = json!(true);
    let r = post(
        &env,
        WIDGETS,
        &widget(json!({"name": "w", "ownerReferences": [c, c]}), json!({})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
}

#[tokio::test]
async fn client_managed_fields_with_a_long_manager_are_refused() {
    let env = env().await;
    let long = "m".repeat(129);
    let meta = json!({"name": "mf", "managedFields": [{
        "manager": long, "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:k": {}}}
    }]});
    let r = post(&env, CMS, &cm(meta)).await;
    assert_invalid(
        &r,
        "ConfigMap",
        "mf",
        &[(
            "metadata.managedFields[0].manager",
            TOO_LONG,
            "Too long: may not be more than 128 bytes",
        )],
    );
    // Entries the field manager can't decode are replaced, not refused.
    let meta = json!({"name": "mf", "managedFields": [{"manager": long, "operation": "Delete"}]});
    let r = post(&env, CMS, &cm(meta)).await;
    assert_eq!(r.code, 201, "{}", r.body);
    // Through kube-rs: an apply with a valid manager still works.
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    cms.patch(
        "mf",
        &PatchParams::apply("tester"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mf"}, "data": {"a": "b"}})),
    )
    .await
    .unwrap();
}

/// A random owner reference: each field from a few valid and invalid values.
fn owner_refs() -> impl Strategy<Value = Value> {
    let api_version = prop::sample::select(vec![
        "",
        "v1",
        "apps/v1",
        "a/b/c",
        "/",
        "example.com/v1",
        "apps/",
    ]);
    let kind = prop::sample::select(vec!["", "ConfigMap", "Event", "Widget"]);
    let name = prop::sample::select(vec!["", "o", "p q"]);
    let uid = prop::sample::select(vec!["", "u1", "u2"]);
    let flag = prop::sample::select(vec![None, Some(true), Some(false)]);
    (api_version, kind, name, uid, flag.clone(), flag).prop_map(|(a, k, n, u, c, b)| {
        let mut r = json!({"apiVersion": a, "kind": k, "name": n, "uid": u});
        if let Some(c) = c {
            r["controller"] = json!(c);
        }
        if let Some(b) = b {
            r["blockOwnerDeletion"] = json!(b);
        }
        r
    })
}

fn finalizer() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "x/y",
        "example.com/f",
        "kubernetes",
        "orphan",
        "foregroundDeletion",
        "mine",
        "",
        "bad name",
        "a/b/c",
        "-x/y",
    ])
}

/// Whether kube-apiserver accepts these owner references and finalizers, written independently
/// of the server's code: exact duplicates dropped first, then every rule.
fn acceptable(refs: &[Value], finalizers: &[&str], core: bool) -> bool {
    let mut kept: Vec<&Value> = Vec::new();
    for r in refs {
        if !kept.contains(&r) {
            kept.push(r);
        }
    }
    let ref_ok = |r: &Value| {
        let s = |k: &str| r[k].as_str().unwrap();
        let version_ok = matches!(s("apiVersion"), "v1" | "apps/v1" | "example.com/v1");
        let banned = s("apiVersion") == "v1" && s("kind") == "Event";
        let filled = [s("kind"), s("name"), s("uid")]
            .iter()
            .all(|v| !v.is_empty());
        version_ok && filled && !banned
    };
    let controllers = kept
        .iter()
        .filter(|r| r["controller"] == json!(true))
        .count();
    let names_ok = finalizers.iter().all(|f| {
        matches!(
            *f,
            "x/y" | "example.com/f" | "kubernetes" | "orphan" | "foregroundDeletion" | "mine"
        )
    });
    let both = finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion");
    let core_ok = !core || !finalizers.contains(&"mine");
    kept.iter().all(|r| ref_ok(r)) && controllers <= 1 && names_ok && !both && core_ok
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_owner_references_and_finalizers_are_accepted_or_refused_like_upstream(
        refs in prop::collection::vec(owner_refs(), 0..4),
        finalizers in prop::collection::vec(finalizer(), 0..4),
        custom in any::<bool>(),
        as_patch in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let env = env().await;
            let meta = json!({"name": "r", "ownerReferences": refs, "finalizers": finalizers});
            let (path, body) = if custom {
                (WIDGETS, widget(json!({"name": "r"}), json!({})))
            } else {
                (CMS, cm(json!({"name": "r"})))
            };
            let r = if as_patch {
                assert_eq!(post(&env, path, &body).await.code, 201);
                merge(&env, &format!("{path}/r"), &json!({"metadata": meta})).await
            } else {
                let mut body = body;
                body["metadata"] = meta;
                post(&env, path, &body).await
            };
            let ok = acceptable(&refs, &finalizers, !custom);
            let expected = match (ok, as_patch) {
                (true, true) => 200,
                (true, false) => 201,
                (false, _) => 422,
            };
            assert_eq!(r.code, expected, "{refs:?} {finalizers:?} custom={custom}: {}", r.body);
            if ok {
                let warned = r.warnings.iter().any(|w| w.contains(PREFER));
                assert_eq!(warned, custom && finalizers.contains(&"mine"), "{:?}", r.warnings);
                // The server keeps serving the object it stored.
                let got = send(&env, "GET", &format!("{path}/r"), "application/json", &Value::Null).await;
                assert_eq!(got.code, 200);
            } else {
                assert_eq!(&r.body["reason"], "Invalid");
                assert!(r.body["details"]["causes"].as_array().is_some_and(|c| !c.is_empty()));
            }
            drop(env);
        });
    }
}
