//! The CEL extension libraries kube-apiserver 1.36 enables for CRD rules (strings version 2,
//! sets, lists version 3, Kubernetes lists `indexOf`) over real HTTP with kube-rs: a CRD using
//! them is installed on a `TestEnv`, and objects that pass and fail them are written, failures
//! checked against kube-apiserver's 422 wording.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use capi_testkit::env::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
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

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "name": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self.lowerAscii() == self && self.split('-').size() <= 3",
                "messageExpression": "'name %s must be lower case with at most 3 parts, has %s'.format([strings.quote(self), string(self.split('-').size())])"}
        ]},
        "path": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self.substring(0, 1) == '/' && !self.endsWith('/')"}
        ]},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [
            {"rule": "sets.contains(['web', 'db', 'cache'], self)",
                "messageExpression": "'unknown tags in %s'.format([self])"},
            {"rule": "self.distinct().size() == self.size()", "message": "tags must be unique"}
        ]},
        "ports": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-validations": [
            {"rule": "self.indexOf(0) == -1 && self.sort() == self",
                "message": "ports must be sorted and non-zero"},
            {"rule": "!sets.intersects(self, [22, 23])",
                "messageExpression": "'port %d is reserved'.format([self.filter(p, p == 22 || p == 23)[0]])"}
        ]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
            "x-kubernetes-validations": [
                {"rule": "self.all(k, v, k.startsWith('app.') && v.size() <= 5)",
                    "messageExpression": "'bad labels: ' + self.transformList(k, v, !k.startsWith('app.') || v.size() > 5, k).sort().join(', ')"}
            ]},
        "weight": {"type": "number", "x-kubernetes-validations": [
            {"rule": "self < 1000.0",
                "messageExpression": "'weight %.2f exceeds %e'.format([self, 1000.0])"}
        ]}
    }})
}

fn status(err: kube::Error) -> Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other}"),
    }
}

fn gadget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

#[tokio::test]
async fn extension_libraries_validate_objects_as_kube_apiserver_does() {
    let env = TestEnv::builder()
        .crds([crd(schema())])
        .start()
        .await
        .unwrap();
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar);
    let pp = PostParams::default();

    let good = json!({"name": "my-gadget", "path": "/srv/data", "tags": ["web", "db"],
        "ports": [80, 443, 8080], "weight": 12.5, "labels": {"app.tier": "web"}});
    api.create(&pp, &gadget("good", good)).await.unwrap();

    let cases = [
        (
            json!({"name": "My-Gadget"}),
            "spec.name: Invalid value: \"string\": name \"My-Gadget\" must be lower case with at most 3 parts, has 2",
        ),
        (
            json!({"name": "a-b-c-d"}),
            "spec.name: Invalid value: \"string\": name \"a-b-c-d\" must be lower case with at most 3 parts, has 4",
        ),
        (
            json!({"path": "srv/"}),
            "spec.path: Invalid value: \"string\": failed rule: self.substring(0, 1) == '/' && !self.endsWith('/')",
        ),
        (
            json!({"path": ""}),
            "spec.path: Invalid value: \"string\": index out of range: 1 evaluating rule: self.substring(0, 1) == '/' && !self.endsWith('/')",
        ),
        (
            json!({"tags": ["web", "mail"]}),
            "spec.tags: Invalid value: \"array\": unknown tags in [\"web\", \"mail\"]",
        ),
        (
            json!({"tags": ["db", "db"]}),
            "spec.tags: Invalid value: \"array\": tags must be unique",
        ),
        (
            json!({"ports": [443, 80]}),
            "spec.ports: Invalid value: \"array\": ports must be sorted and non-zero",
        ),
        (
            json!({"ports": [22, 80]}),
            "spec.ports: Invalid value: \"array\": port 22 is reserved",
        ),
        (
            json!({"labels": {"app.tier": "web", "team": "a", "app.owner": "someone"}}),
            "spec.labels: Invalid value: \"object\": bad labels: app.owner, team",
        ),
        (
            json!({"weight": 1234.5}),
            "spec.weight: Invalid value: \"number\": weight 1,234.50 exceeds 1.000000\u{202f}×\u{202f}10⁰³",
        ),
    ];
    for (i, (spec, message)) in cases.into_iter().enumerate() {
        let s = status(
            api.create(&pp, &gadget(&format!("bad{i}"), spec.clone()))
                .await
                .unwrap_err(),
        );
        assert_eq!(s.code, 422, "{spec}");
        assert_eq!(s.reason, "Invalid", "{spec}");
        assert_eq!(
            s.message,
            format!("Gadget.example.com \"bad{i}\" is invalid: {message}"),
            "{spec}"
        );
        let causes = s
            .details
            .as_ref()
            .map(|d| d.causes.clone())
            .unwrap_or_default();
        assert_eq!(causes.len(), 1, "{spec}");
        assert_eq!(causes[0].reason, "FieldValueInvalid", "{spec}");
    }
}
