//! Replays what a real kube-apiserver 1.36.2 answered (../shared/golden/kube-apiserver-1.36)
//! against the fake server and counts the exchanges that agree on what must agree: status code,
//! body kind, Status reason/code/message/details, Warning headers, watch event sequences.
//! Values that differ by nature (resourceVersions, uids, times) are mapped or masked.
//!
//! The figure is printed; the test fails if fewer exchanges match than the floor below, so a
//! regression shows, and the floor is raised as the server improves.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use capi_testkit::env::TestEnv;
use http_body_util::BodyExt;
use serde_json::Value;

/// Exchanges that must keep matching (raise when the server gets better).
const FLOOR: usize = 86;

const ORDER: [&str; 6] = [
    "discovery",
    "crd-install",
    "custom-resource-crud",
    "builtins",
    "watch",
    "lifecycle",
];

fn golden_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/kube-apiserver-1.36");
    dir.is_dir().then_some(dir)
}

/// Learns recorded → ours for the values that differ by nature.
fn learn(recorded: &Value, ours: &Value, map: &mut BTreeMap<String, String>) {
    match (recorded, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                let Some(ov) = o.get(k) else { continue };
                if matches!(k.as_str(), "resourceVersion" | "uid" | "continue")
                    && let (Some(a), Some(b)) = (rv.as_str(), ov.as_str())
                    && !a.is_empty()
                {
                    map.insert(a.to_owned(), b.to_owned());
                }
                learn(rv, ov, map);
            }
        }
        (Value::Array(r), Value::Array(o)) => r.iter().zip(o).for_each(|(a, b)| learn(a, b, map)),
        _ => {}
    }
}

fn substitute(v: &Value, map: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(map.get(s).cloned().unwrap_or_else(|| s.clone())),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, map)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, map)).collect()),
        other => other.clone(),
    }
}

/// Digits masked: resourceVersions and counts inside messages differ by nature.
fn mask(s: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

fn status_view(v: &Value) -> Value {
    let causes: Vec<Value> = v["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            serde_json::json!([
                c["field"],
                c["reason"],
                mask(c["message"].as_str().unwrap_or(""))
            ])
        })
        .collect();
    serde_json::json!({
        "reason": v["reason"], "code": v["code"], "message": mask(v["message"].as_str().unwrap_or("")),
        "details": {"name": v["details"]["name"], "group": v["details"]["group"], "kind": v["details"]["kind"], "causes": causes},
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The mutations the recorder made while the first watch was open (golden README).
async fn watch_mutations(env: &TestEnv) {
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
    let ar = kube::api::ApiResource {
        group: "cluster.x-k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "cluster.x-k8s.io/v1beta1".into(),
        kind: "Machine".into(),
        plural: "machines".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(env.client(), "golden", &ar);
    api.create(&PostParams::default(), &machine("w1"))
        .await
        .unwrap();
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"role": "cp"}}})),
    )
    .await
    .unwrap();
    api.delete("w1", &DeleteParams::default()).await.unwrap();
}

fn machine(name: &str) -> kube::api::DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine",
        "metadata": {"name": name, "labels": {"role": "worker"}},
        "spec": {"clusterName": "c1", "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
                 "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "DockerMachine", "name": name}}
    }))
    .unwrap()
}

async fn send(
    env: &TestEnv,
    req: &Value,
    map: &BTreeMap<String, String>,
    during: Option<&str>,
) -> (u16, Vec<String>, Vec<u8>) {
    let path = req["path"]
        .as_str()
        .unwrap()
        .split('/')
        .map(|seg| map.get(seg).cloned().unwrap_or_else(|| seg.to_owned()))
        .collect::<Vec<_>>()
        .join("/");
    let query: Vec<String> = req["query"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            format!(
                "{k}={}",
                encode(&map.get(v).cloned().unwrap_or_else(|| v.to_owned()))
            )
        })
        .collect();
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let mut builder = http::Request::builder()
        .method(req["method"].as_str().unwrap())
        .uri(uri);
    for (k, v) in req["headers"].as_object().into_iter().flatten() {
        builder = builder.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    let body = match &req["body"] {
        Value::Null => Vec::new(),
        Value::String(s) => s.clone().into_bytes(),
        b => substitute(b, map).to_string().into_bytes(),
    };
    let request = builder.body(kube::client::Body::from(body)).unwrap();
    let resp = env.client().send(request).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("Warning")
        .iter()
        .map(|w| mask(w.to_str().unwrap_or_default()))
        .collect();
    if during == Some("first-watch") {
        watch_mutations(env).await;
    }
    // Watches stream: read what arrives in a short window.
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(700);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        body.frame(),
    )
    .await
    {
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    (status, warnings, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_golden_transcripts() {
    let Some(dir) = golden_dir() else {
        println!("skipped: ../shared/golden is absent (a clone outside the workplace)");
        return;
    };
    let env = TestEnv::start().await.unwrap();
    let mut map = BTreeMap::new();
    let (mut matched, mut total) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for scenario in ORDER {
        let text = std::fs::read_to_string(dir.join(format!("{scenario}.json"))).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        for (i, ex) in doc["exchanges"].as_array().unwrap().iter().enumerate() {
            total += 1;
            let req = &ex["request"];
            let want = &ex["response"];
            let poll = req["poll"]["until_status"].as_u64();
            let started = Instant::now();
            let (status, warnings, bytes) = loop {
                let during = (scenario == "watch" && i == 0).then_some("first-watch");
                let got = send(&env, req, &map, during).await;
                if poll.is_none_or(|p| u64::from(got.0) == p)
                    || started.elapsed() > Duration::from_secs(5)
                {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let mut problems = Vec::new();
            if u64::from(status) != want["status"].as_u64().unwrap_or(0) {
                problems.push(format!("status {status} vs {}", want["status"]));
            }
            let want_warnings: Vec<String> = want["headers"]["Warning"]
                .as_str()
                .map(|w| vec![mask(w)])
                .unwrap_or_default();
            if warnings != want_warnings {
                problems.push(format!("warnings {warnings:?} vs {want_warnings:?}"));
            }
            if let Some(frames) = want["frames"].as_array() {
                let ours: Vec<Value> = String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                let view = |f: &Value| {
                    format!(
                        "{} {}",
                        f["type"].as_str().unwrap_or(""),
                        f["object"]["metadata"]["name"]
                            .as_str()
                            .or(f["object"]["reason"].as_str())
                            .unwrap_or("")
                    )
                };
                let a: Vec<String> = frames.iter().map(view).collect();
                let b: Vec<String> = ours.iter().map(view).collect();
                if a != b {
                    problems.push(format!("frames {b:?} vs {a:?}"));
                }
            } else if let Ok(ours) = serde_json::from_slice::<Value>(&bytes) {
                let recorded = &want["body"];
                if recorded["kind"] != ours["kind"] {
                    problems.push(format!("kind {} vs {}", ours["kind"], recorded["kind"]));
                } else if recorded["kind"] == "Status" {
                    let (a, b) = (status_view(recorded), status_view(&ours));
                    if a != b {
                        problems.push(format!("status body {b} vs {a}"));
                    }
                }
                learn(recorded, &ours, &mut map);
            } else if !want["body"].is_null() && !want["body"].is_string() {
                problems.push("body is not JSON".into());
            }
            // "After the second watch, create Machine w2" (golden README).
            if scenario == "watch" && i == 1 {
                let ar = kube::api::ApiResource {
                    group: "cluster.x-k8s.io".into(),
                    version: "v1beta1".into(),
                    api_version: "cluster.x-k8s.io/v1beta1".into(),
                    kind: "Machine".into(),
                    plural: "machines".into(),
                };
                let api: kube::Api<kube::api::DynamicObject> =
                    kube::Api::namespaced_with(env.client(), "golden", &ar);
                api.create(&Default::default(), &machine("w2"))
                    .await
                    .unwrap();
            }
            if problems.is_empty() {
                matched += 1;
            } else {
                mismatches.push(format!(
                    "{scenario}#{i} {} {}: {}",
                    req["method"].as_str().unwrap_or(""),
                    req["path"].as_str().unwrap_or(""),
                    problems.join("; ")
                ));
            }
        }
    }
    println!("golden replay: {matched}/{total} exchanges match kube-apiserver 1.36.2");
    for m in &mismatches {
        println!("  mismatch: {}", m.chars().take(400).collect::<String>());
    }
    assert!(
        matched >= FLOOR,
        "only {matched}/{total} exchanges match (floor {FLOOR})"
    );
}
