//! kubectl against the fake server: get (Table output), apply (client- and server-side), label,
//! patch, delete, api-resources.
//! Skipped with a printed reason where kubectl is not installed.

#![allow(clippy::unwrap_used)]

mod support;

use capi_testkit::env::TestEnv;

fn kubectl(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    support::kubectl(&env.kubeconfig_path(), args, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_just_works() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::builder()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap();
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let env = &*e;
        // Manifests go as JSON (imperative `create` sends protobuf: see below).
        let (ok, out) = kubectl(env, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: b\n"));
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "configmaps"], None);
        assert!(ok && out.contains("c1"), "{out}");
        let cluster = "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata:\n  name: demo\nspec:\n  clusterNetwork:\n    pods:\n      cidrBlocks: [\"192.168.0.0/16\"]\n";
        let (ok, out) = kubectl(env, &["apply", "-f", "-"], Some(cluster));
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "clusters"], None);
        assert!(ok && out.contains("demo") && out.contains("PHASE"), "{out}");
        let (ok, out) = kubectl(env, &["apply", "-f", "-"], Some(cluster));
        assert!(ok && out.contains("unchanged"), "{out}");
        let (ok, out) = kubectl(env, &["label", "cluster", "demo", "env=test"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "clusters", "-l", "env=test", "-o", "jsonpath={.items[*].metadata.name}"], None);
        assert!(ok && out.trim() == "demo", "{out}");
        let (ok, out) = kubectl(env, &["patch", "cluster", "demo", "--type", "merge", "-p", "{\"spec\":{\"paused\":true}}"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["apply", "--server-side", "-f", "-"], Some(cluster));
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["delete", "cluster", "demo"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "clusters"], None);
        assert!(ok && !out.contains("demo"), "{out}");
        let (ok, out) = kubectl(env, &["api-resources"], None);
        assert!(ok && out.contains("machinedeployments"), "{out}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_conflicts_and_strategic_patches() {
    if support::kubectl_missing() {
        return;
    }
    let env = TestEnv::builder()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap();
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let env = &*e;
        let cm = |v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"{v}\"\n");
        let (ok, out) = kubectl(env, &["apply", "--server-side", "--field-manager=alice", "-f", "-"], Some(&cm("1")));
        assert!(ok, "{out}");
        // Re-applying the same configuration is a no-op.
        let (ok, out) = kubectl(env, &["apply", "--server-side", "--field-manager=alice", "-f", "-"], Some(&cm("1")));
        assert!(ok && out.contains("serverside-applied"), "{out}");
        let (ok, out) = kubectl(env, &["apply", "--server-side", "--field-manager=bob", "-f", "-"], Some(&cm("2")));
        assert!(!ok, "{out}");
        assert!(
            out.contains("Apply failed with 1 conflict: conflict with \"alice\": .data.a"),
            "{out}"
        );
        let (ok, out) = kubectl(env, &["apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-"], Some(&cm("2")));
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "configmap", "ssa", "-o", "jsonpath={.data.a} {.metadata.managedFields[*].manager}"], None);
        assert!(ok && out.trim() == "2 bob", "{out}");
        // An updater (kubectl edit-like write) takes the field; appliers then conflict with it.
        let (ok, out) = kubectl(env, &["patch", "configmap", "ssa", "--type", "merge", "-p", "{\"data\":{\"a\":\"3\"}}"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["apply", "--server-side", "--field-manager=bob", "-f", "-"], Some(&cm("2")));
        assert!(!ok && out.contains("conflict with \"kubectl-patch\" using v1: .data.a"), "{out}");
        // Strategic merge patches union finalizers.
        let (ok, out) = kubectl(env, &["patch", "configmap", "ssa", "--type", "strategic", "-p", "{\"metadata\":{\"finalizers\":[\"x/one\"]}}"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["patch", "configmap", "ssa", "-p", "{\"metadata\":{\"finalizers\":[\"x/two\"]}}"], None);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["get", "configmap", "ssa", "-o", "jsonpath={.metadata.finalizers}"], None);
        assert!(ok && out.contains("x/one") && out.contains("x/two"), "{out}");
        let (ok, out) = kubectl(env, &["patch", "configmap", "ssa", "-p", "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"x/one\",\"x/two\"]}}"], None);
        assert!(ok, "{out}");
        // Strategic merge patches are refused for custom resources, as upstream.
        let cluster = "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata:\n  name: smp\nspec:\n  paused: false\n";
        let (ok, out) = kubectl(env, &["apply", "--server-side", "-f", "-"], Some(cluster));
        assert!(ok, "{out}");
        let (ok, out) = kubectl(env, &["patch", "cluster", "smp", "--type", "strategic", "-p", "{\"spec\":{\"paused\":true}}"], None);
        assert!(!ok && out.contains("the body of the request was in an unknown format"), "{out}");
    })
    .await
    .unwrap();
}

/// The object kubectl would send for `args` (`--dry-run=client -o json`), minus what the server
/// sets, as a JSON value.
fn requested(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--dry-run=client", "-o", "json"]);
    let (ok, out) = kubectl(env, &all, None);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap()
}

/// `obj` without the fields the server sets, and with JSON nulls and empty maps dropped.
fn comparable(mut obj: serde_json::Value) -> serde_json::Value {
    fn prune(v: &mut serde_json::Value) {
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null() && x.as_object().is_none_or(|o| !o.is_empty()));
            m.values_mut().for_each(prune);
        } else if let Some(a) = v.as_array_mut() {
            a.iter_mut().for_each(prune);
        }
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "namespace",
        ] {
            m.remove(k);
        }
    }
    prune(&mut obj);
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_imperative_creates_send_protobuf_and_read_back_as_asked() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use kube::api::Api;

    if support::kubectl_missing() {
        return;
    }
    let env = std::sync::Arc::new(TestEnv::start().await.unwrap());
    let dir = std::env::temp_dir().join(format!("capi-testkit-pb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blob = dir.join("blob");
    std::fs::write(&blob, b"\x00\xffnot utf-8").unwrap();
    let blob_arg = format!("--from-file={}", blob.display());
    let commands: Vec<Vec<String>> = [
        vec!["create", "namespace", "pbns"],
        vec![
            "create",
            "configmap",
            "cm1",
            "-n",
            "pbns",
            "--from-literal=a=b",
            "--from-literal=c=",
            &blob_arg,
        ],
        vec![
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "pbns",
            "--from-literal=password=hunter2",
            "--type=example.com/token",
        ],
        vec!["create", "serviceaccount", "sa1", "-n", "pbns"],
        vec![
            "create",
            "role",
            "r1",
            "-n",
            "pbns",
            "--verb=get,list",
            "--resource=configmaps,secrets",
            "--resource-name=cm1",
        ],
        vec![
            "create",
            "rolebinding",
            "rb1",
            "-n",
            "pbns",
            "--role=r1",
            "--serviceaccount=pbns:sa1",
            "--user=alice",
            "--group=devs",
        ],
        vec![
            "create",
            "clusterrole",
            "cr1",
            "--verb=get",
            "--resource=leases.coordination.k8s.io",
            "--non-resource-url=/healthz",
        ],
        vec![
            "create",
            "clusterrole",
            "agg",
            "--aggregation-rule=rbac.example.com/aggregate=true",
        ],
        vec![
            "create",
            "clusterrolebinding",
            "crb1",
            "--clusterrole=cr1",
            "--group=devs",
            "--serviceaccount=pbns:sa1",
        ],
    ]
    .iter()
    .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    let e = env.clone();
    let asked = tokio::task::spawn_blocking(move || {
        let env = &*e;
        // The body really is protobuf (and the JSON answer is fine with kubectl).
        let (ok, out) = kubectl(
            env,
            &["create", "configmap", "probe", "--from-literal=x=y", "-v=8"],
            None,
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{out}"
        );
        let mut asked = Vec::new();
        for c in &commands {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            let want = requested(env, &args);
            let (ok, out) = kubectl(env, &args, None);
            assert!(ok && out.contains("created"), "{args:?}: {out}");
            asked.push(want);
        }
        asked
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let c = env.client();
    let got: Vec<serde_json::Value> = vec![
        stored(Api::<Namespace>::all(c.clone()), "pbns").await,
        stored(Api::<ConfigMap>::namespaced(c.clone(), "pbns"), "cm1").await,
        stored(Api::<Secret>::namespaced(c.clone(), "pbns"), "s1").await,
        stored(Api::<ServiceAccount>::namespaced(c.clone(), "pbns"), "sa1").await,
        stored(Api::<Role>::namespaced(c.clone(), "pbns"), "r1").await,
        stored(Api::<RoleBinding>::namespaced(c.clone(), "pbns"), "rb1").await,
        stored(Api::<ClusterRole>::all(c.clone()), "cr1").await,
        stored(Api::<ClusterRole>::all(c.clone()), "agg").await,
        stored(Api::<ClusterRoleBinding>::all(c.clone()), "crb1").await,
    ];
    assert_eq!(got[1]["binaryData"]["blob"], "AP9ub3QgdXRmLTg=");
    assert_eq!(got[1]["data"], serde_json::json!({"a": "b", "c": ""}));
    assert_eq!(got[2]["type"], "example.com/token");
    assert!(got[7]["aggregationRule"]["clusterRoleSelectors"].is_array());
    for (mut want, mut got) in asked.into_iter().zip(got) {
        if want["kind"] == "Namespace" {
            // What the server adds to every namespace.
            assert_eq!(got["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
            assert_eq!(got["status"]["phase"], "Active");
            for o in [&mut want, &mut got] {
                o.as_object_mut()
                    .map(|m| (m.remove("spec"), m.remove("status")));
            }
        }
        assert_eq!(comparable(got), comparable(want));
    }
}

/// The first JSON value of kubectl's output (its stdout, before `-v` logs on stderr).
fn first_json(out: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_decodes_protobuf_answers_objects_and_status_errors() {
    if support::kubectl_missing() {
        return;
    }
    let env = std::sync::Arc::new(TestEnv::start().await.unwrap());
    let e = env.clone();
    let (printed, get) = tokio::task::spawn_blocking(move || {
        let env = &*e;
        // kubectl's create commands use a typed client: protobuf bodies, and an Accept that
        // prefers protobuf, so the answer is protobuf, decoded by Go's generated code.
        let (ok, out) = kubectl(
            env,
            &[
                "create",
                "configmap",
                "pbcm",
                "--from-literal=a=b",
                "--from-literal=empty=",
                "-o",
                "json",
                "-v=8",
            ],
            None,
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("Accept: application/vnd.kubernetes.protobuf"),
            "{out}"
        );
        let answer = out.split("Response Headers:").nth(1).unwrap_or_default();
        assert!(
            answer.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{out}"
        );
        let printed = first_json(&out);
        // A Status error, decoded from protobuf into kubectl's message.
        let (ok, out) = kubectl(env, &["create", "configmap", "pbcm", "-v=8"], None);
        assert!(!ok, "{out}");
        assert!(
            out.contains("Content-Type: application/vnd.kubernetes.protobuf")
                && out.contains("configmaps \"pbcm\" already exists"),
            "{out}"
        );
        let (ok, out) = kubectl(env, &["create", "namespace", "pbns2", "-o", "json"], None);
        assert!(ok, "{out}");
        assert_eq!(first_json(&out)["status"]["phase"], "Active");
        // kubectl get reads through its unstructured client: JSON, not protobuf.
        let (ok, out) = kubectl(
            env,
            &["get", "configmap", "pbcm", "-o", "json", "-v=8"],
            None,
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("Response Headers:") && !out.contains("vnd.kubernetes.protobuf"),
            "{out}"
        );
        (printed, first_json(&out))
    })
    .await
    .unwrap();
    assert_eq!(printed["data"], serde_json::json!({"a": "b", "empty": ""}));
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        assert!(printed["metadata"][field].is_string(), "{field}: {printed}");
        assert_eq!(
            printed["metadata"][field], get["metadata"][field],
            "{field}"
        );
    }
    assert_eq!(comparable(printed), comparable(get));
}

#[tokio::test]
async fn protobuf_bodies_for_custom_resources_get_415_and_malformed_ones_400() {
    let env = TestEnv::builder()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap();
    let post = |path: &str, body: Vec<u8>| {
        http::Request::post(path)
            .header("content-type", "application/vnd.kubernetes.protobuf")
            // JSON answers: with protobuf preferred the Status would be protobuf, as upstream's.
            .header("accept", "application/json")
            .body(body)
            .unwrap()
    };
    let status = |r: Result<String, kube::Error>| match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("{other:?}"),
    };
    let (code, message) = status(
        env.client()
            .request_text(post(
                "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters",
                b"k8s\x00\x0a\x00".to_vec(),
            ))
            .await,
    );
    assert_eq!(code, 415);
    assert_eq!(
        message,
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
    );
    for bad in [&b"k8s\x00\x12\xff"[..], b"{}", b"k8s\x00\x0a\x04\x0a\x02v1"] {
        let (code, message) = status(
            env.client()
                .request_text(post("/api/v1/namespaces/default/configmaps", bad.to_vec()))
                .await,
        );
        assert_eq!(code, 400, "{message}");
    }
}

/// An object as the server stores it, read back through kube-rs, as JSON.
async fn stored<K>(api: kube::Api<K>, name: &str) -> serde_json::Value
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}
