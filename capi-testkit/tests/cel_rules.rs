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
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
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
        s.message.starts_with("CustomResourceDefinition.apiextensions.k8s.io \"widgetsbad.example.com\" is invalid: spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "),
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

/// The API of the custom resources of `crd(suffix, ...)`.
fn api_for(env: &TestEnv, suffix: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: format!("Widget{suffix}"),
        plural: format!("widgets{suffix}"),
    };
    Api::namespaced_with(env.client(), "default", &ar)
}

fn widget_of(suffix: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": format!("Widget{suffix}"),
        "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

/// A field of type string with one rule.
fn ruled(rule: &str) -> Value {
    json!({"type": "string", "x-kubernetes-validations": [{"rule": rule}]})
}

#[tokio::test]
async fn kubernetes_cel_libraries_validate_objects() {
    let schema = json!({"type": "object", "properties": {
        "memory": ruled("quantity(self).isLessThan(quantity('1Gi')) && quantity(self).sign() > 0"),
        "endpoint": ruled("isURL(self) && url(self).getScheme() == 'https' && url(self).getPort() != '8080'"),
        "address": ruled("ip(self).family() == 4 && !ip(self).isLoopback()"),
        "subnet": ruled("cidr(self).containsIP('10.0.0.1') && cidr(self).prefixLength() >= 8"),
        "version": ruled("semver(self, true).isGreaterThan(semver('1.28.0'))"),
        "name": {"type": "string", "x-kubernetes-validations": [{
            "rule": "!format.dns1123Label().validate(self).hasValue()",
            "messageExpression": "format.dns1123Label().validate(self).value().join(', ')"}]},
        "tag": ruled("self.find('^v[0-9]+') != '' && self.findAll('[0-9]+').size() <= 3")
    }});
    let env = TestEnv::builder()
        .crds([crd("libs", schema)])
        .start()
        .await
        .unwrap();
    let api = api_for(&env, "libs");
    let pp = PostParams::default();
    let good = json!({"memory": "512Mi", "endpoint": "https://example.com:443/api?x=1",
        "address": "192.168.0.10", "subnet": "10.0.0.0/8", "version": "v1.30",
        "name": "my-widget", "tag": "v1.2.3"});
    api.create(&pp, &widget_of("libs", "good", good))
        .await
        .unwrap();

    // Each library's rule failing (or erring) on a bad value.
    let bad = json!({"memory": "2Gi", "endpoint": "http://example.com/", "address": "127.0.0.1",
        "subnet": "192.168.0.0/16", "version": "1.27.9", "name": "Bad_Name", "tag": "latest"});
    let s = status(
        api.create(&pp, &widget_of("libs", "bad", bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let mut got = causes(&s);
    got.sort();
    let mut want = owned(&[
        (
            "spec.memory",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: quantity(self).isLessThan(quantity('1Gi')) && quantity(self).sign() > 0",
        ),
        (
            "spec.endpoint",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: isURL(self) && url(self).getScheme() == 'https' && url(self).getPort() != '8080'",
        ),
        (
            "spec.address",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: ip(self).family() == 4 && !ip(self).isLoopback()",
        ),
        (
            "spec.subnet",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: cidr(self).containsIP('10.0.0.1') && cidr(self).prefixLength() >= 8",
        ),
        (
            "spec.version",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: semver(self, true).isGreaterThan(semver('1.28.0'))",
        ),
        (
            "spec.name",
            "FieldValueInvalid",
            "Invalid value: \"string\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            "spec.tag",
            "FieldValueInvalid",
            "Invalid value: \"string\": failed rule: self.find('^v[0-9]+') != '' && self.findAll('[0-9]+').size() <= 3",
        ),
    ]);
    want.sort();
    assert_eq!(got, want);

    // Values the libraries cannot parse fail the rule with the library's error.
    let unparsable = json!({"memory": "1 Gi", "address": "10.0.0.01", "subnet": "10.0.0.0",
        "version": "1.x"});
    let s = status(
        api.create(&pp, &widget_of("libs", "unparsable", unparsable))
            .await
            .unwrap_err(),
    );
    let mut got = causes(&s);
    got.sort();
    let mut want = owned(&[
        (
            "spec.memory",
            "FieldValueInvalid",
            "Invalid value: \"string\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' evaluating rule: quantity(self).isLessThan(quantity('1Gi')) && quantity(self).sign() > 0",
        ),
        (
            "spec.address",
            "FieldValueInvalid",
            "Invalid value: \"string\": IP Address \"10.0.0.01\" parse error during conversion from string: ParseAddr(\"10.0.0.01\"): IPv4 field has octet with leading zero evaluating rule: ip(self).family() == 4 && !ip(self).isLoopback()",
        ),
        (
            "spec.subnet",
            "FieldValueInvalid",
            "Invalid value: \"string\": network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix(\"10.0.0.0\"): no '/' evaluating rule: cidr(self).containsIP('10.0.0.1') && cidr(self).prefixLength() >= 8",
        ),
        (
            "spec.version",
            "FieldValueInvalid",
            "Invalid value: \"string\": Invalid character(s) found in minor number \"x\" evaluating rule: semver(self, true).isGreaterThan(semver('1.28.0'))",
        ),
    ]);
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn rules_selecting_undeclared_fields_reject_the_crd() {
    let env = TestEnv::builder().start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let bad = crd(
        "typo",
        json!({"type": "object", "properties": {"replicas": {"type": "integer"},
            "template": {"type": "object", "properties": {"image": {"type": "string"}}}},
        "x-kubernetes-validations": [
            {"rule": "self.replica > 1"},
            {"rule": "has(self.template) && self.template.images != ''"}
        ]}),
    );
    let s = status(crds.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let prefix = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";
    assert_eq!(
        causes(&s),
        owned(&[
            (
                &format!("{prefix}[0].rule"),
                "FieldValueInvalid",
                "Invalid value: apiextensions.ValidationRule{Rule:\"self.replica > 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^"
            ),
            (
                &format!("{prefix}[1].rule"),
                "FieldValueInvalid",
                "Invalid value: apiextensions.ValidationRule{Rule:\"has(self.template) && self.template.images != ''\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:36: undefined field 'images'\n | has(self.template) && self.template.images != ''\n | ...................................^"
            ),
        ])
    );
    // Spelled right, the CRD is accepted.
    let good = crd(
        "typo",
        json!({"type": "object", "properties": {"replicas": {"type": "integer"},
            "template": {"type": "object", "properties": {"image": {"type": "string"}}}},
        "x-kubernetes-validations": [
            {"rule": "self.replicas > 1"},
            {"rule": "has(self.template) && self.template.image != ''"}
        ]}),
    );
    crds.create(&PostParams::default(), &good).await.unwrap();
}
