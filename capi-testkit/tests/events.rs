//! Events through both APIs: core/v1 and events.k8s.io/v1 are one storage, as in kube-apiserver,
//! so what a controller records through events.k8s.io (kube-runtime's `Recorder`, the SDK's
//! recorder) is what `kubectl get events` and core/v1 watchers see, and the other way round.

#![allow(clippy::unwrap_used)]

mod support;

use capi_testkit::env::TestEnv;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as Recorded, EventType, Recorder, Reporter};
use serde_json::{Value, json};

const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
const CORE: &str = "/api/v1/namespaces/default/events";

fn event(name: &str, machine: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-11-22T10:00:00.000000Z",
        "note": "provisioned", "reason": "Provisioned", "action": "Provision", "type": "Normal",
        "regarding": {"kind": "Machine", "name": machine, "namespace": "default"},
        "reportingController": "x.io/c", "reportingInstance": "x-1",
    })
}

#[tokio::test]
async fn an_event_written_through_one_api_is_read_through_the_other() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let (code, created) =
        support::send(&env, "POST", V1, "application/json", &event("e1", "m1")).await;
    assert_eq!(code, 201, "{created}");
    let core: Api<CoreEvent> = Api::default_namespaced(env.client());
    let seen = core.get("e1").await.unwrap();
    assert_eq!(seen.message.as_deref(), Some("provisioned"));
    assert_eq!(seen.involved_object.name.as_deref(), Some("m1"));
    assert_eq!(seen.reporting_component.as_deref(), Some("x.io/c"));
    assert_eq!(
        seen.metadata.resource_version,
        created["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned)
    );
    let (_, raw) = support::get(&env, &format!("{CORE}/e1"), "application/json").await;
    // As the typed core object is encoded: the zero values it writes, not the other API's names.
    assert_eq!(
        (&raw["apiVersion"], &raw["source"], &raw["firstTimestamp"]),
        (&json!("v1"), &json!({}), &Value::Null)
    );
    assert!(
        raw.get("note").is_none() && raw.get("regarding").is_none(),
        "{raw}"
    );

    // A core Event (as client-go's legacy recorder writes them) through events.k8s.io.
    let legacy: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "e2"}, "involvedObject": {"kind": "ConfigMap", "name": "cm", "namespace": "default"},
        "reason": "Synced", "message": "done", "type": "Normal", "count": 3,
        "source": {"component": "legacy-controller"},
        "firstTimestamp": "2026-11-22T10:00:00Z", "lastTimestamp": "2026-11-22T10:05:00Z",
    }))
    .unwrap();
    core.create(&PostParams::default(), &legacy).await.unwrap();
    let events: Api<Event> = Api::default_namespaced(env.client());
    let seen = events.get("e2").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("done"));
    assert_eq!(seen.deprecated_count, Some(3));
    assert_eq!(
        seen.deprecated_source.and_then(|s| s.component).as_deref(),
        Some("legacy-controller")
    );
    assert_eq!(seen.regarding.and_then(|r| r.name).as_deref(), Some("cm"));
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        core.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    // Deleted through one, gone from both.
    events.delete("e2", &Default::default()).await.unwrap();
    assert_eq!(core.get_opt("e2").await.unwrap(), None);
}

/// The create of the golden transcripts answers the same object kube-apiserver 1.36 answered
/// (server-set metadata aside); skipped where the transcripts are absent.
#[tokio::test]
async fn an_events_v1_create_answers_as_the_golden_transcript() {
    let Some(golden) = support::golden("builtins.json") else {
        return;
    };
    let exchange = golden["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["request"]["method"] == "POST"
                && e["request"]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/apis/events.k8s.io/"))
        })
        .unwrap();
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let ns = json!({"metadata": {"name": "golden"}});
    support::send(&env, "POST", "/api/v1/namespaces", "application/json", &ns).await;
    let path = exchange["request"]["path"].as_str().unwrap();
    let (code, mut ours) = support::send(
        &env,
        "POST",
        path,
        "application/json",
        &exchange["request"]["body"],
    )
    .await;
    let mut recorded = exchange["response"]["body"].clone();
    assert_eq!(code, 201);
    for body in [&mut ours, &mut recorded] {
        let meta = body["metadata"].as_object_mut().unwrap();
        for server_set in ["creationTimestamp", "resourceVersion", "uid"] {
            assert!(meta.remove(server_set).is_some(), "{server_set}");
        }
        for entry in meta["managedFields"].as_array_mut().unwrap() {
            let entry = entry.as_object_mut().unwrap();
            entry.remove("time");
            entry.remove("manager");
        }
    }
    assert_eq!(ours, recorded);
}

#[tokio::test]
async fn field_selectors_use_each_apis_names() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    for (name, machine) in [("a", "m1"), ("b", "m2")] {
        let (code, body) =
            support::send(&env, "POST", V1, "application/json", &event(name, machine)).await;
        assert_eq!(code, 201, "{body}");
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (path, selector, expected) in [
        (V1, "regarding.name=m1", vec!["a"]),
        (
            V1,
            "regarding.kind=Machine,reportingController=x.io/c",
            vec!["a", "b"],
        ),
        (V1, "regarding.name!=m1", vec!["b"]),
        (CORE, "involvedObject.name=m2", vec!["b"]),
        (CORE, "reportingComponent=x.io/c", vec!["a", "b"]),
        // Without a source component, `source` selects the reporting component.
        (CORE, "source=x.io/c", vec!["a", "b"]),
        (
            V1,
            "source=x.io/c,type=Normal,reason=Provisioned",
            vec!["a", "b"],
        ),
    ] {
        let (code, list) = support::get(
            &env,
            &format!("{path}?fieldSelector={selector}"),
            "application/json",
        )
        .await;
        assert_eq!(code, 200, "{selector}: {list}");
        assert_eq!(names(&list), expected, "{path}?fieldSelector={selector}");
    }
    let (code, status) = support::get(
        &env,
        &format!("{V1}?fieldSelector=involvedObject.name=m1"),
        "application/json",
    )
    .await;
    assert_eq!(
        (code, &status["message"]),
        (
            400,
            &json!("field label not supported: involvedObject.name")
        )
    );
    let (code, status) = support::get(
        &env,
        &format!("{CORE}?fieldSelector=regarding.name=m1"),
        "application/json",
    )
    .await;
    assert_eq!(
        (code, &status["message"]),
        (400, &json!("field label not supported: regarding.name"))
    );
}

#[tokio::test]
async fn watches_of_either_api_see_the_others_writes() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let core: Api<CoreEvent> = Api::default_namespaced(env.client());
    let events: Api<Event> = Api::default_namespaced(env.client());
    let rv = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut core_watch = core
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut selected = events
        .watch(
            &WatchParams::default()
                .fields("regarding.name=m2")
                .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    for (name, machine) in [("a", "m1"), ("b", "m2")] {
        support::send(&env, "POST", V1, "application/json", &event(name, machine)).await;
    }
    for expected in ["a", "b"] {
        match core_watch.try_next().await.unwrap() {
            Some(WatchEvent::Added(e)) => {
                assert_eq!(e.metadata.name.as_deref(), Some(expected));
                assert_eq!(e.message.as_deref(), Some("provisioned"));
            }
            other => panic!("{other:?}"),
        }
    }
    match selected.try_next().await.unwrap() {
        Some(WatchEvent::Added(e)) => {
            assert_eq!(e.metadata.name.as_deref(), Some("b"));
            assert_eq!(e.note.as_deref(), Some("provisioned"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_v1_writes_are_checked_strictly_and_core_ones_as_legacy() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let bare = json!({"metadata": {"name": "bare"}, "regarding": {"namespace": "default"}, "deprecatedCount": 2});
    let (code, status) = support::send(&env, "POST", V1, "application/json", &bare).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "Event.events.k8s.io \"bare\" is invalid: [eventTime: Required value, type: Invalid value: \"\": has invalid value: , count: Invalid value: \"\": needs to be unset]"
    );
    let bare = json!({"metadata": {"name": "bare"}, "involvedObject": {"namespace": "default"}, "count": 2});
    let (code, status) = support::send(&env, "POST", CORE, "application/json", &bare).await;
    assert_eq!(code, 201, "{status}");
    let elsewhere = json!({"metadata": {"name": "x"}, "involvedObject": {"namespace": "other"}});
    let (code, status) = support::send(&env, "POST", CORE, "application/json", &elsewhere).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"other\": does not match event.namespace", "field": "involvedObject.namespace"})
    );

    // Through events.k8s.io an Event's content is immutable; only its series moves on.
    support::send(&env, "POST", V1, "application/json", &event("e", "m1")).await;
    let events: Api<Event> = Api::default_namespaced(env.client());
    let err = events
        .patch(
            "e",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "changed"})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("message: Invalid value: \"changed\": field is immutable")),
        "{err:?}"
    );
    let series = json!({"series": {"count": 2, "lastObservedTime": "2026-11-22T10:01:00.000000Z"}});
    let patched = events
        .patch("e", &PatchParams::default(), &Patch::Merge(series))
        .await
        .unwrap();
    assert_eq!(patched.series.map(|s| s.count), Some(2));
    // Its managedFields name the API it was written through.
    let fields = patched.metadata.managed_fields.unwrap();
    assert!(
        fields
            .iter()
            .all(|f| f.api_version.as_deref() == Some("events.k8s.io/v1")),
        "{fields:?}"
    );
    let core: Api<CoreEvent> = Api::default_namespaced(env.client());
    let mut legacy = core.get("e").await.unwrap();
    legacy.message = Some("changed through core/v1".into());
    core.replace("e", &PostParams::default(), &legacy)
        .await
        .unwrap();
}

/// kube-runtime's `Recorder` writes events.k8s.io Events; core/v1 readers and `kubectl get
/// events` see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_show_in_kubectl_get_events() {
    let env = TestEnv::builder().start().await.unwrap();
    let recorder = Recorder::new(env.client(), Reporter::from("capi-rs-test"));
    let reference = ObjectReference {
        api_version: Some("cluster.x-k8s.io/v1beta2".into()),
        kind: Some("Machine".into()),
        name: Some("worker-0".into()),
        namespace: Some("default".into()),
        ..Default::default()
    };
    let recorded = Recorded {
        type_: EventType::Normal,
        reason: "Provisioned".into(),
        note: Some("machine is up".into()),
        action: "Provision".into(),
        secondary: None,
    };
    recorder.publish(&recorded, &reference).await.unwrap();
    // A repeat becomes a series on the same Event.
    recorder.publish(&recorded, &reference).await.unwrap();
    let core: Api<CoreEvent> = Api::default_namespaced(env.client());
    let list = core.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].reporting_component.as_deref(), Some("capi-rs-test"));
    assert_eq!(list[0].series.as_ref().map(|s| s.count), Some(Some(2)));
    if support::kubectl_missing() {
        return;
    }
    let kubeconfig = env.kubeconfig_path();
    let (ok, out) = support::kubectl(&kubeconfig, &["get", "events"], None);
    assert!(ok, "{out}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains("Normal")
            && row.contains("Provisioned")
            && row.contains("machine/worker-0")
            && row.contains("machine is up"),
        "{out}"
    );
    let (ok, out) = support::kubectl(
        &kubeconfig,
        &[
            "get",
            "events.v1.events.k8s.io",
            "--field-selector",
            "regarding.name=worker-0",
            "-o",
            "jsonpath={.items[*].note}",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(out, "machine is up");
}

#[tokio::test]
async fn deleting_the_namespace_deletes_its_events() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let ns = json!({"metadata": {"name": "doomed"}});
    support::send(&env, "POST", "/api/v1/namespaces", "application/json", &ns).await;
    let mut e = event("e", "m1");
    e["regarding"]["namespace"] = json!("doomed");
    let (code, body) = support::send(
        &env,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/doomed/events",
        "application/json",
        &e,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client());
    namespaces
        .delete("doomed", &Default::default())
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(env.client(), "doomed");
    for _ in 0..100 {
        if namespaces.get_opt("doomed").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(namespaces.get_opt("doomed").await.unwrap().is_none());
    assert_eq!(events.get_opt("e").await.unwrap(), None);
}
