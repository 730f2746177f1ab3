//! kubectl against the fake server: get (Table output), apply (client- and server-side), label,
//! patch, delete, api-resources.
//! Skipped with a printed reason where kubectl is not installed.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use capi_testkit::env::TestEnv;

fn kubectl(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(env.kubeconfig_path())
        .args(args);
    let out = if let Some(input) = stdin {
        use std::io::Write;
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    } else {
        cmd.output().unwrap()
    };
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_just_works() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        println!("skipped: kubectl is not installed");
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
        // `kubectl create configmap` sends protobuf, which the server does not decode yet;
        // manifests go as JSON.
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
