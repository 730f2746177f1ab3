//! CEL validation rules (`x-kubernetes-validations`) over real HTTP with kube-rs: a CRD with
//! rules is installed on a `TestEnv`, and the 422 `Status` bodies (reason, causes, message) are
//! checked against kube-apiserver's wording.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use capi_testkit::env::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::response::Status;
use serde_json::{Value, json};

fn crd(name_suffix: &str, spec_schema: Value) -> CustomResourceDefinition {
    let plural = format!("widgets{name_suffix}");
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": format!("widget{name_suffix}"),
                "kind": format!("Widget{name_suffix}"), "listKind": format!("Widget{name_suffix}List")},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec_schema
                }}}
            }]
        }
    }))
    .unwrap()
}

fn spec_schema() -> Value {
    json!({
        "type": "object",
        "required": ["mode"],
        "x-kubernetes-validations": [
            {"rule": "self.mode != 'B' || has(self.replicas)", "message": "mode B needs replicas",
                "fieldPath": ".replicas", "reason": "FieldValueRequired"},
            {"rule": "!has(self.replicas) || self.replicas <= 5",
                "messageExpression": "'replicas must be at most 5, got ' + string(self.replicas)"}
        ],
        "properties": {
            "mode": {"type": "string", "enum": ["A", "B"]},
            "replicas": {"type": "integer"},
            "cluster": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "cluster is immutable"}]},
            "hosts": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [
                {"rule": "self.all(h, h.endsWith('.example.com'))"}]}
        }
    })
}

fn resource() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

async fn env() -> (TestEnv, Api<DynamicObject>) {
    let env = TestEnv::builder()
        .crds([crd("", spec_schema())])
        .start()
        .await
        .unwrap();
    let api = Api::namespaced_with(env.client(), "default", &resource());
    (env, api)
}

fn status(err: kube::Error) -> Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other}"),
    }
}

/// `(field, reason, message)` of each cause.
fn causes(s: &Status) -> Vec<(String, String, String)> {
    s.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.reason.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn owned(c: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    c.iter()
        .map(|(f, r, m)| ((*f).to_owned(), (*r).to_owned(), (*m).to_owned()))
        .collect()
}

#[tokio::test]
async fn failing_rules_are_422_invalid_with_upstream_causes() {
    let (_env, api) = env().await;
    let pp = PostParams::default();
    api.create(&pp, &widget("ok", json!({"mode": "B", "replicas": 2})))
        .await
        .unwrap();

    let s = status(
        api.create(
            &pp,
            &widget(
                "w1",
                json!({"mode": "A", "replicas": 9, "hosts": ["a.example.com", "b.other"]}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert_eq!(
        causes(&s),
        owned(&[
            (
                "spec",
                "FieldValueInvalid",
                "Invalid value: \"object\": replicas must be at most 5, got 9"
            ),
            (
                "spec.hosts",
                "FieldValueInvalid",
                "Invalid value: \"array\": failed rule: self.all(h, h.endsWith('.example.com'))"
            ),
        ])
    );
    assert_eq!(
        s.message,
        "Widget.example.com \"w1\" is invalid: [spec: Invalid value: \"object\": replicas must be at most 5, got 9, spec.hosts: Invalid value: \"array\": failed rule: self.all(h, h.endsWith('.example.com'))]"
    );

    // reason + fieldPath.
    let s = status(
        api.create(&pp, &widget("w2", json!({"mode": "B"})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        causes(&s),
        owned(&[(
            "spec.replicas",
            "FieldValueRequired",
            "Required value: mode B needs replicas"
        )])
    );
    assert_eq!(
        s.message,
        "Widget.example.com \"w2\" is invalid: spec.replicas: Required value: mode B needs replicas"
    );
}

#[tokio::test]
async fn blocking_errors_skip_the_rules() {
    let (_env, api) = env().await;
    let s = status(
        api.create(
            &PostParams::default(),
            &widget("w", json!({"mode": "C", "replicas": 9})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        causes(&s),
        owned(&[
            (
                "spec.mode",
                "FieldValueNotSupported",
                "Unsupported value: \"C\": supported values: \"A\", \"B\""
            ),
            (
                "<nil>",
                "FieldValueInvalid",
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
            ),
        ])
    );
}

#[tokio::test]
async fn transition_rules_apply_to_updates() {
    let (_env, api) = env().await;
    api.create(
        &PostParams::default(),
        &widget("t", json!({"mode": "A", "cluster": "c1"})),
    )
    .await
    .unwrap();
    // Unchanged: fine; a merge patch changing it: 422.
    let pp = PatchParams::default();
    api.patch("t", &pp, &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    let s = status(
        api.patch("t", &pp, &Patch::Merge(json!({"spec": {"cluster": "c2"}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(
        causes(&s),
        owned(&[(
            "spec.cluster",
            "FieldValueInvalid",
            "Invalid value: \"string\": cluster is immutable"
        )])
    );
    // A replace keeping the value passes.
    let mut current = api.get("t").await.unwrap();
    current.data["spec"]["replicas"] = json!(3);
    api.replace("t", &PostParams::default(), &current)
        .await
        .unwrap();
}

#[tokio::test]
async fn rules_that_do_not_compile_reject_the_crd() {
    let env = TestEnv::builder().start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let bad = crd(
        "bad",
        json!({"type": "object", "properties": {"replicas": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.replicas >"}]}),
    );
    let s = status(crds.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    let c = causes(&s);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0].0,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert_eq!(c[0].1, "FieldValueInvalid");
    assert!(
        c[0].2.starts_with(
            "Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas >\", Message:\"\""
        ) && c[0].2.contains(": compilation failed: ERROR: <input>:1:"),
        "{}",
        c[0].2
    );
    assert!(
        s.message.starts_with("CustomResourceDefinition.apiextensions.k8s.io \"widgetsbad.example.com\" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "),
        "{}",
        s.message
    );
    // The same CRD with a rule that compiles is accepted.
    let good = crd(
        "bad",
        json!({"type": "object", "properties": {"replicas": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.replicas > 0"}]}),
    );
    crds.create(&PostParams::default(), &good).await.unwrap();
}
