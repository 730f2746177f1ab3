//! The socket's connection lifecycle, as kube-apiserver's Go server has it, over real sockets:
//! idle connections close after the idle timeout (HTTP/1.1: closed; HTTP/2: a `GOAWAY`), a
//! client that does not finish its headers (or its TLS handshake) in time is cut without an
//! answer, and a graceful stop (`TestEnv::shutdown`, the binary's SIGTERM) closes the port,
//! sends `GOAWAY` to HTTP/2 clients, ends watches with their last chunk or `END_STREAM`, and
//! answers the requests in flight. Timeouts are shortened through
//! `TestEnvBuilder::http_timeouts`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use capi_testkit::env::TestEnv;
use capi_testkit::server::HttpTimeouts;
use capi_testkit::server::faults::{Fault, FaultRule};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

const WAIT: Duration = Duration::from_secs(10);

/// Reads `io` to its end (EOF or an error, as a reset): what came, and how long it took.
async fn read_to_end<S: AsyncRead + Unpin>(io: &mut S) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(WAIT, io.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (out, start.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {WAIT:?}: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` (headers and body) from `io`.
async fn read_response<S: AsyncRead + Unpin>(io: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap();
            if out.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(WAIT, io.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed mid-response: {text}");
        out.extend_from_slice(&buf[..n]);
    }
}

/// Reads from `io` until `what` came; what came.
async fn read_until<S: AsyncRead + Unpin>(io: &mut S, what: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(what) {
        let n = tokio::time::timeout(WAIT, io.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed before {what:?}: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn request(path: &str, token: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: capi-testkit\r\nAuthorization: Bearer {token}\r\n\r\n")
}

/// `host:port` of a URL.
fn authority(url: &str) -> String {
    url.split_once("://")
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_owned()
}

/// A TLS connection to `addr` trusting `ca_der`, offering `alpn`.
async fn tls(
    addr: &str,
    ca_der: &[u8],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The HTTP/2 client connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// Reads HTTP/2 frames from `io` until a GOAWAY: its error code, and how long it took.
/// Other frames (SETTINGS, PING...) are skipped; nothing is answered.
async fn read_goaway<S: AsyncRead + Unpin>(io: &mut S) -> (u32, Duration) {
    let start = Instant::now();
    loop {
        let mut head = [0u8; 9];
        tokio::time::timeout(WAIT, io.read_exact(&mut head))
            .await
            .expect("no GOAWAY in time")
            .expect("connection closed before a GOAWAY");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        io.read_exact(&mut payload).await.unwrap();
        if head[3] == 0x7 {
            let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
            return (code, start.elapsed());
        }
    }
}

fn short(read_header: u64, idle: u64) -> HttpTimeouts {
    HttpTimeouts::default()
        .read_header(Duration::from_millis(read_header))
        .idle(Duration::from_millis(idle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_connections_close_after_the_idle_timeout_counted_from_the_last_response() {
    let env = TestEnv::builder()
        .insecure_http(true)
        .http_timeouts(short(10_000, 400))
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let token = env.server().auth().admin_token().to_owned();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(request("/version", &token).as_bytes())
        .await
        .unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // Requests within the idle timeout keep it open.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        conn.write_all(request("/version", &token).as_bytes())
            .await
            .unwrap();
        assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    }
    let (rest, took) = read_to_end(&mut conn).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "closed {took:?} after the last response"
    );
    println!("idle HTTP/1.1 connection closed {took:?} after its last response (idle 400 ms)");
    // The client's pool opens another one.
    env.client().apiserver_version().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_finish_their_headers_in_time_are_cut_without_an_answer() {
    let env = TestEnv::builder()
        .insecure_http(true)
        .http_timeouts(short(500, 5_000))
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let token = env.server().auth().admin_token().to_owned();

    // Connected, and nothing sent.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let (got, took) = read_to_end(&mut silent).await;
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // A slow loris: a header line every 100 ms, never the blank line. Bytes keep coming, the
    // deadline holds.
    let mut loris = TcpStream::connect(&addr).await.unwrap();
    let start = Instant::now();
    loris
        .write_all(b"GET /version HTTP/1.1\r\nHost: capi-testkit\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if loris
                .write_all(format!("X-Slow-{i}: yes\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            // Cut: the write side may take a while to notice, the read side does not.
            let mut probe = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(1), loris.read(&mut probe)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => panic!("answered: {}", String::from_utf8_lossy(&probe[..n])),
                Err(_) => {}
            }
        }
    };
    trickle.await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    println!("slow-loris client cut {took:?} after its first byte (read-header timeout 500 ms)");

    // An idle keep-alive connection has the idle timeout (5 s), not the header one, before
    // its next request; the header timeout runs from that request's first byte.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(request("/version", &token).as_bytes())
        .await
        .unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    conn.write_all(request("/version", &token).as_bytes())
        .await
        .unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let start = Instant::now();
    conn.write_all(b"GET /version HTTP/1.1\r\n").await.unwrap();
    let (got, _) = read_to_end(&mut conn).await;
    let took = start.elapsed();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_and_headers_are_timed_and_idle_h2_connections_get_a_goaway() {
    let env = TestEnv::builder()
        .http_timeouts(short(500, 600))
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let ca = env.ca_der().unwrap().to_vec();

    // No handshake at all: cut after the read-header timeout, as Go bounds handshakes.
    let mut raw = TcpStream::connect(&addr).await.unwrap();
    let (_, took) = read_to_end(&mut raw).await;
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(env.server().connections().handshakes_failed() >= 1);

    // A handshake, then no request.
    let mut conn = tls(&addr, &ca, &[b"http/1.1"]).await;
    let (got, took) = read_to_end(&mut conn).await;
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // HTTP/2 with no stream: a GOAWAY (NO_ERROR) after the idle timeout, then the close.
    let mut h2 = tls(&addr, &ca, &[b"h2"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(H2_PREFACE).await.unwrap();
    let (code, took) = read_goaway(&mut h2).await;
    assert_eq!(code, 0, "GOAWAY NO_ERROR");
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let (_, closed) = read_to_end(&mut h2).await;
    assert!(closed < Duration::from_secs(3), "{closed:?}");
    println!("idle h2 connection: GOAWAY after {took:?}, closed {closed:?} later (idle 600 ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_ends_watches_cleanly_and_answers_requests_in_flight() {
    let env = TestEnv::builder()
        .http_timeouts(short(10_000, 10_000))
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let ca = env.ca_der().unwrap().to_vec();
    let token = env.server().auth().admin_token().to_owned();
    env.faults().add(
        FaultRule::new(Fault::Latency(Duration::from_millis(1500)))
            .resource("namespaces")
            .name("kube-public"),
    );

    // A kube-rs watch (HTTP/1.1).
    let cms: Api<ConfigMap> = Api::default_namespaced(env.client());
    let mut kube_watch = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    // A raw HTTP/1.1 watch, to see its last chunk.
    let mut h1_watch = tls(&addr, &ca, &[b"http/1.1"]).await;
    h1_watch
        .write_all(
            request(
                "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0",
                &token,
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    read_until(&mut h1_watch, "\r\n\r\n").await;
    // An HTTP/2 connection with a watch on it.
    let h2_io = tls(&addr, &ca, &[b"h2"]).await;
    let (mut send, h2_conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(h2_io))
        .await
        .unwrap();
    let h2_conn = tokio::spawn(h2_conn);
    let watch_req = http::Request::get(format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0",
        env.url().unwrap()
    ))
    .header("Authorization", format!("Bearer {token}"))
    .body(Empty::new())
    .unwrap();
    let mut h2_watch = send.send_request(watch_req).await.unwrap().into_body();
    // A raw HTTP/2 connection, idle, to see its GOAWAY.
    let mut h2_raw = tls(&addr, &ca, &[b"h2"]).await;
    h2_raw.write_all(H2_PREFACE).await.unwrap();
    // A request in flight (1.5 s of injected latency).
    let mut slow = tls(&addr, &ca, &[b"http/1.1"]).await;
    slow.write_all(request("/api/v1/namespaces/kube-public", &token).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    let stopped = tokio::spawn(env.shutdown());

    // The raw h2 connection: GOAWAY NO_ERROR at once.
    let (code, took) = read_goaway(&mut h2_raw).await;
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The HTTP/1.1 watch: its last chunk, then the close.
    let (tail, _) = read_to_end(&mut h1_watch).await;
    assert!(
        tail.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&tail)
    );
    // The h2 watch: END_STREAM, no reset.
    loop {
        match tokio::time::timeout(WAIT, h2_watch.frame()).await.unwrap() {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("h2 watch reset: {e:?}"),
        }
    }
    // kube-rs's watch: a normal end.
    while let Some(event) = tokio::time::timeout(WAIT, kube_watch.next()).await.unwrap() {
        event.unwrap();
    }
    // The request in flight: answered, then the connection closes.
    let (answer, _) = read_to_end(&mut slow).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"kube-public\""), "{answer}");
    tokio::time::timeout(WAIT, stopped).await.unwrap().unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    println!("graceful shutdown took {took:?} (1.2 s of it the request in flight)");
    assert!(tokio::time::timeout(WAIT, h2_conn).await.unwrap().is_ok());
    // The port is closed.
    assert!(TcpStream::connect(&addr).await.is_err());
}

/// The `capi-testkit` binary, when this test build has one (the `cli` feature).
fn binary() -> Option<PathBuf> {
    let bin = option_env!("CARGO_BIN_EXE_capi-testkit").map(PathBuf::from);
    if bin.is_none() {
        println!("skipped: no capi-testkit binary in this build (add --features cli)");
    }
    bin
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_on_sigterm_sends_goaway_ends_watches_answers_requests_and_exits_0() {
    let Some(bin) = binary() else { return };
    let dir = std::env::temp_dir().join(format!("capi-testkit-life-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let faults = dir.join("faults.yaml");
    std::fs::write(
        &faults,
        "- resource: namespaces\n  name: kube-public\n  latencyMs: 1500\n",
    )
    .unwrap();
    let mut child = Child(
        Command::new(&bin)
            .args(["serve", "--port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--faults")
            .arg(&faults)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its log, kept for the assertion messages.
    let stderr = child.0.stderr.take().unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let log_writer = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log_writer.lock().unwrap().push_str(&line);
            log_writer.lock().unwrap().push('\n');
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        match std::fs::read_to_string(&kubeconfig) {
            Ok(t) if t.contains("current-context") => break t,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "did not start: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let url = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = config["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ca_pem = {
        use base64::Engine as _;
        let data = config["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
        )
        .unwrap()
    };
    let ca_der = {
        use base64::Engine as _;
        let body: String = ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let addr = authority(&url);

    // An idle h2 connection (raw, to see the GOAWAY), an h2 connection with a watch (hyper's
    // client, which answers the GOAWAY's ping), an HTTP/1.1 watch and a request in flight.
    let mut h2_raw = tls(&addr, &ca_der, &[b"h2"]).await;
    h2_raw.write_all(H2_PREFACE).await.unwrap();
    let h2_io = tls(&addr, &ca_der, &[b"h2"]).await;
    let (mut send, h2_conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(h2_io))
        .await
        .unwrap();
    tokio::spawn(h2_conn);
    let watch_path = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0";
    let watch_req = http::Request::get(format!("{url}{watch_path}"))
        .header("Authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    let mut h2_watch = send.send_request(watch_req).await.unwrap().into_body();
    let mut h1_watch = tls(&addr, &ca_der, &[b"http/1.1"]).await;
    h1_watch
        .write_all(request(watch_path, &token).as_bytes())
        .await
        .unwrap();
    read_until(&mut h1_watch, "\r\n\r\n").await;
    let mut slow = tls(&addr, &ca_der, &[b"http/1.1"]).await;
    slow.write_all(request("/api/v1/namespaces/kube-public", &token).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let (code, took) = read_goaway(&mut h2_raw).await;
    assert_eq!(code, 0, "GOAWAY NO_ERROR");
    assert!(took < Duration::from_secs(1), "GOAWAY after {took:?}");
    let (tail, _) = read_to_end(&mut h1_watch).await;
    assert!(
        tail.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&tail)
    );
    loop {
        match tokio::time::timeout(WAIT, h2_watch.frame()).await.unwrap() {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("h2 watch reset: {e:?}"),
        }
    }
    let (answer, _) = read_to_end(&mut slow).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = start.elapsed();
    assert!(status.success(), "{status}: {}", log.lock().unwrap());
    println!(
        "capi-testkit serve exited {status} {took:?} after SIGTERM (1.2 s of it the request in flight)"
    );
    assert!(TcpStream::connect(&addr).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn http1_headers_may_take_go_s_1_mib_and_far_more_gets_431() {
    let env = TestEnv::builder()
        .insecure_http(true)
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let token = env.server().auth().admin_token().to_owned();
    let with_header = |size: usize| {
        format!(
            "GET /version HTTP/1.1\r\nHost: capi-testkit\r\nAuthorization: Bearer {token}\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        )
    };
    // Beyond hyper's default (about 400 KiB), within Go's `MaxHeaderBytes`.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(with_header(900 * 1024).as_bytes())
        .await
        .unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
    // hyper refuses a head once 1 MiB of it is buffered with no end in sight, and a read may
    // bring in up to as much again: well beyond, the answer is Go's 431.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    // The server may close before it has read all of it.
    let _ = conn
        .write_all(with_header(3 * 1024 * 1024).as_bytes())
        .await;
    let (answer, _) = read_to_end(&mut conn).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

/// The bound: a request still in flight when the shutdown timeout ends is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_cuts_what_is_still_in_flight_after_the_shutdown_timeout() {
    let env = TestEnv::builder()
        .insecure_http(true)
        .http_timeouts(HttpTimeouts::default().shutdown(Duration::from_millis(300)))
        .start()
        .await
        .unwrap();
    let addr = authority(&env.url().unwrap());
    let token = env.server().auth().admin_token().to_owned();
    env.faults().add(
        FaultRule::new(Fault::Latency(Duration::from_secs(5)))
            .resource("namespaces")
            .name("kube-public"),
    );
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(request("/api/v1/namespaces/kube-public", &token).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    env.shutdown().await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let (answer, _) = read_to_end(&mut slow).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
}
