//! What the server's HTTP-level tests share: a raw JSON request through the env's client, and
//! the check for a kubectl to drive.

#![allow(clippy::unwrap_used, dead_code)]

use capi_testkit::env::TestEnv;
use http_body_util::BodyExt;
use serde_json::Value;

/// Sends `body` as `content_type` (JSON for `Value::Null` too) and returns the status code and
/// the JSON body (`Value::Null` when the body is not JSON).
pub async fn send(
    env: &TestEnv,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .header("Accept", "application/json")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
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
