//! 1,000 InfraMachines from creation to provisioned, on capi-testkit's in-process API server
//! with a zero-latency cloud: the SDK against a hand-written kube-runtime controller doing the
//! least any provider must (finalizer, providerID, provisioned), measured in the same run.
//!
//! `cargo bench -p capi-provider-sdk --bench provision` (or `cargo xtask bench`);
//! `BENCH_MACHINES=N` changes the count.
//!
//! The API server runs in a child process (this binary again, with `--serve-api`), so the
//! figures are the controllers' alone: CPU time of the `controllers` runtime's threads (from
//! `/proc/self/task`), and RSS per object as this process's growth while the controller takes
//! the objects over (its caches and queues), divided by their count.

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
    let machines: Api<capi_provider_sdk::capi_core::v1beta2::Machine> =
        Api::namespaced(client.clone(), ns);
    let infra: Api<BenchMachine> = Api::namespaced(client.clone(), ns);
    let batch = futures::stream::iter(0..n)
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
    rss_per_object_kib: f64,
    heap_per_object_kib: f64,
}

fn main() {
    let n: usize = std::env::var("BENCH_MACHINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let labels = ContractVersionLabels::new().with("v1beta2", ["v1alpha1"]);
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().unwrap();
    crds.push(provider_crd(vec![BenchMachine::crd()], "v1alpha1", &labels).unwrap());
    let args: Vec<String> = std::env::args().collect();
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
    let mut server = ServerProcess(
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
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driver")
        .enable_all()
        .build()
        .unwrap();
    let controllers_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("controllers")
        .enable_all()
        .build()
        .unwrap();
    let client_on = |rt: &tokio::runtime::Runtime| {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        rt.block_on(async move {
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .unwrap();
            Client::try_from(config).unwrap()
        })
    };
    // Each client's connections live on its own runtime.
    let driver_client = client_on(&server_rt);
    let controller_client = client_on(&controllers_rt);

    let mut results = Vec::new();
    for (label, sdk) in [
        ("kube-runtime baseline", false),
        ("capi-provider-sdk", true),
    ] {
        let ns = if sdk { "sdk" } else { "baseline" };
        let client = driver_client.clone();
        let t = Instant::now();
        server_rt.block_on(populate(&client, ns, n));
        eprintln!("{label}: {n} machines created in {:.1?}", t.elapsed());

        let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let requests_before = server_rt.block_on(request_counts(&client));
        let cpu_before = thread_cpu("controllers");
        let rss_before = rss_kib();
        let heap_before = heap_in_use();
        let start = Instant::now();
        let c = controller_client.clone();
        let namespace = ns.to_owned();
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
        server_rt.block_on(async {
            while provisioned(&client, ns).await < n {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let wall = start.elapsed();
        // Let trailing writes (events, conditions) land before counting.
        std::thread::sleep(Duration::from_millis(500));
        let cpu = thread_cpu("controllers") - cpu_before;
        let rss = rss_kib().saturating_sub(rss_before);
        let heap = heap_in_use().saturating_sub(heap_before);
        let req = server_rt
            .block_on(request_counts(&client))
            .since(&requests_before);
        let reconcile_count = if sdk {
            server_rt.block_on(reconciles(metrics_addr))
        } else {
            f64::NAN
        };
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
                cpu_per_machine_ms: cpu * 1000.0 / n as f64,
                reconciles: reconcile_count,
                rss_per_object_kib: rss as f64 / n as f64,
                heap_per_object_kib: heap as f64 / 1024.0 / n as f64,
            },
        ));
    }

    println!("\n{n} InfraMachines, creation to provisioned, zero-latency cloud, 2 threads");
    println!(
        "{:<24}{:>10}{:>14}{:>14}{:>10}{:>16}{:>14}{:>14}{:>14}",
        "",
        "wall",
        "writes/mach.",
        "events/mach.",
        "GETs",
        "ctrl CPU/mach.",
        "reconciles",
        "RSS/object",
        "heap/object"
    );
    for (label, f) in &results {
        println!(
            "{label:<24}{:>9.2}s{:>14.2}{:>14.2}{:>10}{:>14.3}ms{:>14}{:>11.2}KiB{:>11.2}KiB",
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
        );
    }
    if let [(_, base), (_, sdk)] = results.as_slice() {
        println!(
            "\nSDK / baseline: wall {:.2}x, writes {:.2}x, controller CPU {:.2}x, RSS/object {:.2}x, heap/object {:.2}x",
            sdk.wall.as_secs_f64() / base.wall.as_secs_f64(),
            sdk.writes_per_machine / base.writes_per_machine,
            sdk.cpu_per_machine_ms / base.cpu_per_machine_ms.max(f64::EPSILON),
            sdk.rss_per_object_kib / base.rss_per_object_kib.max(f64::EPSILON),
            sdk.heap_per_object_kib / base.heap_per_object_kib.max(f64::EPSILON),
        );
        let met = sdk.rss_per_object_kib < RSS_TARGET_KIB;
        println!(
            "Target: SDK RSS per managed object under {RSS_TARGET_KIB:.0} KiB: {} ({:.2} KiB; heap in use {:.2} KiB){}",
            if met { "MET" } else { "NOT MET" },
            sdk.rss_per_object_kib,
            sdk.heap_per_object_kib,
            match std::env::var("MALLOC_ARENA_MAX") {
                Ok(v) => format!(", MALLOC_ARENA_MAX={v}"),
                Err(_) => String::new(),
            },
        );
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

/// Kills the API server process when the bench ends.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
