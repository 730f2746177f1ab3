//! The API server's benchmarks, each beside etcd (the store under kube-apiserver) measured in
//! the same run, the same way:
//!
//! 1. start-up: `TestEnv::builder().start()` until a first request answers (socket over HTTPS,
//!    the default, socket over plain HTTP, and in process), against etcd's start until a first
//!    range read answers;
//! 2. throughput: creates of 1 KiB ConfigMaps and single-object GETs over HTTP/1.1, against
//!    etcd puts of the same bytes and range reads of the same keys, both with `BENCH_CONNS`
//!    (default 16) connections each running one request at a time;
//! 3. watch delivery: 1,000 watch streams on one namespace's ConfigMaps, time from a write's
//!    response to the event at each watcher, against 1,000 etcd watch streams on a prefix; the
//!    server's CPU per delivery is printed, and the watchers' (this process's), which runs on
//!    the same cores and so delays deliveries as much;
//! 4. memory: RSS of the server process holding 100,000 ConfigMaps of 2 KiB, against etcd's
//!    holding the same bytes.
//!
//! Sections are `startup`, `throughput`, `watch-http1`, `watch-http2` and `memory`; arguments pick
//! those whose names contain one (`... --bench server -- watch` runs both watch sections).
//!
//! `cargo bench -p capi-testkit --bench server` (or `cargo xtask bench --server-only`, which also
//! installs etcd and builds the `capi-testkit` binary the server process is run from). The server
//! is a separate process: the `capi-testkit serve` binary when the bench is built with the `cli`
//! feature (or `CAPI_TESTKIT_BIN` names one), else this binary again with `--serve`. Without an
//! `etcd` on `PATH` the baselines are skipped with the reason printed. etcd runs with its default
//! flags (fsync on, plaintext loopback), its data in a fresh folder on /dev/shm when that exists.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capi_testkit::env::TestEnv;
use etcdv3client::{EtcdClient, pb};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::rustls;

const WATCHERS: usize = 1000;
const WATCH_WRITES: usize = 100;
const MEMORY_OBJECTS: usize = 100_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user and system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ
}

/// Operations per second and the CPU the serving process spent on each.
#[derive(Clone, Copy)]
struct Rate {
    per_sec: f64,
    cpu_us: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0}/s ({:.0} µs CPU/op)", self.per_sec, self.cpu_us)
    }
}

/// Runs `load` (which returns operations per second for `n` operations) and measures the CPU
/// process `pid` spent meanwhile.
async fn measured(pid: u32, n: usize, load: impl std::future::Future<Output = f64>) -> Rate {
    let before = cpu_secs(pid);
    let per_sec = load.await;
    Rate {
        per_sec,
        cpu_us: (cpu_secs(pid) - before) * 1e6 / n as f64,
    }
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The server process.

/// The `capi-testkit` binary, when there is one to run.
fn server_binary() -> Option<PathBuf> {
    std::env::var_os("CAPI_TESTKIT_BIN")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_capi-testkit").map(PathBuf::from))
        .filter(|p| p.exists())
}

struct ServerProc {
    proc: Proc,
    addr: SocketAddr,
    /// How clients reach it over TLS (trusting its CA, offering `h2`), when it serves HTTPS.
    tls: Option<Arc<rustls::ClientConfig>>,
    _dir: TempDir,
}

impl ServerProc {
    /// A connection for requests: HTTP/1.1 over plain HTTP, HTTP/2 over TLS.
    async fn sender(&self) -> Sender {
        match &self.tls {
            None => connect(self.addr).await,
            Some(tls) => Sender::H2(connect_h2(self.addr, tls).await, https(self.addr)),
        }
    }
}

/// Starts the server as its own process and waits for its kubeconfig: over plain HTTP, as the
/// load driver (and etcd's plaintext baseline) speaks, unless `tls`.
fn spawn_server(tls: bool) -> ServerProc {
    let dir = TempDir::new("capi-testkit-bench-server");
    let kubeconfig = dir.0.join("kubeconfig");
    let mut cmd = match server_binary() {
        Some(bin) => {
            let mut c = Command::new(bin);
            c.args(["serve", "--port", "0", "--kubeconfig"])
                .arg(&kubeconfig);
            if !tls {
                c.arg("--insecure-http");
            }
            c
        }
        None => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.arg(if tls { "--serve-tls" } else { "--serve" })
                .arg(&kubeconfig);
            c
        }
    };
    cmd.env("RUST_LOG", "warn").stdout(Stdio::null());
    let mut proc = Proc(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(addr) = std::fs::read_to_string(&kubeconfig)
            .ok()
            .and_then(|k| server_url(&k))
        {
            return ServerProc {
                proc,
                addr,
                tls: tls.then(|| client_tls(&kubeconfig)),
                _dir: dir,
            };
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("the API server process exited: {status}");
        }
        assert!(Instant::now() < deadline, "the API server did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn server_url(kubeconfig: &str) -> Option<SocketAddr> {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|u| u.trim().trim_matches('"'))
        .and_then(|u| {
            u.strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"))
        })
        .and_then(|a| a.trim_end_matches('/').parse().ok())
}

/// A TLS client configuration trusting the CA of the server `kubeconfig` names, offering `h2`
/// first, as Go clients do.
fn client_tls(kubeconfig: &Path) -> Arc<rustls::ClientConfig> {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = futures::executor::block_on(kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    ))
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for der in config.root_cert.expect("the kubeconfig names no CA") {
        roots
            .add(rustls::pki_types::CertificateDer::from(der))
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(tls)
}

/// `--serve PATH` (`--serve-tls PATH`): what `capi-testkit serve [--insecure-http] --kubeconfig
/// PATH` does, for builds without the binary.
fn serve_self(kubeconfig: &Path, tls: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let env = TestEnv::builder()
            .insecure_http(!tls)
            .start()
            .await
            .unwrap();
        let tmp = kubeconfig.with_extension("tmp");
        env.write_kubeconfig_to(&tmp).unwrap();
        std::fs::rename(&tmp, kubeconfig).unwrap();
        std::future::pending::<()>().await;
    });
}

// ---------------------------------------------------------------------------------------------
// etcd.

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = base.join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The etcd flags besides the data folder and ports: none, as a default install runs it.
const ETCD_FLAGS: &str = "(defaults: fsync on, snapshot-count 100000, no TLS)";

struct Etcd {
    proc: Proc,
    endpoint: String,
    _dir: TempDir,
}

fn etcd_available() -> Result<String, String> {
    match Command::new("etcd").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()),
        Ok(o) => Err(format!("`etcd --version` failed: {}", o.status)),
        Err(e) => Err(format!(
            "no etcd on PATH ({e}); install it with `apt-get install -y etcd-server` (cargo xtask bench does)"
        )),
    }
}

/// Starts a single-member etcd on fresh ports and data, returning once it answers a range read,
/// with the time that took.
async fn start_etcd() -> (Etcd, Duration) {
    let dir = TempDir::new("capi-testkit-bench-etcd");
    let (client_port, peer_port) = (free_port(), free_port());
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.0.join("etcd.log")).unwrap();
    let started = Instant::now();
    let proc = Proc(
        Command::new("etcd")
            .arg("--name=bench")
            .arg(format!("--data-dir={}", dir.0.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=bench={peer}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = started + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = EtcdClient::new(vec![client.clone()], None).await
            && c.kv
                .range(pb::RangeRequest {
                    key: b"/ready".to_vec(),
                    ..Default::default()
                })
                .await
                .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not answer; see {}",
            dir.0.join("etcd.log").display()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    (
        Etcd {
            proc,
            endpoint: client,
            _dir: dir,
        },
        took,
    )
}

async fn etcd_clients(endpoint: &str, n: usize) -> Vec<EtcdClient> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            EtcdClient::new(vec![endpoint.to_owned()], None)
                .await
                .unwrap(),
        );
    }
    out
}

/// Runs `n` operations over the clients (one at a time on each), returning operations per second.
async fn etcd_load<F, Fut>(clients: &[EtcdClient], n: usize, op: F) -> f64
where
    F: Fn(EtcdClient, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = EtcdClient> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .map(|mut c| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    c = op(c, i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// A client connection: HTTP/1.1 (one request at a time) or HTTP/2 (requests multiplexed).
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    /// With the `https://host:port` that HTTP/2 requests' URIs must carry.
    H2(http2::SendRequest<Full<Bytes>>, String),
}

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Sender::H1(sender)
}

fn https(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

/// `req` with its path made a URI under `base`, as HTTP/2 wants (`:scheme` and `:authority`).
fn absolute<B>(mut req: Request<B>, base: &str) -> Request<B> {
    *req.uri_mut() = format!("{base}{}", req.uri()).parse().unwrap();
    req
}

/// An HTTP/2 connection over TLS, which must negotiate `h2`; clones of the sender share it.
async fn connect_h2(
    addr: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
) -> http2::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

fn request(method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("user-agent", "server-bench")
        .body(Full::new(body))
        .unwrap()
}

async fn call(sender: &mut Sender, req: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let resp = match sender {
        Sender::H1(s) => {
            s.ready().await.unwrap();
            s.send_request(req).await.unwrap()
        }
        Sender::H2(s, base) => {
            let req = absolute(req, base);
            s.ready().await.unwrap();
            s.send_request(req).await.unwrap()
        }
    };
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// Runs `n` requests over `conns` connections (one at a time on each), returning requests per
/// second; every answer must have status `expect`.
async fn http_load<F>(addr: SocketAddr, conns: usize, n: usize, expect: StatusCode, make: F) -> f64
where
    F: Fn(usize) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        senders.push(connect(addr).await);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut s| {
            let (next, make) = (next.clone(), make.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (status, body) = call(&mut s, make(i)).await;
                    assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A ConfigMap named `name` whose JSON is `size` bytes long.
fn configmap(name: &str, size: usize) -> Bytes {
    let head = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"payload":""#
    );
    let tail = r#""}}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut s = head;
    s.extend(std::iter::repeat_n('x', fill));
    s.push_str(tail);
    Bytes::from(s)
}

async fn create_namespace(server: &ServerProc, name: &str) {
    let mut s = server.sender().await;
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let (status, _) = call(
        &mut s,
        request(Method::POST, "/api/v1/namespaces", body.into()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------------
// The report.

struct Row {
    name: String,
    figure: String,
    target: String,
    baseline: String,
    ratio: String,
    pass: Option<bool>,
}

fn print_table(rows: &[Row]) {
    let headers = ["benchmark", "figure", "target", "etcd", "ratio", ""];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.figure.clone(),
                r.target.clone(),
                r.baseline.clone(),
                r.ratio.clone(),
                match r.pass {
                    Some(true) => "pass".into(),
                    Some(false) => "FAIL".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[&str]| {
        let parts: Vec<String> = c
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        println!("  {}", parts.join("  ").trim_end());
    };
    line(&headers);
    for c in &cells {
        line(&c.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

fn ms(d: f64) -> String {
    format!("{d:.2} ms")
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up.

async fn bench_startup(rows: &mut Vec<Row>, etcd_startup: Option<f64>) {
    let runs = env_usize("BENCH_STARTUPS", 50);
    for (mode, in_process, insecure_http) in [
        ("socket, HTTPS", false, false),
        ("socket, plain HTTP", false, true),
        ("in process", true, false),
    ] {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let mut builder = TestEnv::builder().insecure_http(insecure_http);
            if in_process {
                builder = builder.in_process();
            }
            let env = builder.start().await.unwrap();
            env.client().apiserver_version().await.unwrap();
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            drop(env);
        }
        let s = sorted(samples);
        let (p50, p99) = (percentile(&s, 0.5), percentile(&s, 0.99));
        rows.push(Row {
            name: format!("start-up to a ready client, {mode} ({runs} runs)"),
            figure: format!("p50 {} / p99 {}", ms(p50), ms(p99)),
            target: "p99 < 20 ms".into(),
            baseline: etcd_startup.map_or("-".into(), ms),
            ratio: etcd_startup.map_or("-".into(), |e| format!("{:.0}x faster", e / p50)),
            pass: Some(p99 < 20.0),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Throughput.

async fn bench_throughput(rows: &mut Vec<Row>, etcd: Option<&Etcd>) {
    let n = env_usize("BENCH_OPS", 20_000);
    let conns = env_usize("BENCH_CONNS", 16);
    let server = spawn_server(false);
    let addr = server.addr;
    create_namespace(&server, "bench").await;
    let names: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("cm-{i:07}")).collect());
    let bodies: Arc<Vec<Bytes>> = Arc::new(names.iter().map(|n| configmap(n, 1024)).collect());
    // Warm-up: connections, allocator, code paths (objects of another namespace).
    create_namespace(&server, "warmup").await;
    http_load(addr, conns, 1000, StatusCode::CREATED, {
        let bodies = bodies.clone();
        move |i| {
            request(
                Method::POST,
                "/api/v1/namespaces/warmup/configmaps",
                bodies[i].clone(),
            )
        }
    })
    .await;
    let pid = server.proc.0.id();
    let creates = measured(
        pid,
        n,
        http_load(addr, conns, n, StatusCode::CREATED, {
            let bodies = bodies.clone();
            move |i| {
                request(
                    Method::POST,
                    "/api/v1/namespaces/bench/configmaps",
                    bodies[i].clone(),
                )
            }
        }),
    )
    .await;
    let gets = measured(
        pid,
        n,
        http_load(addr, conns, n, StatusCode::OK, {
            let names = names.clone();
            move |i| {
                // A stride through the keys, so that reads do not follow the write order.
                let name = &names[(i * 7919) % names.len()];
                request(
                    Method::GET,
                    &format!("/api/v1/namespaces/bench/configmaps/{name}"),
                    Bytes::new(),
                )
            }
        }),
    )
    .await;
    drop(server);

    let (mut puts, mut ranges) = (None, None);
    if let Some(etcd) = etcd {
        let clients = etcd_clients(&etcd.endpoint, conns).await;
        let key = |ns: &str, name: &str| format!("/registry/configmaps/{ns}/{name}").into_bytes();
        let warm = bodies.clone();
        etcd_load(&clients, 1000, move |mut c, i| {
            let req = pb::PutRequest {
                key: key("warmup", &format!("cm-{i}")),
                value: warm[i].to_vec(),
                ..Default::default()
            };
            async move {
                c.kv.put(req).await.unwrap();
                c
            }
        })
        .await;
        let (b, nm) = (bodies.clone(), names.clone());
        let pid = etcd.proc.0.id();
        puts = Some(
            measured(
                pid,
                n,
                etcd_load(&clients, n, move |mut c, i| {
                    let req = pb::PutRequest {
                        key: key("bench", &nm[i]),
                        value: b[i].to_vec(),
                        ..Default::default()
                    };
                    async move {
                        c.kv.put(req).await.unwrap();
                        c
                    }
                }),
            )
            .await,
        );
        let nm = names.clone();
        ranges = Some(
            measured(
                pid,
                n,
                etcd_load(&clients, n, move |mut c, i| {
                    let req = pb::RangeRequest {
                        key: key("bench", &nm[(i * 7919) % nm.len()]),
                        ..Default::default()
                    };
                    async move {
                        let r = c.kv.range(req).await.unwrap();
                        assert_eq!(r.kvs.len(), 1);
                        c
                    }
                }),
            )
            .await,
        );
    }
    rows.push(Row {
        name: format!("creates, 1 KiB ConfigMaps, {conns} connections ({n})"),
        figure: creates.to_string(),
        target: ">= 3x etcd puts".into(),
        baseline: puts.map_or("-".into(), |p| p.to_string()),
        ratio: puts.map_or("-".into(), |p| {
            format!("{:.2}x", creates.per_sec / p.per_sec)
        }),
        pass: puts.map(|p| creates.per_sec >= 3.0 * p.per_sec),
    });
    rows.push(Row {
        name: format!("single-object GETs, {conns} connections ({n})"),
        figure: gets.to_string(),
        target: ">= 5x etcd range reads".into(),
        baseline: ranges.map_or("-".into(), |r| r.to_string()),
        ratio: ranges.map_or("-".into(), |r| format!("{:.2}x", gets.per_sec / r.per_sec)),
        pass: ranges.map(|r| gets.per_sec >= 5.0 * r.per_sec),
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Watch delivery.

/// The first `"resourceVersion":"N"` of a watch event line: the object's (the only one these
/// ConfigMaps have; their metadata comes before the kilobyte of payload, so the search from
/// the front is short).
fn event_rv(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"resourceVersion\":\"";
    let at = (0..line.len()).find(|i| line[*i] == b'"' && line[*i..].starts_with(KEY))? + KEY.len();
    let end = line[at..].iter().position(|b| *b == b'"')?;
    std::str::from_utf8(&line[at..at + end]).ok()?.parse().ok()
}

/// The watch client: one HTTP/1.1 connection per watcher, the request written and the response
/// read by hand rather than through hyper's client.
///
/// Why not hyper: the clients run on the same two cores as the server, so their CPU per event
/// delays the deliveries measured as much as the server's own. hyper's client connection hands
/// each chunk from its connection future to the body through a channel, with a wake-up and a
/// frame on each side; reading the socket in the task that parses it does one read per event
/// and nothing else. It is still a full reader: the status line and headers are checked, the
/// chunked transfer coding is decoded (sizes, extensions, CRLFs, chunks split across reads), and
/// every line of the body is split out and parsed for its resourceVersion, as a client must.
struct WatchConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not yet decoded (the start of the body after the head).
    pending: std::ops::Range<usize>,
}

impl WatchConn {
    /// Sends `GET path` and reads the response head, which must be `200` with a chunked body.
    async fn open(addr: SocketAddr, path: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0; 16 * 1024];
        let mut len = 0;
        let head_end = loop {
            let n = stream.read(&mut buf[len..]).await.unwrap();
            assert!(n > 0, "connection closed before the response head");
            len += n;
            if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = std::str::from_utf8(&buf[..head_end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap();
        assert!(
            status.starts_with("HTTP/1.1 200 "),
            "watch answered {status}"
        );
        let chunked = lines.any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
            })
        });
        assert!(chunked, "watch response is not chunked: {head}");
        Self {
            stream,
            buf,
            pending: head_end..len,
        }
    }

    /// Reads the body until `want` events arrived, the body ended or `deadline`: the
    /// resourceVersion of each event and when the read that completed its line returned.
    async fn events(
        mut self,
        want: usize,
        deadline: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Vec<(u64, Instant)> {
        use tokio::io::AsyncReadExt;
        let mut deadline = deadline;
        let mut seen = Vec::with_capacity(want);
        let mut chunks = Chunked::default();
        let mut line: Vec<u8> = Vec::new();
        // The head's read may already hold the first bytes of the body.
        let (mut start, mut end) = (self.pending.start, self.pending.end);
        let mut now = Instant::now();
        loop {
            let mut data = &self.buf[start..end];
            while !data.is_empty() {
                match chunks.next(&mut data) {
                    Ok(Some(bytes)) => split_lines(bytes, &mut line, |l| {
                        if let Some(rv) = event_rv(l) {
                            seen.push((rv, now));
                        }
                    }),
                    Ok(None) => {}
                    Err(End) => return seen,
                }
            }
            if seen.len() >= want {
                return seen;
            }
            let n = tokio::select! {
                biased;
                r = self.stream.read(&mut self.buf) => r.unwrap_or(0),
                () = &mut deadline => 0,
            };
            if n == 0 {
                return seen;
            }
            now = Instant::now();
            (start, end) = (0, n);
        }
    }
}

/// The last chunk of a chunked body came.
struct End;

/// A decoder of the chunked transfer coding (RFC 9112 7.1) fed a read at a time.
#[derive(Default)]
struct Chunked {
    state: ChunkState,
    /// A chunk-size line split across reads.
    size_line: Vec<u8>,
}

#[derive(Default)]
enum ChunkState {
    /// Reading the chunk-size line.
    #[default]
    Size,
    /// This many bytes of chunk data are still to come.
    Data(usize),
    /// The CRLF after chunk data: how many of its bytes are still to come.
    DataEnd(u8),
}

impl Chunked {
    /// Decodes from the front of `input`, consuming what it used: chunk data, if some came.
    fn next<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, End> {
        match self.state {
            ChunkState::Size => {
                let Some(nl) = find_newline(input) else {
                    self.size_line.extend_from_slice(input);
                    *input = &[];
                    return Ok(None);
                };
                let (head, rest) = input.split_at(nl + 1);
                *input = rest;
                let line: &[u8] = if self.size_line.is_empty() {
                    head
                } else {
                    self.size_line.extend_from_slice(head);
                    &self.size_line
                };
                let line = line
                    .strip_suffix(b"\r\n")
                    .expect("chunk-size line without CRLF");
                // Chunk extensions (`;name=value`) are allowed and ignored.
                let hex = line.split(|b| *b == b';').next().unwrap_or_default();
                let size = usize::from_str_radix(std::str::from_utf8(hex).unwrap().trim(), 16)
                    .expect("chunk size is not hexadecimal");
                self.size_line.clear();
                if size == 0 {
                    return Err(End);
                }
                self.state = ChunkState::Data(size);
                Ok(None)
            }
            ChunkState::Data(left) => {
                let n = left.min(input.len());
                let (data, rest) = input.split_at(n);
                *input = rest;
                self.state = if n == left {
                    ChunkState::DataEnd(2)
                } else {
                    ChunkState::Data(left - n)
                };
                Ok(Some(data))
            }
            ChunkState::DataEnd(left) => {
                let want: &[u8] = if left == 2 { b"\r\n" } else { b"\n" };
                let n = usize::from(left).min(input.len());
                assert_eq!(&input[..n], &want[..n], "chunk data not followed by CRLF");
                *input = &input[n..];
                self.state = if n == usize::from(left) {
                    ChunkState::Size
                } else {
                    ChunkState::DataEnd(left - 1)
                };
                Ok(None)
            }
        }
    }
}

/// Where the first `\n` of `data` is: a word at a time, as a memchr does (a byte at a time is
/// a good part of the client's work per event on lines of a kilobyte).
fn find_newline(data: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut words = data.chunks_exact(8);
    for (i, w) in words.by_ref().enumerate() {
        let x = u64::from_le_bytes(w.try_into().unwrap()) ^ NL;
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(i * 8 + (zero.trailing_zeros() / 8) as usize);
        }
    }
    let tail = data.len() - words.remainder().len();
    words
        .remainder()
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| tail + p)
}

/// Calls `f` with each whole line of `data`, keeping a partial one in `line` for the next call.
fn split_lines(mut data: &[u8], line: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
    while let Some(nl) = find_newline(data) {
        if line.is_empty() {
            f(&data[..nl]);
        } else {
            line.extend_from_slice(&data[..nl]);
            f(line);
            line.clear();
        }
        data = &data[nl + 1..];
    }
    line.extend_from_slice(data);
}

/// Latencies in ms from the writes' responses (`written`: rv → when) to each arrival.
fn delivery_latencies(
    written: &std::collections::HashMap<u64, Instant>,
    arrivals: Vec<Vec<(u64, Instant)>>,
) -> (Vec<f64>, usize) {
    let mut lat = Vec::with_capacity(written.len() * arrivals.len());
    let mut missing = 0;
    for a in arrivals {
        let seen: std::collections::HashMap<u64, Instant> = a.into_iter().collect();
        for (rv, at) in written {
            match seen.get(rv) {
                // An event may beat the write's response to the writer: that is no delay.
                Some(t) => lat.push(t.saturating_duration_since(*at).as_secs_f64() * 1000.0),
                None => missing += 1,
            }
        }
    }
    (sorted(lat), missing)
}

/// How the watchers reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchTransport {
    /// Plain HTTP/1.1, a connection per watch, as kube-rs clients (ALPN `http/1.1`) watch.
    Http1,
    /// HTTP/2 over TLS, [`H2_STREAMS`] watches per connection, as client-go's transport
    /// multiplexes its watches (it opens another connection when one's streams are used up).
    Http2,
}

/// kube-apiserver's HTTP/2 `MaxConcurrentStreams`.
const H2_STREAMS: usize = 100;

/// What the watches sharing one reader saw: per watch, each event's resourceVersion and when it
/// came; and how many watches still wait for their `want` events.
struct Arrivals {
    seen: Vec<Vec<(u64, Instant)>>,
    want: usize,
    open: usize,
}

impl Arrivals {
    fn new(watches: usize, want: usize) -> Self {
        Self {
            seen: (0..watches).map(|_| Vec::with_capacity(want)).collect(),
            want,
            open: watches,
        }
    }

    /// Records the events `rvs` watch `i` got `at`.
    fn record(&mut self, i: usize, rvs: impl IntoIterator<Item = u64>, at: Instant) {
        let before = self.seen[i].len();
        self.seen[i].extend(rvs.into_iter().map(|rv| (rv, at)));
        if before < self.want && self.seen[i].len() >= self.want {
            self.open -= 1;
        }
    }

    fn waiting(&self) -> bool {
        self.open > 0
    }
}

/// Reads the watches of one HTTP/2 connection until each has `want` events, its body ended,
/// or `deadline`: per watch, the resourceVersion of each event and when the frame that
/// completed its line came. hyper's client: DATA frames reach the bodies through its
/// connection task.
async fn h2_events(
    bodies: Vec<hyper::body::Incoming>,
    want: usize,
    mut deadline: std::pin::Pin<&mut tokio::time::Sleep>,
) -> Vec<Vec<(u64, Instant)>> {
    use futures::StreamExt;
    let mut arrivals = Arrivals::new(bodies.len(), want);
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); bodies.len()];
    let mut frames = futures::stream::select_all(
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| http_body_util::BodyStream::new(b).map(move |f| (i, f))),
    );
    while arrivals.waiting() {
        let next = tokio::select! {
            biased;
            f = frames.next() => f,
            () = &mut deadline => None,
        };
        let Some((i, Ok(frame))) = next else { break };
        let now = Instant::now();
        if let Ok(data) = frame.into_data() {
            let mut rvs = Vec::new();
            split_lines(&data, &mut lines[i], |l| rvs.extend(event_rv(l)));
            arrivals.record(i, rvs, now);
        }
    }
    arrivals.seen
}

async fn bench_watch(rows: &mut Vec<Row>, etcd: Option<&Etcd>, transport: WatchTransport) {
    let watchers = env_usize("BENCH_WATCHERS", WATCHERS);
    let writes = env_usize("BENCH_WATCH_WRITES", WATCH_WRITES);
    let gap = Duration::from_millis(10);
    let server = spawn_server(transport == WatchTransport::Http2);
    let addr = server.addr;
    create_namespace(&server, "watch").await;
    let mut s = server.sender().await;
    // HTTP/2: the watchers' shared connections, [`H2_STREAMS`] watches on each.
    let mut h2 = Vec::new();
    if let Some(tls) = &server.tls {
        for _ in 0..watchers.div_ceil(H2_STREAMS) {
            h2.push(connect_h2(addr, tls).await);
        }
    }
    let (_, list) = call(
        &mut s,
        request(
            Method::GET,
            "/api/v1/namespaces/watch/configmaps",
            Bytes::new(),
        ),
    )
    .await;
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/api/v1/namespaces/watch/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=290"
    );
    // One deadline for the whole watch, not a timer per frame: the client's own work delays
    // the next watcher's reading, on the cores the server runs on.
    let deadline = gap * writes as u32 + Duration::from_secs(30);
    // HTTP/1.1: a task per watch, reading its own connection (one wake-up and one read per
    // event). HTTP/2: a task per connection reading its watches (the connection's task wakes
    // one reader for the streams an incoming read filled, not a task per stream).
    let readers = if h2.is_empty() { watchers } else { h2.len() };
    let ready = Arc::new(tokio::sync::Barrier::new(readers + 1));
    let mut tasks = Vec::with_capacity(readers);
    for r in 0..readers {
        let (ready, path) = (ready.clone(), path.clone());
        let shared = h2.get(r).cloned();
        tasks.push(tokio::spawn(async move {
            match shared {
                None => {
                    let conn = WatchConn::open(addr, &path).await;
                    ready.wait().await;
                    let deadline = tokio::time::sleep(deadline);
                    vec![conn.events(writes, std::pin::pin!(deadline)).await]
                }
                Some(mut send) => {
                    let streams = H2_STREAMS.min(watchers - r * H2_STREAMS);
                    let mut bodies = Vec::with_capacity(streams);
                    for _ in 0..streams {
                        let req = absolute(request(Method::GET, &path, Bytes::new()), &https(addr));
                        send.ready().await.unwrap();
                        let resp = send.send_request(req).await.unwrap();
                        assert_eq!(resp.status(), StatusCode::OK);
                        bodies.push(resp.into_body());
                    }
                    ready.wait().await;
                    let deadline = tokio::time::sleep(deadline);
                    h2_events(bodies, writes, std::pin::pin!(deadline)).await
                }
            }
        }));
    }
    ready.wait().await;
    let pid = server.proc.0.id();
    let cpu_before = cpu_secs(pid);
    // This process's CPU meanwhile: the watchers' (and the writer's), on the same cores.
    let client_before = cpu_secs(std::process::id());
    let mut written = std::collections::HashMap::new();
    for i in 0..writes {
        let (status, body) = call(
            &mut s,
            request(
                Method::POST,
                "/api/v1/namespaces/watch/configmaps",
                configmap(&format!("w-{i}"), 1024),
            ),
        )
        .await;
        let at = Instant::now();
        assert_eq!(status, StatusCode::CREATED);
        let obj: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let rv: u64 = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        written.insert(rv, at);
        tokio::time::sleep(gap).await;
    }
    let mut arrivals = Vec::with_capacity(watchers);
    for t in tasks {
        arrivals.extend(t.await.unwrap());
    }
    let cpu_us = (cpu_secs(pid) - cpu_before) * 1e6 / (writes * watchers) as f64;
    let client_us =
        (cpu_secs(std::process::id()) - client_before) * 1e6 / (writes * watchers) as f64;
    drop(server);
    let (lat, missing) = delivery_latencies(&written, arrivals);
    assert_eq!(missing, 0, "{missing} events never reached their watcher");
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));

    let mut base = None;
    if let Some(etcd) = etcd {
        let prefix = b"/registry/configmaps/watch/".to_vec();
        // Over HTTP/2 (gRPC's transport) the watchers share connections as above.
        let mut shared = Vec::new();
        if transport == WatchTransport::Http2 {
            for _ in 0..watchers.div_ceil(H2_STREAMS) {
                shared.push(
                    EtcdClient::new(vec![etcd.endpoint.clone()], None)
                        .await
                        .unwrap(),
                );
            }
        }
        // As above: a task per watch over its own connection, or per shared connection.
        let readers = if shared.is_empty() {
            watchers
        } else {
            shared.len()
        };
        let ready = Arc::new(tokio::sync::Barrier::new(readers + 1));
        let mut tasks = Vec::with_capacity(readers);
        for r in 0..readers {
            let (ready, prefix, endpoint) = (ready.clone(), prefix.clone(), etcd.endpoint.clone());
            let shared = shared.get(r).cloned();
            let streams = if shared.is_some() {
                H2_STREAMS.min(watchers - r * H2_STREAMS)
            } else {
                1
            };
            tasks.push(tokio::spawn(async move {
                use futures::StreamExt;
                let mut c = match shared {
                    Some(c) => c,
                    None => EtcdClient::new(vec![endpoint], None).await.unwrap(),
                };
                let mut watches = Vec::with_capacity(streams);
                for _ in 0..streams {
                    watches.push(
                        c.watch
                            .do_watch(prefix.clone())
                            .with_prefix()
                            .await
                            .unwrap(),
                    );
                }
                ready.wait().await;
                let mut arrivals = Arrivals::new(streams, writes);
                let mut messages =
                    futures::stream::select_all(watches.into_iter().enumerate().map(|(i, w)| {
                        futures::stream::unfold(w, |mut w| async move {
                            let m = w.message().await;
                            Some((m, w))
                        })
                        .map(move |m| (i, m))
                        .boxed()
                    }));
                while arrivals.waiting() {
                    let Ok(Some((i, Ok(Some(resp))))) =
                        tokio::time::timeout(Duration::from_secs(10), messages.next()).await
                    else {
                        break;
                    };
                    let now = Instant::now();
                    let rvs = resp.events.into_iter().filter_map(|e| e.kv);
                    arrivals.record(i, rvs.map(|kv| kv.mod_revision as u64), now);
                }
                drop(messages);
                drop(c);
                arrivals.seen
            }));
        }
        ready.wait().await;
        let pid = etcd.proc.0.id();
        let cpu_before = cpu_secs(pid);
        let mut c = EtcdClient::new(vec![etcd.endpoint.clone()], None)
            .await
            .unwrap();
        let mut written = std::collections::HashMap::new();
        for i in 0..writes {
            let name = format!("w-{i}");
            let r =
                c.kv.put(pb::PutRequest {
                    key: [prefix.as_slice(), name.as_bytes()].concat(),
                    value: configmap(&name, 1024).to_vec(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let at = Instant::now();
            written.insert(r.header.unwrap().revision as u64, at);
            tokio::time::sleep(gap).await;
        }
        let mut arrivals = Vec::with_capacity(watchers);
        for t in tasks {
            arrivals.extend(t.await.unwrap());
        }
        let etcd_cpu_us = (cpu_secs(pid) - cpu_before) * 1e6 / (writes * watchers) as f64;
        let (lat, missing) = delivery_latencies(&written, arrivals);
        if missing > 0 {
            eprintln!("etcd: {missing} watch events never arrived");
        }
        base = Some((percentile(&lat, 0.5), percentile(&lat, 0.99), etcd_cpu_us));
    }
    rows.push(Row {
        name: match transport {
            WatchTransport::Http1 => {
                format!("watch delivery, {watchers} watchers x {writes} writes, HTTP/1.1")
            }
            WatchTransport::Http2 => format!(
                "watch delivery, {watchers} watchers x {writes} writes, HTTP/2 ({H2_STREAMS} per connection)"
            ),
        },
        figure: format!(
            "p50 {} / p99 {} ({cpu_us:.1} µs CPU/delivery, client {client_us:.1})",
            ms(p50),
            ms(p99)
        ),
        target: "p99 < 5 ms".into(),
        baseline: base.map_or("-".into(), |(b50, b99, cpu)| {
            format!(
                "p50 {} / p99 {} ({cpu:.1} µs CPU/delivery)",
                ms(b50),
                ms(b99)
            )
        }),
        ratio: base.map_or("-".into(), |(_, b99, _)| format!("{:.2}x (p99)", p99 / b99)),
        pass: Some(p99 < 5.0),
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Memory.

async fn bench_memory(rows: &mut Vec<Row>, etcd: Option<Etcd>) {
    let n = env_usize("BENCH_OBJECTS", MEMORY_OBJECTS);
    let conns = env_usize("BENCH_CONNS", 16);
    let server = spawn_server(false);
    let addr = server.addr;
    let pid = server.proc.0.id();
    let empty = rss_kib(pid);
    create_namespace(&server, "memory").await;
    let t = Instant::now();
    http_load(addr, conns, n, StatusCode::CREATED, |i| {
        request(
            Method::POST,
            "/api/v1/namespaces/memory/configmaps",
            configmap(&format!("cm-{i:07}"), 2048),
        )
    })
    .await;
    eprintln!(
        "memory: {n} objects of 2 KiB created in {:.1?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let full = rss_kib(pid);
    drop(server);

    let mut base = None;
    if let Some(etcd) = etcd {
        let clients = etcd_clients(&etcd.endpoint, conns).await;
        etcd_load(&clients, n, |mut c, i| {
            let name = format!("cm-{i:07}");
            let req = pb::PutRequest {
                key: format!("/registry/configmaps/memory/{name}").into_bytes(),
                value: configmap(&name, 2048).to_vec(),
                ..Default::default()
            };
            async move {
                c.kv.put(req).await.unwrap();
                c
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        base = Some(rss_kib(etcd.proc.0.id()));
    }
    let mib = |k: u64| k as f64 / 1024.0;
    rows.push(Row {
        name: format!("RSS of the server process, {n} objects of 2 KiB"),
        figure: format!(
            "{:.0} MiB ({:.1} KiB/object; {:.0} MiB empty)",
            mib(full),
            full.saturating_sub(empty) as f64 / n as f64,
            mib(empty)
        ),
        target: "< 600 MiB".into(),
        baseline: base.map_or("-".into(), |b| format!("{:.0} MiB", mib(b))),
        ratio: base.map_or("-".into(), |b| format!("{:.2}x", full as f64 / b as f64)),
        pass: Some(mib(full) < 600.0),
    });
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args
        .iter()
        .position(|a| a == "--serve" || a == "--serve-tls")
    {
        serve_self(Path::new(&args[i + 1]), args[i] == "--serve-tls");
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument picks sections by name.
    let filter: Vec<&str> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let etcd_version = etcd_available();
    match &etcd_version {
        Ok(v) => eprintln!("baseline: {v} {ETCD_FLAGS}"),
        Err(reason) => eprintln!("baseline skipped: {reason}"),
    }
    let shm = Path::new("/dev/shm").is_dir();
    eprintln!(
        "server process: {}; data folders on {}",
        server_binary().map_or_else(
            || "this bench binary with --serve (no capi-testkit binary built)".to_owned(),
            |b| format!("{} serve", b.display())
        ),
        if shm {
            "/dev/shm (tmpfs)".to_owned()
        } else {
            std::env::temp_dir().display().to_string()
        }
    );
    let total = Instant::now();
    let mut rows = Vec::new();
    rt.block_on(async {
        let etcd = |on: bool| {
            let ok = on && etcd_version.is_ok();
            async move { if ok { Some(start_etcd().await) } else { None } }
        };
        if wanted("startup") {
            let mut starts = Vec::new();
            for _ in 0..3 {
                if let Some((e, took)) = etcd(true).await {
                    starts.push(took.as_secs_f64() * 1000.0);
                    drop(e);
                }
            }
            let s = sorted(starts);
            bench_startup(&mut rows, (!s.is_empty()).then(|| percentile(&s, 0.5))).await;
        }
        if wanted("throughput") {
            let e = etcd(true).await.map(|(e, _)| e);
            bench_throughput(&mut rows, e.as_ref()).await;
        }
        if wanted("watch-http1") {
            let e = etcd(true).await.map(|(e, _)| e);
            bench_watch(&mut rows, e.as_ref(), WatchTransport::Http1).await;
        }
        if wanted("watch-http2") {
            let e = etcd(true).await.map(|(e, _)| e);
            bench_watch(&mut rows, e.as_ref(), WatchTransport::Http2).await;
        }
        if wanted("memory") {
            let e = etcd(true).await.map(|(e, _)| e);
            bench_memory(&mut rows, e).await;
        }
    });
    println!(
        "\ncapi-testkit API server vs {} ({} cores, load average {}), {:.0} s",
        etcd_version.as_deref().unwrap_or("no etcd"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        total.elapsed().as_secs_f64()
    );
    print_table(&rows);
    if rows.iter().any(|r| r.pass == Some(false)) {
        println!("\nsome targets are not met");
    }
}
