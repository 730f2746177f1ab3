//! CEL rules are type-checked when a CRD is written, as kube-apiserver checks them with cel-go:
//! an ill-typed rule, a rule that is not a `bool` and a `messageExpression` that is not a
//! `string` refuse the CRD (create and update) with a 422 `Invalid` worded as upstream's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use capi_testkit::env::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::core::response::Status;
use serde_json::{Value, json};

fn crd(spec_schema: Value) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                "listKind": "GadgetList"},
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

fn spec(rules: Value) -> Value {
    json!({"type": "object",
        "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}},
        "x-kubernetes-validations": rules})
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

const PREFIX: &str = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";

#[tokio::test]
async fn ill_typed_rules_reject_the_crd_with_cel_go_errors() {
    let env = TestEnv::builder().start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let bad = crd(spec(json!([
        {"rule": "self.replicas + 'a' == 'b'"},
        {"rule": "self.replicas"},
        {"rule": "self.replicas > 0", "messageExpression": "self.replicas"}
    ])));
    let s = status(crds.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let rule = |r: &str, me: &str| {
        format!(
            "apiextensions.ValidationRule{{Rule:\"{r}\", Message:\"\", MessageExpression:\"{me}\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}"
        )
    };
    let want = vec![
        (
            format!("{PREFIX}[0].rule"),
            "FieldValueInvalid".to_owned(),
            format!(
                "Invalid value: {}: compilation failed: ERROR: <input>:1:15: found no matching overload for '_+_' applied to '(int, string)'\n | self.replicas + 'a' == 'b'\n | ..............^",
                rule("self.replicas + 'a' == 'b'", "")
            ),
        ),
        (
            format!("{PREFIX}[1].rule"),
            "FieldValueInvalid".to_owned(),
            format!(
                "Invalid value: {}: cel expression must evaluate to a bool",
                rule("self.replicas", "")
            ),
        ),
        (
            format!("{PREFIX}[2].messageExpression"),
            "FieldValueInvalid".to_owned(),
            format!(
                "Invalid value: {}: messageExpression must evaluate to a string",
                rule("self.replicas > 0", "self.replicas")
            ),
        ),
    ];
    assert_eq!(causes(&s), want);
    assert!(
        s.message.starts_with(
            "CustomResourceDefinition.apiextensions.k8s.io \"gadgets.example.com\" is invalid: "
        ),
        "{}",
        s.message
    );

    // Well typed, the CRD is accepted; an update that breaks a rule's types is refused.
    let good = crd(spec(json!([
        {"rule": "self.replicas + 1 > 0 && self.name.size() < 10",
            "messageExpression": "'bad name ' + self.name"}
    ])));
    let created = crds.create(&PostParams::default(), &good).await.unwrap();
    let mut broken = crd(spec(json!([{"rule": "self.name.size() > 'x'"}])));
    broken.metadata.resource_version = created.metadata.resource_version.clone();
    let s = status(
        crds.replace("gadgets.example.com", &PostParams::default(), &broken)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        causes(&s),
        vec![(
            format!("{PREFIX}[0].rule"),
            "FieldValueInvalid".to_owned(),
            format!(
                "Invalid value: {}: compilation failed: ERROR: <input>:1:18: found no matching overload for '_>_' applied to '(int, string)'\n | self.name.size() > 'x'\n | .................^",
                rule("self.name.size() > 'x'", "")
            ),
        )]
    );
}
