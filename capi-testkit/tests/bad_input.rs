//! Bad input never crashes the server: random methods, paths, content types and bodies (malformed
//! JSON and YAML, deep nesting, huge values, invalid names) get an HTTP answer, and the server keeps
//! serving.

#![allow(clippy::unwrap_used)]

use capi_testkit::server::Server;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

fn paths() -> impl Strategy<Value = String> {
    let seg = "[a-zA-Z0-9._~%-]{0,12}";
    prop_oneof![
        Just("/api/v1/namespaces/default/configmaps".to_string()),
        Just("/api/v1/namespaces".to_string()),
        seg.prop_map(|s| format!("/api/v1/namespaces/default/configmaps/{s}")),
        seg.prop_map(|s| format!("/apis/cluster.x-k8s.io/v1beta2/namespaces/{s}/clusters")),
        (seg, seg).prop_map(|(a, b)| format!("/apis/{a}/{b}")),
        "(/[a-z0-9?=&.-]{0,8}){0,6}",
    ]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        "\\PC{0,64}".prop_map(String::into_bytes),
        (1usize..300).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        "[a-zA-Z_.-]{0,80}".prop_map(|name| format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"{name}":"x"}}}},"data":{{"k":"v"}}}}"#).into_bytes()),
        Just(br#"[{"op":"test","path":"/nope","value":1}]"#.to_vec()),
        Just(b"metadata:\n  name: [unclosed".to_vec()),
        Just(br#"{"metadata":{"name":"x"},"spec":"not-an-object","status":[1]}"#.to_vec()),
        Just(br#"{"metadata":"x"}"#.to_vec()),
        // Kubernetes protobuf: the magic, then anything; or a ConfigMap envelope around anything.
        any::<Vec<u8>>().prop_map(|b| [b"k8s\x00".to_vec(), b].concat()),
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|raw| {
            let mut b = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12".to_vec();
            b.push(u8::try_from(raw.len()).unwrap());
            b.extend(raw);
            b
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn requests_never_crash_the_server(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        path in paths(),
        query in "[a-zA-Z=&]{0,20}",
        content_type in prop::sample::select(vec!["application/json", "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain", "application/vnd.kubernetes.protobuf"]),
        body in bodies(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let server = Server::new();
            let router = server.router("in-process");
            let uri = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
            let Ok(request) = http::Request::builder().method(method).uri(&uri).header("content-type", content_type).body(axum::body::Body::from(body)) else {
                return; // not a request any client could send
            };
            let resp = router.clone().oneshot(request).await.unwrap();
            let code = resp.status().as_u16();
            assert!((200..600).contains(&code));
            let _ = resp.into_body().collect().await;
            let health = router.oneshot(http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap()).await.unwrap();
            assert_eq!(health.status().as_u16(), 200);
        });
    }
}
