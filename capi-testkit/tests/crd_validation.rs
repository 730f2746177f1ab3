//! CustomResourceDefinition validation over real HTTP, as kube-apiserver 1.36 does it: the
//! structural-schema rules, defaults, list/map types and the CRD-level checks come back as one
//! 422 with upstream's causes (in upstream's order) and message; the upstream CAPI/CAPD CRDs and
//! capi-core's generated CRDs still install; and a custom resource's ObjectMeta errors and
//! schema errors come back together.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use capi_testkit::env::TestEnv;
use http_body_util::BodyExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const P: &str = "spec.validation.openAPIV3Schema";

async fn send(env: &TestEnv, method: &str, path: &str, body: &Value) -> (u16, Value) {
    support::send(env, method, path, "application/json", body).await
}

async fn get(env: &TestEnv, path: &str) -> (u16, Value) {
    let request = http::Request::builder()
        .uri(path)
        .header("Accept", "application/json")
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = env.client().send(request).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A CRD of `widgets.example.com` serving `v1` with `schema`.
fn crd(schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]
        }
    })
}

/// The 422 Status kube-apiserver sends for `kind.group "name"` with these causes.
fn invalid(
    qualified_kind: &str,
    kind: &str,
    group: &str,
    name: &str,
    causes: &[(String, &str, String)],
) -> Value {
    let parts: Vec<String> = causes.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
    let list = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{qualified_kind} \"{name}\" is invalid: {list}"),
        "reason": "Invalid",
        "details": {
            "name": name, "group": group, "kind": kind,
            "causes": causes.iter().map(|(f, r, m)| json!({"reason": r, "message": m, "field": f})).collect::<Vec<_>>()
        },
        "code": 422
    })
}

fn crd_invalid(name: &str, causes: &[(String, &str, String)]) -> Value {
    invalid(
        "CustomResourceDefinition.apiextensions.k8s.io",
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        name,
        causes,
    )
}

fn c(
    field: impl Into<String>,
    reason: &'static str,
    message: &str,
) -> (String, &'static str, String) {
    (field.into(), reason, message.to_owned())
}

const REQUIRED: &str = "FieldValueRequired";
const FORBIDDEN: &str = "FieldValueForbidden";
const INVALID: &str = "FieldValueInvalid";
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

#[tokio::test]
async fn non_structural_schemas_are_refused_with_upstream_causes_sorted() {
    let env = TestEnv::builder().start().await.unwrap();
    let schema = json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "spec": {
                "properties": {
                    "foo": {},
                    "list": {"type": "array"},
                    "any": {"type": "string", "anyOf": [{"type": "string", "default": "x"}]},
                    "emb": {"type": "string", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "keep": {"type": "object", "x-kubernetes-preserve-unknown-fields": false},
                    "mixed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "missing"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
                }
            }
        }
    });
    let (code, body) = send(&env, "POST", CRDS, &crd(schema)).await;
    assert_eq!(code, 422);
    let s = format!("{P}.properties[spec]");
    // Structural errors first, sorted by their text; then the per-node OpenAPI checks.
    let expected = crd_invalid(
        "widgets.example.com",
        &[
            c(
                format!("{P}.properties[metadata]"),
                FORBIDDEN,
                "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            ),
            c(
                format!("{s}.properties[any].anyOf[0].default"),
                FORBIDDEN,
                "Forbidden: must be undefined to be structural",
            ),
            c(
                format!("{s}.properties[any].anyOf[0].type"),
                FORBIDDEN,
                "Forbidden: must be empty to be structural",
            ),
            c(
                format!("{s}.properties[emb].type"),
                INVALID,
                "Invalid value: \"string\": must be object if x-kubernetes-embedded-resource is true",
            ),
            c(
                format!("{s}.properties[foo].type"),
                REQUIRED,
                "Required value: must not be empty for specified object fields",
            ),
            c(
                format!("{s}.properties[list].items"),
                REQUIRED,
                "Required value: must be specified",
            ),
            c(
                format!("{s}.type"),
                REQUIRED,
                "Required value: must not be empty for specified object fields",
            ),
            c(
                format!("{s}.properties[keep].x-kubernetes-preserve-unknown-fields"),
                INVALID,
                "Invalid value: false: must be true or undefined",
            ),
            c(
                format!("{s}.properties[mixed].additionalProperties"),
                FORBIDDEN,
                "Forbidden: additionalProperties and properties are mutual exclusive",
            ),
            c(
                format!("{s}.properties[ports].x-kubernetes-list-map-keys"),
                INVALID,
                "Invalid value: []string{\"name\", \"missing\"}: entries must all be names of item properties",
            ),
            c(
                format!("{s}.properties[ports].items.properties[name].default"),
                REQUIRED,
                "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ),
        ],
    );
    assert_eq!(body, expected);
    // Nothing was stored or served.
    assert_eq!(
        get(&env, &format!("{CRDS}/widgets.example.com")).await.0,
        404
    );
    assert_eq!(get(&env, "/apis/example.com/v1").await.0, 404);
}

#[tokio::test]
async fn defaults_must_validate_and_be_pruned_and_are_forbidden_in_top_level_metadata() {
    let env = TestEnv::builder().start().await.unwrap();
    let obj = |default: Value| json!({"type": "object", "properties": {"a": {"type": "string"}}, "default": default});
    let schema = json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "default": {}},
            "spec": {"type": "object", "properties": {
                "obj1": obj(json!({"a": "x", "b": 1})),
                "obj2": obj(json!({"a": 5})),
                "fine": obj(json!({"a": "y"}))
            }}
        }
    });
    let (code, body) = send(&env, "POST", CRDS, &crd(schema)).await;
    assert_eq!(code, 422);
    let s = format!("{P}.properties[spec]");
    let expected = crd_invalid(
        "widgets.example.com",
        &[
            c(
                format!("{s}.properties[obj1].default"),
                INVALID,
                "Invalid value: map[string]interface {}{\"a\":\"x\", \"b\":1}: must not have unknown fields",
            ),
            c(
                format!("{s}.properties[obj2].default.a"),
                "FieldValueTypeInvalid",
                "Invalid value: \"integer\": a in body must be of type string: \"integer\"",
            ),
            c(
                format!("{P}.properties[metadata].default"),
                FORBIDDEN,
                "Forbidden: must not be set in top-level metadata",
            ),
        ],
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn crd_level_checks_and_per_version_schema_paths() {
    let env = TestEnv::builder().start().await.unwrap();
    let good = json!({"type": "object", "properties": {"spec": {"type": "object"}}});
    let bad = json!({"properties": {"spec": {"type": "object"}}});
    let body = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "wrong.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Global",
            "names": {"plural": "things", "kind": "Thing", "shortNames": ["Th"]},
            "versions": [
                {"name": "V1", "served": true, "storage": true, "schema": {"openAPIV3Schema": good}},
                {"name": "v2", "served": true, "storage": false, "schema": {"openAPIV3Schema": bad}}
            ]
        }
    });
    let (code, got) = send(&env, "POST", CRDS, &body).await;
    assert_eq!(code, 422);
    // Schemas that differ between versions are reported under spec.versions[i].
    let expected = crd_invalid(
        "wrong.example.com",
        &[
            c(
                "metadata.name",
                INVALID,
                "Invalid value: \"wrong.example.com\": must be spec.names.plural+\".\"+spec.group",
            ),
            c(
                "spec.scope",
                "FieldValueNotSupported",
                "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
            ),
            c(
                "spec.versions[0].name",
                INVALID,
                &format!("Invalid value: \"V1\": {DNS1035}"),
            ),
            c(
                "spec.versions[1].schema.openAPIV3Schema.type",
                REQUIRED,
                "Required value: must not be empty at the root",
            ),
            c(
                "spec.names.shortNames[0]",
                INVALID,
                &format!("Invalid value: \"Th\": {DNS1035}"),
            ),
        ],
    );
    assert_eq!(got, expected);

    // A missing schema, no storage version, no kind.
    let body = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "things"},
            "versions": [{"name": "v1", "served": true, "storage": false}]
        }
    });
    let (code, got) = send(&env, "POST", CRDS, &body).await;
    assert_eq!(code, 422);
    let fields: Vec<&str> = got["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.versions[0].schema.openAPIV3Schema",
            "spec.versions",
            "spec.names.singular",
            "spec.names.kind",
            "spec.names.listKind",
        ]
    );
}

#[tokio::test]
async fn updates_to_a_non_structural_schema_are_refused_and_the_old_one_keeps_serving() {
    let env = TestEnv::builder().start().await.unwrap();
    let good = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}});
    let (code, created) = send(&env, "POST", CRDS, &crd(good)).await;
    assert_eq!(code, 201, "{created}");
    let (_, mut current) = get(&env, &format!("{CRDS}/widgets.example.com")).await;
    current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["size"] =
        json!({"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true});
    current["spec"]["group"] = json!("other.example.com");
    let (code, got) = send(
        &env,
        "PUT",
        &format!("{CRDS}/widgets.example.com"),
        &current,
    )
    .await;
    assert_eq!(code, 422);
    let size = format!("{P}.properties[spec].properties[size]");
    let expected = crd_invalid(
        "widgets.example.com",
        &[
            c(
                format!("{size}.x-kubernetes-preserve-unknown-fields"),
                INVALID,
                "Invalid value: true: must be false if x-kubernetes-int-or-string is true",
            ),
            c(
                "spec.group",
                INVALID,
                "Invalid value: \"other.example.com\": field is immutable",
            ),
        ],
    );
    assert_eq!(got, expected);
    // The stored CRD and what it serves are unchanged: `size` is still an integer.
    let (_, stored) = get(&env, &format!("{CRDS}/widgets.example.com")).await;
    assert_eq!(stored["spec"]["group"], "example.com");
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "big"}});
    let (code, _) = send(
        &env,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &widget,
    )
    .await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn custom_resource_metadata_and_schema_errors_come_back_together() {
    let env = TestEnv::builder().start().await.unwrap();
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.size < 10"}],
        "properties": {"size": {"type": "integer"}, "mode": {"type": "string", "enum": ["A"]}}}}});
    let (code, created) = send(&env, "POST", CRDS, &crd(schema)).await;
    assert_eq!(code, 201, "{created}");
    let widget = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "Bad", "labels": {"ok": "fine", "bad key": "v"}, "annotations": {"a/b/c": "x"}},
        "spec": {"size": "big", "mode": "B"}
    });
    let (code, got) = send(
        &env,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &widget,
    )
    .await;
    assert_eq!(code, 422);
    let qn = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let expected = invalid(
        "Widget.example.com",
        "Widget",
        "example.com",
        "Bad",
        &[
            c(
                "metadata.name",
                INVALID,
                "Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ),
            c(
                "metadata.labels",
                INVALID,
                &format!("Invalid value: \"bad key\": name part {qn}"),
            ),
            c(
                "metadata.annotations",
                INVALID,
                &format!(
                    "Invalid value: \"a/b/c\": a qualified name {qn} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                ),
            ),
            c(
                "spec.mode",
                "FieldValueNotSupported",
                "Unsupported value: \"B\": supported values: \"A\"",
            ),
            c(
                "spec.size",
                "FieldValueTypeInvalid",
                "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
            ),
            c(
                "<nil>",
                INVALID,
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ),
        ],
    );
    assert_eq!(got, expected);

    // Metadata errors alone still block nothing else: a valid spec gives only them.
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "ok", "generateName": "Gen-"}, "spec": {"size": 1}});
    let (code, got) = send(
        &env,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        &widget,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        got["details"]["causes"][0]["field"],
        "metadata.generateName"
    );
    assert_eq!(got["details"]["causes"].as_array().unwrap().len(), 1);
}

fn corpus_crds() -> Option<Vec<CustomResourceDefinition>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !root.is_dir() {
        return None;
    }
    let mut out = Vec::new();
    for dir in [
        "cluster-api/crds",
        "cluster-api/provider-dev-crds",
        "cluster-api-v1.10/crds",
        "cluster-api-v1.10/provider-docker-crds",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            out.push(serde_saphyr::from_str(&text).unwrap());
        }
    }
    Some(out)
}

#[tokio::test]
async fn upstream_and_generated_crds_are_structural() {
    let Some(crds) = corpus_crds() else {
        println!("skipped: ../shared/corpus is absent");
        return;
    };
    assert_eq!(crds.len(), 21);
    // v1.14 and v1.10 CRDs share names: install each release on its own server.
    let (new, old): (Vec<_>, Vec<_>) = crds.into_iter().enumerate().partition(|(i, _)| *i < 11);
    for set in [new, old] {
        let env = TestEnv::builder().start().await.unwrap();
        let n = set.len();
        let started = std::time::Instant::now();
        env.install_crds(set.into_iter().map(|(_, c)| c))
            .await
            .unwrap();
        println!("installed {n} upstream CRDs in {:?}", started.elapsed());
    }
    let env = TestEnv::builder().start().await.unwrap();
    env.install_crds(capi_core::crd::core_crds().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_shows_the_structural_errors() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::builder().start().await.unwrap();
    let manifest =
        crd(json!({"type": "object", "properties": {"spec": {"properties": {}}}})).to_string();
    let kubeconfig = env.kubeconfig_path();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["create", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The CustomResourceDefinition \"widgets.example.com\" is invalid")
            && stderr.contains("spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{stderr}"
    );
}
