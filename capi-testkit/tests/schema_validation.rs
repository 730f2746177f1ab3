//! CRD schema validation over real HTTP: a CRD using the OpenAPI keywords kube-apiserver checks
//! is installed on a `TestEnv`, and the 422 Status bodies are compared whole with what
//! kube-apiserver 1.36 sends (reason, details.causes in order, message).

#![allow(clippy::unwrap_used)]

mod support;

use capi_testkit::env::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use support::send;

const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn spec_schema() -> Value {
    json!({
        "type": "object",
        "required": ["mode"],
        "x-kubernetes-validations": [{"rule": "!has(self.replicas) || self.replicas <= 5 || self.mode == 'B'"}],
        "properties": {
            "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {"type": "number", "multipleOf": 0.25, "maximum": 1, "exclusiveMaximum": true},
            "ip": {"type": "string", "format": "ipv4"},
            "tags": {"type": "array", "maxItems": 3, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer"}}}},
            "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "note": {"type": "string"},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": spec_schema(),
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string", "enum": ["Pending", "Ready"]},
                        "observed": {"type": "integer"}
                    }}
                }}}
            }]
        }
    }))
    .unwrap()
}

async fn env() -> TestEnv {
    TestEnv::builder().crds([crd()]).start().await.unwrap()
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// The 422 body kube-apiserver sends for these `(field, reason, message)` causes.
fn invalid(name: &str, causes: &[(&str, &str, &str)]) -> Value {
    let parts: Vec<String> = causes.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
    let list = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Widget.example.com \"{name}\" is invalid: {list}"),
        "reason": "Invalid",
        "details": {
            "name": name, "group": "example.com", "kind": "Widget",
            "causes": causes.iter().map(|(f, r, m)| json!({"reason": r, "message": m, "field": f})).collect::<Vec<_>>()
        },
        "code": 422
    })
}

const CEL_SKIPPED: &str = "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

#[tokio::test]
async fn create_reports_every_keyword_violation_worded_as_kube_apiserver() {
    let env = env().await;
    let bad = widget(
        "w1",
        json!({
            "name": "Abcdefg", "replicas": 0, "ratio": 1.1, "ip": "1.2.3",
            "tags": ["a", "b", "a", "c"],
            "ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}],
            "labels": {"a": "1", "b": "2", "c": "3"},
            "template": {"kind": "ConfigMap"}
        }),
    );
    let (code, body) = send(&env, "POST", WIDGETS, "application/json", &bad).await;
    assert_eq!(code, 422);
    let expected = invalid(
        "w1",
        &[
            (
                "spec.ip",
                "FieldValueTypeInvalid",
                "Invalid value: \"1.2.3\": spec.ip in body must be of type ipv4: \"1.2.3\"",
            ),
            (
                "spec.labels",
                "FieldValueTooMany",
                "Too many: 3: must have at most 2 items",
            ),
            (
                "spec.name",
                "FieldValueTooLong",
                "Too long: may not be more than 5 bytes",
            ),
            (
                "spec.ratio",
                "FieldValueInvalid",
                "Invalid value: 1.1: spec.ratio in body should be a multiple of 0.25",
            ),
            (
                "spec.ratio",
                "FieldValueInvalid",
                "Invalid value: 1.1: spec.ratio in body should be less than 1",
            ),
            (
                "spec.replicas",
                "FieldValueInvalid",
                "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ),
            (
                "spec.tags",
                "FieldValueTooMany",
                "Too many: 4: must have at most 3 items",
            ),
            ("spec.mode", "FieldValueRequired", "Required value"),
            (
                "spec.template.apiVersion",
                "FieldValueRequired",
                "Required value",
            ),
            (
                "spec.ports[1]",
                "FieldValueDuplicate",
                "Duplicate value: map[string]interface {}{\"name\":\"http\"}",
            ),
            (
                "spec.tags[2]",
                "FieldValueDuplicate",
                "Duplicate value: \"a\"",
            ),
            ("<nil>", "FieldValueInvalid", CEL_SKIPPED),
        ],
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn non_blocking_errors_do_not_add_the_cel_cause_and_valid_objects_are_created() {
    let env = env().await;
    let (code, body) = send(
        &env,
        "POST",
        WIDGETS,
        "application/json",
        &widget("w2", json!({"mode": "A", "name": "ab1"})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        invalid(
            "w2",
            &[(
                "spec.name",
                "FieldValueInvalid",
                "Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'"
            )]
        )
    );
    let good = widget(
        "w3",
        json!({"mode": "A", "name": "abc", "replicas": 3, "ratio": 0.75, "ip": "10.0.0.1",
            "tags": ["a", "b"], "ports": [{"name": "http", "port": 80}],
            "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}),
    );
    let (code, body) = send(&env, "POST", WIDGETS, "application/json", &good).await;
    assert_eq!(code, 201, "{body}");
    // Structurally valid, so the CEL rule runs (and fails): worded as cel-go's default message.
    let (code, body) = send(
        &env,
        "POST",
        WIDGETS,
        "application/json",
        &widget("w4", json!({"mode": "A", "replicas": 7})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        invalid(
            "w4",
            &[(
                "spec",
                "FieldValueInvalid",
                "Invalid value: \"object\": failed rule: !has(self.replicas) || self.replicas <= 5 || self.mode == 'B'"
            )]
        )
    );
}

#[tokio::test]
async fn status_writes_validate_the_status_schema_alone() {
    let env = env().await;
    let (code, _) = send(
        &env,
        "POST",
        WIDGETS,
        "application/json",
        &widget("s1", json!({"mode": "A"})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, body) = send(
        &env,
        "PATCH",
        &format!("{WIDGETS}/s1/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Bad", "observed": "x"}}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        invalid(
            "s1",
            &[
                (
                    "status.observed",
                    "FieldValueTypeInvalid",
                    "Invalid value: \"string\": observed in body must be of type integer: \"string\""
                ),
                (
                    "status.phase",
                    "FieldValueNotSupported",
                    "Unsupported value: \"Bad\": supported values: \"Pending\", \"Ready\""
                ),
                ("<nil>", "FieldValueInvalid", CEL_SKIPPED),
            ]
        )
    );
}

#[tokio::test]
async fn unchanged_invalid_fields_are_ratcheted_on_update() {
    let env = env().await;
    let (code, _) = send(
        &env,
        "POST",
        WIDGETS,
        "application/json",
        &widget(
            "r1",
            json!({"mode": "A", "note": "toolong", "tags": ["x", "x"]}),
        ),
    )
    .await;
    // Set duplicates are refused on create whatever the rest.
    assert_eq!(code, 422);
    let (code, _) = send(
        &env,
        "POST",
        WIDGETS,
        "application/json",
        &widget("r1", json!({"mode": "A", "note": "toolong"})),
    )
    .await;
    assert_eq!(code, 201);
    // Tighten the schema: `note` may now hold 3 characters.
    let (code, body) = send(
        &env,
        "PATCH",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        "application/json-patch+json",
        &json!([{"op": "add",
            "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/note/maxLength",
            "value": 3}]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // Changing another field is accepted: the stored, now invalid, note is unchanged.
    let (code, body) = send(
        &env,
        "PATCH",
        &format!("{WIDGETS}/r1"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 2}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // A PUT that keeps it is accepted too.
    let mut put = body.clone();
    put["spec"]["replicas"] = json!(4);
    let (code, body) = send(
        &env,
        "PUT",
        &format!("{WIDGETS}/r1"),
        "application/json",
        &put,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // Changing it to another invalid value is not.
    let (code, body) = send(
        &env,
        "PATCH",
        &format!("{WIDGETS}/r1"),
        "application/merge-patch+json",
        &json!({"spec": {"note": "stilltoolong"}}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        invalid(
            "r1",
            &[
                (
                    "spec.note",
                    "FieldValueTooLong",
                    "Too long: may not be more than 3 bytes"
                ),
                ("<nil>", "FieldValueInvalid", CEL_SKIPPED),
            ]
        )
    );
}
