//! HTTP/2 on the TLS port, as kube-apiserver serves it: a client choosing `h2` by ALPN (as
//! kubectl and every Go client do) gets HTTP/2, kube-rs (ALPN `http/1.1`) and clients offering
//! no ALPN HTTP/1.1; watches stream event by event over an h2 stream, many streams share one
//! connection, large lists go through flow control, injected cuts reset the watch's stream
//! (not the connection), and a restart drops the connection. kubectl parts are skipped with a
//! printed reason where it is not installed.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capi_testkit::env::TestEnv;
use capi_testkit::server::faults::{Cut, Fault, FaultRule};
use capi_testkit::server::restart::Restart;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use tokio_rustls::rustls;

const WAIT: Duration = Duration::from_secs(10);

/// A TLS connection to `env` trusting its CA, offering `alpn`; what ALPN chose.
async fn connect(
    env: &TestEnv,
    alpn: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Option<Vec<u8>>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            env.ca_der().unwrap().to_vec(),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let addr = env.url().unwrap().trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, chosen)
}

/// An HTTP/2 connection to `env` (ALPN `h2`, as Go clients offer it first).
async fn h2(env: &TestEnv) -> SendRequest<Empty<Bytes>> {
    h2_pinging(env, None).await
}

/// [`h2`], the client pinging the server every `ping` (as client-go's transport does after 30 s
/// of silence) and dropping the connection when a ping goes unanswered for a second.
async fn h2_pinging(env: &TestEnv, ping: Option<Duration>) -> SendRequest<Empty<Bytes>> {
    let (tls, chosen) = connect(env, &[b"h2", b"http/1.1"]).await;
    assert_eq!(chosen.as_deref(), Some(&b"h2"[..]));
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    if let Some(every) = ping {
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(every)
            .keep_alive_timeout(Duration::from_secs(1))
            .keep_alive_while_idle(true);
    }
    let (send, conn) = builder.handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    send
}

fn get(env: &TestEnv, path: &str) -> http::Request<Empty<Bytes>> {
    let url = format!("{}{path}", env.url().unwrap());
    http::Request::get(url)
        .header(
            "Authorization",
            format!("Bearer {}", env.server().auth().admin_token()),
        )
        .body(Empty::new())
        .unwrap()
}

fn configmap(name: &str, data: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.data = Some([("k".to_owned(), data.to_owned())].into());
    cm
}

/// The next newline-terminated line of `body` (with `buf` holding what came after the last).
async fn next_line(body: &mut hyper::body::Incoming, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            return Some(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        let frame = tokio::time::timeout(WAIT, body.frame()).await.unwrap()?;
        if let Ok(data) = frame.ok()?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}

#[tokio::test]
async fn alpn_h2_gets_http2_and_kube_rs_and_clients_without_alpn_get_http1() {
    let env = TestEnv::start().await.unwrap();
    let counts = env.server().connections().clone();
    env.client().apiserver_version().await.unwrap();
    assert!(counts.http1() >= 1);
    assert_eq!(counts.http2(), 0, "kube-rs speaks HTTP/1.1");

    let mut send = h2(&env).await;
    let resp = send.send_request(get(&env, "/version")).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let version: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(version["minor"], "36", "{version}");
    assert_eq!(counts.http2(), 1);

    // Many requests, one connection.
    let reqs = (0..20).map(|_| {
        let mut send = send.clone();
        let req = get(&env, "/api/v1/namespaces");
        async move { send.send_request(req).await.map(|r| r.status()) }
    });
    let statuses: Vec<_> = futures::future::try_join_all(reqs).await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(counts.http2(), 1);

    // `http/1.1` alone, or no ALPN at all: HTTP/1.1, as Go's server.
    let before = counts.http1();
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let (tls, chosen) = connect(&env, alpn).await;
        assert_eq!(chosen, alpn.first().map(|p| p.to_vec()));
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = send.send_request(get(&env, "/version")).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_11);
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(counts.http1(), before + 2);
    assert_eq!(counts.http2(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_over_h2_gets_each_event_as_it_happens_beside_other_streams() {
    let env = TestEnv::start().await.unwrap();
    let mut send = h2(&env).await;
    let resp = send
        .send_request(get(
            &env,
            "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=false",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/json"
    );
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let name = format!("cm-{i}");
        let start = Instant::now();
        api.create(&PostParams::default(), &configmap(&name, "v"))
            .await
            .unwrap();
        // Each event comes before the next object exists: nothing holds it back.
        let line = next_line(&mut body, &mut buf).await.unwrap();
        slowest = slowest.max(start.elapsed());
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["type"], "ADDED", "{line}");
        assert_eq!(event["object"]["metadata"]["name"], name.as_str(), "{line}");
        assert!(buf.is_empty(), "one event at a time: {buf:?}");

        // The same connection serves other requests while the watch streams.
        let resp = send
            .send_request(get(
                &env,
                &format!("/api/v1/namespaces/default/configmaps/{name}"),
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    println!("slowest event over h2: {slowest:?} (create to event)");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    assert_eq!(env.faults().open_watches(Some("configmaps")), 1);
    assert_eq!(env.server().connections().http2(), 1);

    // A quiet watch on a connection the client pings stays open: the server answers pings
    // and sends none of its own that could time out.
    let mut send = h2_pinging(&env, Some(Duration::from_millis(100))).await;
    let mut body = send
        .send_request(get(
            &env,
            "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=false",
        ))
        .await
        .unwrap()
        .into_body();
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.create(&PostParams::default(), &configmap("after-quiet", "v"))
        .await
        .unwrap();
    // The existing objects first (a watch from no resourceVersion starts with them).
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("after-quiet")) {
        assert!(seen.len() <= 5, "{seen:?}");
        seen.push(next_line(&mut body, &mut buf).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_list_goes_through_h2_flow_control_whole() {
    let env = TestEnv::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    let data = "x".repeat(2048);
    futures::stream::iter(0..1500)
        .map(|i| {
            let (api, cm) = (api.clone(), configmap(&format!("big-{i:04}"), &data));
            async move { api.create(&PostParams::default(), &cm).await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let mut send = h2(&env).await;
    let start = Instant::now();
    let resp = send
        .send_request(get(&env, "/api/v1/namespaces/default/configmaps"))
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let took = start.elapsed();
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1500);
    assert_eq!(items[1499]["metadata"]["name"], "big-1499");
    assert!(body.len() > 1500 * 2048, "{}", body.len());
    println!(
        "list of {} bytes over h2 (default client windows) in {took:?}",
        body.len()
    );
}

/// Waits for the end of `body`: `Err` when the stream was reset or the connection dropped.
async fn end_of(body: &mut hyper::body::Incoming) -> Result<(), String> {
    loop {
        match tokio::time::timeout(WAIT, body.frame()).await.unwrap() {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("{e:?}")),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_watches_reset_their_h2_stream_and_a_restart_drops_the_connection() {
    let mut env = TestEnv::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    api.create(&PostParams::default(), &configmap("a", "1"))
        .await
        .unwrap();
    let mut send = h2(&env).await;
    let watch = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0";

    // A rule cutting after one event: the event, then a reset stream.
    env.faults().add(
        FaultRule::new(Fault::CutWatch(Cut::AfterEvents(1)))
            .resource("configmaps")
            .times(1),
    );
    let mut body = send
        .send_request(get(&env, watch))
        .await
        .unwrap()
        .into_body();
    let mut buf = Vec::new();
    let line = next_line(&mut body, &mut buf).await.unwrap();
    assert!(line.contains("\"ADDED\""), "{line}");
    let end = end_of(&mut body).await;
    assert!(
        end.as_ref().is_err_and(|e| e.contains("INTERNAL_ERROR")),
        "{end:?}"
    );
    // Only the stream: the connection serves on.
    let resp = send.send_request(get(&env, "/version")).await.unwrap();
    assert_eq!(resp.status(), 200);

    // `cut_watches` does the same to an open watch.
    let mut body = send
        .send_request(get(&env, watch))
        .await
        .unwrap()
        .into_body();
    let line = next_line(&mut body, &mut Vec::new()).await.unwrap();
    assert!(line.contains("\"ADDED\""), "{line}");
    assert_eq!(env.faults().cut_watches(Some("configmaps")), 1);
    let end = end_of(&mut body).await;
    assert!(end.is_err(), "{end:?}");
    assert!(send.send_request(get(&env, "/version")).await.is_ok());

    // A restart drops the whole connection, watch and all.
    let mut body = send
        .send_request(get(&env, watch))
        .await
        .unwrap()
        .into_body();
    let line = next_line(&mut body, &mut Vec::new()).await.unwrap();
    assert!(line.contains("\"ADDED\""), "{line}");
    env.restart(Restart::KeepState).await.unwrap();
    let end = end_of(&mut body).await;
    assert!(end.is_err(), "{end:?}");
    assert!(send.send_request(get(&env, "/version")).await.is_err());
    // A new connection works.
    let mut send = h2(&env).await;
    let resp = send.send_request(get(&env, "/version")).await.unwrap();
    assert_eq!(resp.status(), 200);
}

fn have_kubectl() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok();
    if !ok {
        println!("skipped: kubectl is not installed");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_speaks_h2_and_watches_and_lists_over_it() {
    if !have_kubectl() {
        return;
    }
    let env = TestEnv::start().await.unwrap();
    let counts = env.server().connections().clone();
    let kubeconfig = env.kubeconfig_path();
    let (h1, h2) = (counts.http1(), counts.http2());
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "--raw", "/version"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"minor\":\"36\""));
    assert_eq!(counts.http2(), h2 + 1, "kubectl negotiated h2");
    assert_eq!(counts.http1(), h1, "and nothing else");

    // `kubectl get -w`: each object shows as it is created.
    let (mut watch, mut rx) =
        support::kubectl_lines(&kubeconfig, &["get", "configmaps", "-w", "-o", "name"]);
    let api: Api<ConfigMap> = Api::default_namespaced(env.client());
    // Give kubectl the time to list and start watching (an empty list prints nothing).
    let deadline = Instant::now() + WAIT;
    while env.faults().open_watches(Some("configmaps")) == 0 {
        assert!(Instant::now() < deadline, "kubectl did not watch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..3 {
        let name = format!("w-{i}");
        api.create(&PostParams::default(), &configmap(&name, "v"))
            .await
            .unwrap();
        let line = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line, format!("configmap/{name}"));
    }
    let _ = watch.kill();
    let _ = watch.wait();

    // A list of a few MiB, as JSON.
    let data = "y".repeat(4096);
    futures::stream::iter(0..800)
        .map(|i| {
            let (api, cm) = (api.clone(), configmap(&format!("l-{i:03}"), &data));
            async move { api.create(&PostParams::default(), &cm).await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let (h1, h2) = (counts.http1(), counts.http2());
    let kubeconfig2 = kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig2)
            .args(["get", "configmaps", "-o", "json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 803);
    assert_eq!(counts.http1(), h1, "kubectl did not fall back to HTTP/1.1");
    assert_eq!(counts.http2(), h2 + 1);
}
