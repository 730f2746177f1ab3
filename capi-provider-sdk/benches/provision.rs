//! 1,000 InfraMachines from creation to provisioned, on capi-testkit's in-process API server
//! with a zero-latency cloud: the SDK against a hand-written kube-runtime controller doing the
//! least any provider must (finalizer, providerID, provisioned), measured in the same run.
//!
//! `cargo bench -p capi-provider-sdk --bench provision` (or `cargo xtask bench`);
//! `BENCH_MACHINES=N` changes the count.
//!
//! Each controller runs in a process of its own, as a provider does: this binary again, with
//! `--provider sdk|baseline`, one runtime worker thread. The API server runs in another child
//! (`--serve-api`), and the driver that creates the objects and polls for their progress is
//! this parent process, so the figures are the controllers' alone, the baseline's and the
//! SDK's measured alike in fresh processes:
//!
//! - controller CPU: CPU time of the provider process's `controllers` threads (from
//!   `/proc/self/task`);
//! - RSS per object: the provider process's resident memory (`VmRSS`) after every object is
//!   provisioned, minus what it was when started and idle (runtime and client built, nothing
//!   requested yet), divided by the number of InfraMachines. The growth is everything the
//!   controller took on: caches, queues, connections, allocator overhead, code paged in;
//! - heap per object: the same difference of the bytes allocated and not yet freed, counted by
//!   the global allocator: the live heap without the freed-but-kept pages RSS also counts;
//! - +RSS and +heap per object: then `N` more InfraMachines, provisioned by the same process;
//!   the growth from `N` to `2N`, over `N`: what each further managed object costs, without the
//!   fixed part the first figures carry. The target (under 10 KiB) is judged on this one; both
//!   are printed.
//!
//! `BENCH_VERBOSE=1` also prints the requests per resource and the RSS growth split into
//! anonymous and file-backed memory.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use capi_provider_sdk::capi_core::contract::{InfraMachineSpec, InfraMachineStatus};
use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, provider_crd};
use capi_provider_sdk::{
    DeleteOutcome, Failure, InfraMachine, MachineContext, MachineOutcome, Manager, ManagerOptions,
    async_trait,
};
use capi_testkit::env::TestEnv;
use capi_testkit::server::requests::RequestCounts;
use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "bench.capi-rs.dev",
    version = "v1alpha1",
    kind = "BenchMachine",
    namespaced
)]
#[kube(status = "BenchMachineStatus", derive = "PartialEq")]
pub struct BenchMachineSpec {
    #[serde(flatten)]
    pub contract: InfraMachineSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchMachineStatus {
    #[serde(flatten)]
    pub contract: InfraMachineStatus,
}

capi_provider_sdk::infra_machine_resource!(BenchMachine, spec.contract, status.contract);

/// A cloud that provisions at once.
#[derive(Clone)]
struct InstantCloud;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[async_trait]
impl InfraMachine for InstantCloud {
    type Resource = BenchMachine;
    type Error = Never;

    async fn reconcile(
        &self,
        cx: &mut MachineContext<BenchMachine>,
    ) -> Result<MachineOutcome, Failure<Never>> {
        Ok(
            MachineOutcome::provisioned(format!("bench:///{}", cx.infra_machine.name_any()))
                .with_internal_ip("10.0.0.1")
                .into(),
        )
    }

    async fn delete(
        &self,
        _cx: &mut MachineContext<BenchMachine>,
    ) -> Result<DeleteOutcome, Failure<Never>> {
        Ok(DeleteOutcome::Deleted)
    }
}

/// The baseline: what a hand-written kube-runtime controller does at the least.
async fn baseline_reconcile(
    obj: Arc<BenchMachine>,
    api: Arc<Api<BenchMachine>>,
) -> Result<Action, kube::Error> {
    let name = obj.name_any();
    if obj.finalizers().is_empty() || obj.spec.contract.provider_id.is_none() {
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"finalizers": ["bench.capi-rs.dev/baseline"]},
                "spec": {"providerID": format!("bench:///{name}")}
            })),
        )
        .await?;
    }
    let provisioned = obj
        .status
        .as_ref()
        .and_then(|s| s.contract.initialization.as_ref())
        .and_then(|i| i.provisioned)
        == Some(true);
    if !provisioned {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "initialization": {"provisioned": true},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]
            }})),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// CPU seconds used so far by threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += get(11) + get(12);
    }
    total as f64 / ticks
}

/// The goal for the SDK's resident memory per managed object (issue 3).
const RSS_TARGET_KIB: f64 = 10.0;

/// The system allocator, counting the bytes it has handed out and not got back.
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// The heap the process really holds, without the freed-but-kept pages RSS also counts.
fn heap_in_use() -> u64 {
    ALLOCATOR.allocated() as u64
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Cluster, bootstrap secret, `n` Machines and their BenchMachines, as CAPI core leaves them.
async fn populate(client: &Client, ns: &str, n: usize) {
    populate_cluster(client, ns).await;
    add_machines(client, ns, 0..n).await;
}

/// The namespace, the bootstrap Secret and a Cluster whose infrastructure and control plane
/// are ready.
async fn populate_cluster(client: &Client, ns: &str) {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let post = PostParams::default();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(
            &post,
            &serde_json::from_value(json!({"metadata": {"name": "bootstrap"},
                "stringData": {"value": "#cloud-config\n", "format": "cloud-config"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let clusters: Api<capi_provider_sdk::capi_core::v1beta2::Cluster> =
        Api::namespaced(client.clone(), ns);
    clusters
        .create(
            &post,
            &serde_json::from_value(json!({"apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "Cluster", "metadata": {"name": "c"},
                "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    clusters
        .patch_status(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"initialization": {
                "infrastructureProvisioned": true, "controlPlaneInitialized": true}}})),
        )
        .await
        .unwrap();
}

/// Machines `m{i}` for `i` in `range` and their BenchMachines, owned by them.
async fn add_machines(client: &Client, ns: &str, range: std::ops::Range<usize>) {
    let post = PostParams::default();
    let machines: Api<capi_provider_sdk::capi_core::v1beta2::Machine> =
        Api::namespaced(client.clone(), ns);
    let infra: Api<BenchMachine> = Api::namespaced(client.clone(), ns);
    let batch = futures::stream::iter(range)
        .map(|i| {
            let (machines, infra, post) = (machines.clone(), infra.clone(), post.clone());
            async move {
                let name = format!("m{i}");
                let m = machines
                    .create(
                        &post,
                        &serde_json::from_value(json!({
                            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                            "metadata": {"name": name, "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
                            "spec": {"clusterName": "c", "bootstrap": {"dataSecretName": "bootstrap"},
                                "infrastructureRef": {"apiGroup": "bench.capi-rs.dev", "kind": "BenchMachine", "name": name}}
                        }))
                        .unwrap(),
                    )
                    .await
                    .unwrap();
                infra
                    .create(
                        &post,
                        &serde_json::from_value(json!({
                            "apiVersion": "bench.capi-rs.dev/v1alpha1", "kind": "BenchMachine",
                            "metadata": {"name": name,
                                "labels": {"cluster.x-k8s.io/cluster-name": "c"},
                                "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                                    "name": name, "uid": m.uid(), "controller": true}]},
                            "spec": {}
                        }))
                        .unwrap(),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16);
    batch.collect::<Vec<()>>().await;
}

async fn provisioned(client: &Client, ns: &str) -> usize {
    let infra: Api<BenchMachine> = Api::namespaced(client.clone(), ns);
    infra
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|m| {
            m.spec.contract.provider_id.is_some()
                && m.status
                    .as_ref()
                    .and_then(|s| s.contract.initialization.as_ref())
                    .and_then(|i| i.provisioned)
                    == Some(true)
        })
        .count()
}

async fn reconciles(metrics: std::net::SocketAddr) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(metrics).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The server's request counts, from its `/metrics`.
async fn request_counts(client: &Client) -> RequestCounts {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    RequestCounts::from_prometheus(&client.request_text(req).await.unwrap())
}

struct Figures {
    wall: Duration,
    writes_per_machine: f64,
    events_per_machine: f64,
    reads: u64,
    cpu_per_machine_ms: f64,
    reconciles: f64,
    /// RSS growth from idle to `n` provisioned, over `n`.
    rss_per_object_kib: f64,
    heap_per_object_kib: f64,
    /// RSS growth from `n` to `2n` provisioned, over `n`: what one more object costs.
    marginal_rss_kib: f64,
    marginal_heap_kib: f64,
}

/// What one provider process measured while it took its objects over.
struct ProviderFigures {
    cpu_s: f64,
    rss_kib: u64,
    heap_bytes: u64,
}

/// RSS, anonymous and file-backed resident memory of this process, in KiB (`smaps_rollup`).
fn rss_breakdown_kib() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (rss, anon) = (field("Rss:"), field("Anonymous:"));
    (rss, anon, rss.saturating_sub(anon))
}

/// The provider child (`--provider sdk|baseline KUBECONFIG NAMESPACE METRICS_ADDR`): builds its
/// runtime and client, says `ready`, starts the controller on `start`, and on `report` prints
/// the CPU time of its `controllers` threads, its RSS growth and its heap growth since `start`.
fn provider_process(args: &[String]) {
    use std::io::{BufRead, Write};
    let (sdk, kubeconfig, namespace, metrics_addr) = (
        args[0] == "sdk",
        PathBuf::from(&args[1]),
        args[2].clone(),
        args[3].parse::<std::net::SocketAddr>().unwrap(),
    );
    let controllers_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("controllers")
        .enable_all()
        .build()
        .unwrap();
    let c = client_on(&controllers_rt, &kubeconfig);
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut line = String::new();
    writeln!(stdout, "bench-ready").unwrap();
    stdout.flush().unwrap();
    stdin.read_line(&mut line).unwrap();
    let cpu_before = thread_cpu("controllers");
    let rss_before = rss_kib();
    let breakdown_before = rss_breakdown_kib();
    let heap_before = heap_in_use();
    let _controller = if sdk {
        controllers_rt.spawn(async move {
            let options = ManagerOptions {
                namespace: Some(namespace),
                concurrency: 16,
                metrics_addr: Some(metrics_addr),
                ..ManagerOptions::new("bench")
            };
            let _ = Manager::new(c, options)
                .machine(InstantCloud)
                .run_until(std::future::pending())
                .await;
        })
    } else {
        controllers_rt.spawn(async move {
            let api: Api<BenchMachine> = Api::namespaced(c, &namespace);
            Controller::new(api.clone(), watcher::Config::default())
                .with_config(kube::runtime::controller::Config::default().concurrency(16))
                .run(
                    baseline_reconcile,
                    |_, _, _| Action::requeue(Duration::from_millis(100)),
                    Arc::new(api),
                )
                .for_each(|_| async {})
                .await;
        })
    };
    // Each `report` is answered with the figures since `start`; end of input ends the process.
    loop {
        line.clear();
        if stdin.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cpu = thread_cpu("controllers") - cpu_before;
        let rss = rss_kib().saturating_sub(rss_before);
        let heap = heap_in_use().saturating_sub(heap_before);
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            let after = rss_breakdown_kib();
            let threads = std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
            let sockets = std::fs::read_dir("/proc/self/fd").map_or(0, |fds| {
                fds.flatten()
                    .filter(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            });
            eprintln!(
                "  provider process: RSS +{} KiB (anonymous +{} KiB, file-backed +{} KiB), {threads} threads, {sockets} sockets",
                after.0.saturating_sub(breakdown_before.0),
                after.1.saturating_sub(breakdown_before.1),
                after.2.saturating_sub(breakdown_before.2),
            );
        }
        writeln!(stdout, "bench-report {cpu} {rss} {heap}").unwrap();
        stdout.flush().unwrap();
    }
}

/// A client for the API server of `kubeconfig`, its connections on `rt`.
fn client_on(rt: &tokio::runtime::Runtime, kubeconfig: &std::path::Path) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    rt.block_on(async move {
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    })
}

/// A provider child process: started idle, then told to start and to report.
///
/// `BENCH_PROVIDER_WRAPPER=heaptrack` (any command taking the program and its arguments) runs
/// it under that tool; closing its stdin makes it exit, so the tool sees a normal exit.
struct ProviderProcess {
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    child: std::process::Child,
}

impl ProviderProcess {
    fn spawn(
        sdk: bool,
        kubeconfig: &std::path::Path,
        ns: &str,
        metrics: std::net::SocketAddr,
    ) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut command = match std::env::var_os("BENCH_PROVIDER_WRAPPER") {
            Some(wrapper) => {
                let mut c = std::process::Command::new(wrapper);
                c.arg(exe);
                c
            }
            None => std::process::Command::new(exe),
        };
        let mut child = command
            .arg("--provider")
            .arg(if sdk { "sdk" } else { "baseline" })
            .arg(kubeconfig)
            .arg(ns)
            .arg(metrics.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut p = Self {
            stdin,
            stdout,
            child,
        };
        p.expect("bench-ready");
        p
    }

    /// The next line starting with `prefix` (a wrapper may print lines of its own), less it.
    fn expect(&mut self, prefix: &str) -> String {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                panic!("the provider process exited before saying {prefix}");
            }
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    fn send(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }

    fn report(&mut self) -> ProviderFigures {
        self.send("report");
        let line = self.expect("bench-report");
        let mut fields = line.split_whitespace();
        let mut next = || fields.next().unwrap().to_owned();
        ProviderFigures {
            cpu_s: next().parse().unwrap(),
            rss_kib: next().parse().unwrap(),
            heap_bytes: next().parse().unwrap(),
        }
    }
}

impl Drop for ProviderProcess {
    /// Closes its stdin, which makes it exit; kills it if it has not within ten seconds.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_MACHINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--provider") {
        provider_process(&args[i + 1..]);
        return;
    }
    let labels = ContractVersionLabels::new().with("v1beta2", ["v1alpha1"]);
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.push(provider_crd(vec![BenchMachine::crd()], "v1alpha1", &labels).unwrap());
    if let Some(i) = args.iter().position(|a| a == "--serve-api") {
        // The child: serve until killed, after writing the kubeconfig.
        let path = PathBuf::from(&args[i + 1]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let env = TestEnv::builder().crds(crds).start().await.unwrap();
            env.write_kubeconfig_to(&path.with_extension("tmp"))
                .unwrap();
            std::fs::rename(path.with_extension("tmp"), &path).unwrap();
            std::future::pending::<()>().await;
        });
        return;
    }
    let kubeconfig =
        std::env::temp_dir().join(format!("provision-bench-{}.kubeconfig", std::process::id()));
    let mut server = ChildProcess(
        std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--serve-api")
            .arg(&kubeconfig)
            .spawn()
            .unwrap(),
    );
    while !kubeconfig.exists() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the API server process exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let driver_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driver")
        .enable_all()
        .build()
        .unwrap();
    let driver_client = client_on(&driver_rt, &kubeconfig);

    let mut results = Vec::new();
    for (label, sdk) in [
        ("kube-runtime baseline", false),
        ("capi-provider-sdk", true),
    ] {
        let ns = if sdk { "sdk" } else { "baseline" };
        let client = driver_client.clone();
        let t = Instant::now();
        driver_rt.block_on(populate(&client, ns, n));
        eprintln!("{label}: {n} machines created in {:.1?}", t.elapsed());

        let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let mut provider = ProviderProcess::spawn(sdk, &kubeconfig, ns, metrics_addr);
        let requests_before = driver_rt.block_on(request_counts(&client));
        let start = Instant::now();
        provider.send("start");
        driver_rt.block_on(async {
            while provisioned(&client, ns).await < n {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let wall = start.elapsed();
        // Let trailing writes (events, conditions) land before counting.
        std::thread::sleep(Duration::from_millis(500));
        let p = provider.report();
        let req = driver_rt
            .block_on(request_counts(&client))
            .since(&requests_before);
        let reconcile_count = if sdk {
            driver_rt.block_on(reconciles(metrics_addr))
        } else {
            f64::NAN
        };
        // The memory each further object costs: `n` more, provisioned by the same process.
        // (Growth from idle also holds what does not grow with the objects: code paged in on
        // first use, the connection pool, the runtime's buffers.)
        driver_rt.block_on(add_machines(&client, ns, n..2 * n));
        driver_rt.block_on(async {
            while provisioned(&client, ns).await < 2 * n {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        let p2 = provider.report();
        drop(provider);
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            for ((method, resource), count) in &req.0 {
                eprintln!("  {method} {resource}: {count}");
            }
        }
        let reads: u64 = req
            .0
            .iter()
            .filter(|((m, _), _)| m == "GET")
            .map(|(_, c)| c)
            .sum();
        results.push((
            label,
            Figures {
                wall,
                writes_per_machine: req.writes("benchmachines") as f64 / n as f64,
                events_per_machine: req.writes("events") as f64 / n as f64,
                reads,
                cpu_per_machine_ms: p.cpu_s * 1000.0 / n as f64,
                reconciles: reconcile_count,
                rss_per_object_kib: p.rss_kib as f64 / n as f64,
                heap_per_object_kib: p.heap_bytes as f64 / 1024.0 / n as f64,
                marginal_rss_kib: p2.rss_kib.saturating_sub(p.rss_kib) as f64 / n as f64,
                marginal_heap_kib: p2.heap_bytes.saturating_sub(p.heap_bytes) as f64
                    / 1024.0
                    / n as f64,
            },
        ));
    }

    println!(
        "\n{n} InfraMachines, creation to provisioned, zero-latency cloud, provider process with one worker thread"
    );
    println!(
        "{:<24}{:>10}{:>14}{:>14}{:>10}{:>16}{:>14}{:>14}{:>14}{:>16}{:>16}",
        "",
        "wall",
        "writes/mach.",
        "events/mach.",
        "GETs",
        "ctrl CPU/mach.",
        "reconciles",
        "RSS/object",
        "heap/object",
        "+RSS/object",
        "+heap/object"
    );
    for (label, f) in &results {
        println!(
            "{label:<24}{:>9.2}s{:>14.2}{:>14.2}{:>10}{:>14.3}ms{:>14}{:>11.2}KiB{:>11.2}KiB{:>13.2}KiB{:>13.2}KiB",
            f.wall.as_secs_f64(),
            f.writes_per_machine,
            f.events_per_machine,
            f.reads,
            f.cpu_per_machine_ms,
            if f.reconciles.is_nan() {
                "-".to_owned()
            } else {
                format!("{}", f.reconciles)
            },
            f.rss_per_object_kib,
            f.heap_per_object_kib,
            f.marginal_rss_kib,
            f.marginal_heap_kib,
        );
    }
    println!(
        "(RSS/object, heap/object: growth from idle to {n} provisioned, over {n}; +RSS/object, +heap/object: growth from {n} to {} provisioned, over {n})",
        2 * n
    );
    if let [(_, base), (_, sdk)] = results.as_slice() {
        println!(
            "\nSDK / baseline: wall {:.2}x, writes {:.2}x, controller CPU {:.2}x, RSS/object {:.2}x, heap/object {:.2}x",
            sdk.wall.as_secs_f64() / base.wall.as_secs_f64(),
            sdk.writes_per_machine / base.writes_per_machine,
            sdk.cpu_per_machine_ms / base.cpu_per_machine_ms.max(f64::EPSILON),
            sdk.rss_per_object_kib / base.rss_per_object_kib.max(f64::EPSILON),
            sdk.heap_per_object_kib / base.heap_per_object_kib.max(f64::EPSILON),
        );
        // An object's cost is what one more adds; the growth from idle also carries the fixed
        // part (code paged in, the connection pool), printed beside it.
        let met = sdk.marginal_rss_kib < RSS_TARGET_KIB;
        println!(
            "Target: SDK RSS per managed object under {RSS_TARGET_KIB:.0} KiB: {} ({:.2} KiB for each object past {n}, heap {:.2} KiB; growth from idle over {n} objects {:.2} KiB, {})",
            if met { "MET" } else { "NOT MET" },
            sdk.marginal_rss_kib,
            sdk.marginal_heap_kib,
            sdk.rss_per_object_kib,
            if sdk.rss_per_object_kib < RSS_TARGET_KIB {
                "also under"
            } else {
                "over: fixed costs included"
            },
        );
        if let Ok(v) = std::env::var("MALLOC_ARENA_MAX") {
            println!("(MALLOC_ARENA_MAX={v})");
        }
        if sdk.reconciles.is_finite() && sdk.reconciles > 0.0 {
            println!(
                "SDK CPU per reconcile: {:.3} ms ({} reconciles)",
                sdk.cpu_per_machine_ms * n as f64 / sdk.reconciles,
                sdk.reconciles
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_file(&kubeconfig);
}

/// Kills a child process (the API server, a provider) when dropped.
struct ChildProcess(std::process::Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
