//! What the server's HTTP-level tests share: a raw JSON request through the env's client, and
//! the check for a kubectl to drive.

#![allow(clippy::unwrap_used, dead_code)]

use capi_testkit::env::TestEnv;
use http_body_util::BodyExt;
use serde_json::Value;

/// Status code, Warning headers and body (`Value::Null` when it is not JSON) of one request.
pub struct Reply {
    pub code: u16,
    pub warnings: Vec<String>,
    pub body: Value,
}

/// Sends `body` as `content_type` (JSON for `Value::Null` too) and returns the whole reply.
pub async fn request(
    env: &TestEnv,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Reply {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .header("Accept", "application/json")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .unwrap();
    let resp = env.client().send(request).await.unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("Warning")
        .iter()
        .map(|w| w.to_str().unwrap_or_default().to_owned())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        code,
        warnings,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// [`request`]'s status code and body.
pub async fn send(
    env: &TestEnv,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let reply = request(env, method, path, content_type, body).await;
    (reply.code, reply.body)
}

/// One file of the golden transcripts of kube-apiserver 1.36, or `None` (said, for the test that
/// then skips) where they are absent.
pub fn golden(file: &str) -> Option<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/golden/kube-apiserver-1.36")
        .join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("skipped: {} is absent", path.display());
        return None;
    };
    Some(serde_json::from_str(&text).unwrap())
}

/// GETs `path` asking for `accept` and returns the status code and the JSON body
/// (`Value::Null` when the body is not JSON).
pub async fn get(env: &TestEnv, path: &str, accept: &str) -> (u16, Value) {
    let request = http::Request::builder()
        .uri(path)
        .header("Accept", accept)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = env.client().send(request).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Whether kubectl is missing; says so, for the test that then skips.
pub fn kubectl_missing() -> bool {
    let missing = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err();
    if missing {
        println!("skipped: kubectl is not installed");
    }
    missing
}

/// Runs kubectl with `kubeconfig` on `args`, `stdin` written to it: whether it succeeded, and
/// its stdout then stderr.
pub fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts a long-running kubectl (`get -w`, say) and hands its stdout over line by line.
pub fn kubectl_lines(
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> (
    std::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}
