//! Server-side apply through kube-rs against the fake server: field ownership per manager,
//! conflicts worded as kube-apiserver words them, `force`, pruning of fields no longer applied,
//! list semantics from the CRD schema, the status subresource, and strategic merge patches
//! for built-in kinds.

#![allow(clippy::unwrap_used)]

use capi_testkit::env::TestEnv;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                        "ref": {"type": "object", "x-kubernetes-map-type": "atomic",
                                "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {
                                      "name": {"type": "string"}, "value": {"type": "integer"}}}},
                        "plain": {"type": "array", "items": {"type": "string"}}
                    }},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                }}}}]}
    }))
    .unwrap()
}

fn widgets(env: &TestEnv) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    Api::namespaced_with(env.client(), "default", &ar)
}

async fn env() -> TestEnv {
    TestEnv::builder()
        .crds([widget_crd()])
        .start()
        .await
        .unwrap()
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    force: bool,
    spec: Value,
) -> Result<DynamicObject, kube::Error> {
    let mut pp = PatchParams::apply(manager);
    if force {
        pp = pp.force();
    }
    api.patch(name, &pp, &Patch::Apply(widget(name, spec)))
        .await
}

fn managed(obj: &DynamicObject) -> Vec<(String, String, Value)> {
    obj.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|e| {
            (
                e.manager.clone().unwrap_or_default(),
                e.operation.clone().unwrap_or_default(),
                e.fields_v1
                    .as_ref()
                    .map(|f| f.0.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_second_applier_changing_a_field_conflicts_until_it_forces() {
    let env = env().await;
    let api = widgets(&env);
    let w = apply(&api, "w", "alice", false, json!({"x": "1", "y": "1"}))
        .await
        .unwrap();
    assert_eq!(
        managed(&w),
        [(
            "alice".into(),
            "Apply".into(),
            json!({"f:spec": {"f:x": {}, "f:y": {}}})
        )]
    );
    let err = apply(&api, "w", "bob", false, json!({"x": "2", "y": "1"}))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.x"
    );
    let cause = &status.details.as_ref().unwrap().causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        ("FieldManagerConflict", "conflict with \"alice\"", ".spec.x")
    );
    // Same value: shared ownership, no conflict.
    let shared = apply(&api, "w", "carol", false, json!({"y": "1"}))
        .await
        .unwrap();
    assert_eq!(managed(&shared).len(), 2);
    let forced = apply(&api, "w", "bob", true, json!({"x": "2", "y": "1"}))
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["x"], "2");
    let owners = managed(&forced);
    assert_eq!(owners[0].0, "alice");
    assert_eq!(owners[0].2, json!({"f:spec": {"f:y": {}}}));
}

#[tokio::test]
async fn fields_dropped_from_the_configuration_are_removed_unless_someone_else_owns_them() {
    let env = env().await;
    let api = widgets(&env);
    apply(
        &api,
        "p",
        "alice",
        false,
        json!({"x": "1", "y": "1", "tags": ["a", "b"], "items": [{"name": "i", "value": 1}, {"name": "j", "value": 2}]}),
    )
    .await
    .unwrap();
    // bob shares y, tag b and item j.
    let both = apply(
        &api,
        "p",
        "bob",
        false,
        json!({"y": "1", "tags": ["b", "c"], "items": [{"name": "j", "value": 2}]}),
    )
    .await
    .unwrap();
    assert_eq!(both.data["spec"]["tags"], json!(["a", "b", "c"]));
    let bob = managed(&both).into_iter().find(|m| m.0 == "bob").unwrap();
    assert_eq!(
        bob.2,
        json!({"f:spec": {"f:items": {"k:{\"name\":\"j\"}": {".": {}, "f:name": {}, "f:value": {}}},
                          "f:tags": {"v:\"b\"": {}, "v:\"c\"": {}}, "f:y": {}}})
    );
    let pruned = apply(&api, "p", "alice", false, json!({"x": "1"}))
        .await
        .unwrap();
    assert_eq!(
        pruned.data["spec"],
        json!({"x": "1", "y": "1", "tags": ["b", "c"], "items": [{"name": "j", "value": 2}]})
    );
}

#[tokio::test]
async fn updates_take_ownership_and_conflict_with_later_applies() {
    let env = env().await;
    let api = widgets(&env);
    apply(
        &api,
        "u",
        "alice",
        false,
        json!({"x": "1", "ref": {"name": "a"}}),
    )
    .await
    .unwrap();
    let edited = api
        .patch(
            "u",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"x": "2", "ref": {"kind": "K"}}})),
        )
        .await
        .unwrap();
    let owners = managed(&edited);
    // alice lost everything it applied: the entry is gone; the updater owns the atomic map.
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].0, "editor");
    assert_eq!(owners[0].1, "Update");
    assert_eq!(owners[0].2, json!({"f:spec": {"f:ref": {}, "f:x": {}}}));
    let err = apply(&api, "u", "alice", false, json!({"x": "1"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.message == "Apply failed with 1 conflict: conflict with \"editor\" using example.com/v1: .spec.x"),
        "{err:?}"
    );
}

#[tokio::test]
async fn status_applies_are_recorded_for_the_subresource() {
    let env = env().await;
    let api = widgets(&env);
    let w = apply(&api, "s", "ctl", false, json!({"x": "1"}))
        .await
        .unwrap();
    let rv = w.metadata.resource_version.clone();
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "status": {"phase": "Up"}});
    let after = api
        .patch_status("s", &PatchParams::apply("ctl"), &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(after.data["status"]["phase"], "Up");
    assert_ne!(after.metadata.resource_version, rv);
    let entries = after.metadata.managed_fields.clone().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].subresource.as_deref(), Some("status"));
    assert_eq!(
        entries[1].fields_v1.as_ref().unwrap().0,
        json!({"f:status": {"f:phase": {}}})
    );
    // A main-resource apply does not touch (or own) status.
    let main = apply(&api, "s", "ctl", false, json!({"x": "1"}))
        .await
        .unwrap();
    assert_eq!(
        main.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test]
async fn strategic_merge_patches_union_finalizers_and_are_refused_for_custom_resources() {
    let env = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c", "finalizers": ["a/b"]}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let out = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"finalizers": ["c/d"]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        out.metadata.finalizers,
        Some(vec!["a/b".to_string(), "c/d".to_string()])
    );
    let out = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/b", "c/d"]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        out.metadata.finalizers.unwrap_or_default(),
        Vec::<String>::new()
    );
    let api = widgets(&env);
    apply(&api, "w", "m", false, json!({"x": "1"}))
        .await
        .unwrap();
    let err = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"x": "2"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 415 && s.reason == "UnsupportedMediaType"),
        "{err:?}"
    );
}

#[tokio::test]
async fn apply_without_a_field_manager_is_refused_as_upstream() {
    let env = env().await;
    let req = http::Request::builder()
        .method("PATCH")
        .uri("/apis/example.com/v1/namespaces/default/widgets/n")
        .header("Content-Type", "application/apply-patch+yaml")
        .body(
            serde_json::to_vec(&widget("n", json!({"x": "1"})))
                .unwrap()
                .into(),
        )
        .unwrap();
    let resp = env.client().send(req).await.unwrap();
    assert_eq!(resp.status(), 422);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}

mod noop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Applying the same configuration twice is a no-op: same resourceVersion, same
        /// managedFields (timestamps included).
        #[test]
        fn reapplying_the_same_configuration_changes_nothing(
            x in "[a-z]{0,6}",
            tags in proptest::collection::btree_set("[a-c]", 0..4),
            items in proptest::collection::btree_map("[a-d]", 0i64..5, 0..4),
            plain in proptest::collection::vec("[a-z]", 0..3),
            second in "[a-z]{1,4}",
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let env = env().await;
                let api = widgets(&env);
                let items: Vec<Value> = items.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
                let spec = json!({"x": x, "tags": tags, "items": items, "plain": plain});
                apply(&api, "p", &second, false, json!({"y": second.clone()})).await.unwrap();
                let first = apply(&api, "p", "m", false, spec.clone()).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                let again = apply(&api, "p", "m", false, spec).await.unwrap();
                assert_eq!(first.metadata.resource_version, again.metadata.resource_version);
                assert_eq!(first.metadata.managed_fields, again.metadata.managed_fields);
                assert_eq!(first.data, again.data);
            });
        }
    }
}

/// managedFields name the version each write came through, not the storage version, as
/// kube-apiserver records them.
#[tokio::test]
async fn managed_fields_record_the_version_written_through() {
    let mut crd = serde_json::to_value(widget_crd()).unwrap();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    let env = TestEnv::builder()
        .crds([serde_json::from_value(crd).unwrap()])
        .in_process()
        .start()
        .await
        .unwrap();
    let ar = |version: &str| ApiResource {
        group: "example.com".into(),
        version: version.into(),
        api_version: format!("example.com/{version}"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let v1: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar("v1"));
    let v2: Api<DynamicObject> = Api::namespaced_with(env.client(), "default", &ar("v2"));
    let mut w = widget("w", json!({"x": "1"}));
    w["apiVersion"] = json!("example.com/v2");
    v2.create(
        &PostParams {
            field_manager: Some("creator".into()),
            ..Default::default()
        },
        &serde_json::from_value(w).unwrap(),
    )
    .await
    .unwrap();
    let apply = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"y": "2"}});
    v1.patch("w", &PatchParams::apply("applier"), &Patch::Apply(apply))
        .await
        .unwrap();
    let read = v2.get("w").await.unwrap();
    assert_eq!(read.types.unwrap().api_version, "example.com/v2");
    let entries: Vec<(String, String)> = read
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|e| (e.manager.unwrap(), e.api_version.unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("applier".to_owned(), "example.com/v1".to_owned()),
            ("creator".to_owned(), "example.com/v2".to_owned())
        ]
    );
}
