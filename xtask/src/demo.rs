//! `cargo xtask demo`: a Cluster brought up, scaled and torn down by the SimCloud provider.
//!
//! In one process: capi-testkit's API server, the CAPI-core simulator and the SimCloud
//! provider under the SDK's Manager. It applies the provider's `testkit` cluster template
//! (one control-plane Machine, a MachineDeployment of workers), shows the cluster as a live
//! tree while machines provision, scales the workers out and back in, deletes the cluster,
//! checks that nothing leaked (no objects, no finalizers, no cloud resources) and prints a
//! summary. With `--kubeconfig` it runs against that cluster instead.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use capi_provider_sdk::capi_core::v1beta2::{Cluster, Machine, MachineDeployment};
use capi_provider_sdk::{Manager, ManagerOptions};
use capi_provider_simcloud::api::{SimCloudCluster, SimCloudMachine};
use capi_provider_simcloud::cloud::{CloudConfig, SimCloud};
use capi_provider_simcloud::provider::SimCloudProvider;
use capi_testkit::describe::{ClusterDescription, describe_cluster};
use capi_testkit::env::TestEnv;
use capi_testkit::simulator::{Simulator, SimulatorHandle, SimulatorOptions};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

/// Options of `cargo xtask demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Workers in the MachineDeployment at first.
    #[arg(long, default_value_t = 3)]
    workers: u32,
    /// Workers after scaling out.
    #[arg(long, default_value_t = 5)]
    scale_out: u32,
    /// Workers after scaling back in.
    #[arg(long, default_value_t = 2)]
    scale_in: u32,
    /// Latency of every cloud call, in milliseconds.
    #[arg(long, default_value_t = 20)]
    cloud_latency_ms: u64,
    /// Probability (0 to 1) that a cloud call fails.
    #[arg(long, default_value_t = 0.0)]
    cloud_error_rate: f64,
    /// How long an instance takes to boot, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    cloud_boot_ms: u64,
    /// Name of the cluster.
    #[arg(long, default_value = "demo")]
    name: String,
    /// Namespace of the cluster.
    #[arg(long, default_value = "demo")]
    namespace: String,
    /// Seconds each stage may take.
    #[arg(long, default_value_t = 90)]
    stage_timeout: u64,
    /// Keep the cluster and the server up once scaled, print a kubeconfig for kubectl, and
    /// tear down on Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Run against this cluster instead of the embedded server (installs the provider's CRDs;
    /// also the core CRDs and the simulator where CAPI is not installed).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

/// A stage and how long it took.
struct Stage {
    what: String,
    took: Duration,
}

struct Demo {
    args: DemoArgs,
    client: Client,
    cloud: SimCloud,
    started: Instant,
    stages: Vec<Stage>,
    live: bool,
    /// Machine states last printed (when not on a terminal), to print only changes.
    printed: std::sync::Mutex<Vec<(String, String, String)>>,
}

type DemoResult<T> = Result<T, String>;

fn err(what: &str) -> impl Fn(kube::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub fn run(args: DemoArgs) -> DemoResult<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?
        .block_on(run_async(args))
}

async fn run_async(args: DemoArgs) -> DemoResult<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let started = Instant::now();
    let mut crds = capi_provider_sdk::capi_core::crd::core_crds().map_err(|e| e.to_string())?;
    let provider_crds = capi_provider_simcloud::api::crds().map_err(|e| e.to_string())?;

    // The management cluster: the embedded server, or the one --kubeconfig names.
    let mut env = None;
    let (client, simulate, where_) = match &args.kubeconfig {
        None => {
            crds.extend(provider_crds);
            let e = TestEnv::builder()
                .crds(crds)
                .start()
                .await
                .map_err(|e| format!("starting the API server: {e}"))?;
            let client = e.client();
            let url = e.url().unwrap_or_default();
            env = Some(e);
            (client, true, format!("capi-testkit API server at {url}"))
        }
        Some(path) => {
            let client = client_for(path).await?;
            let installed: Api<CustomResourceDefinition> = Api::all(client.clone());
            let has_capi = installed
                .get_opt("clusters.cluster.x-k8s.io")
                .await
                .map_err(err("reading CRDs"))?
                .is_some();
            let mut install = provider_crds;
            if !has_capi {
                install.extend(crds);
            }
            install_crds(&client, install).await?;
            (
                client,
                !has_capi,
                format!("the cluster of {}", path.display()),
            )
        }
    };
    let cloud = SimCloud::new(CloudConfig {
        latency: Duration::from_millis(args.cloud_latency_ms),
        error_rate: args.cloud_error_rate,
        boot_time: Duration::from_millis(args.cloud_boot_ms),
        ..CloudConfig::default()
    });
    let mut demo = Demo {
        live: std::io::stdout().is_terminal(),
        args,
        client,
        cloud,
        started,
        stages: Vec::new(),
        printed: Default::default(),
    };
    demo.stage_done(format!("management cluster ready: {where_}"));

    let simulator = simulate.then(|| start_simulator(&demo.client));
    let provider = SimCloudProvider::new(demo.cloud.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = tokio::spawn(
        Manager::new(
            demo.client.clone(),
            ManagerOptions::new("capi-provider-simcloud"),
        )
        .machine(provider.clone())
        .cluster(provider)
        .run_until(async move {
            let _ = stopped.await;
        }),
    );
    demo.stage_done(format!(
        "SimCloud provider{} running",
        if simulate {
            " and CAPI-core simulator"
        } else {
            ""
        }
    ));

    let result = demo.scenario(env.as_ref()).await;
    let _ = stop.send(());
    if let Ok(Err(e)) = manager.await {
        eprintln!("provider: {e}");
    }
    if let Some(s) = simulator {
        s.stop().await;
    }
    demo.summary(&result);
    drop(env);
    result
}

fn start_simulator(client: &Client) -> SimulatorHandle {
    Simulator::new(client.clone())
        .options(SimulatorOptions {
            poll: Duration::from_millis(200),
            bootstrap_delay: Duration::from_millis(300),
            ..SimulatorOptions::default()
        })
        .start()
}

async fn client_for(path: &std::path::Path) -> DemoResult<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Client::try_from(config).map_err(|e| format!("building the client: {e}"))
}

async fn install_crds(client: &Client, crds: Vec<CustomResourceDefinition>) -> DemoResult<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("capi-rs-demo").force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(err(&format!("installing CRD {name}")))?;
    }
    // Wait until every kind is served.
    for _ in 0..100 {
        if kube::discovery::pinned_kind(
            client,
            &kube::api::GroupVersionKind::gvk(
                capi_provider_simcloud::api::GROUP,
                capi_provider_simcloud::api::VERSION,
                "SimCloudMachine",
            ),
        )
        .await
        .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the provider's CRDs were not served within 10 s".into())
}

impl Demo {
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn stage_done(&mut self, what: String) {
        let since = self.stages.iter().map(|s| s.took).sum::<Duration>();
        let took = self.started.elapsed().saturating_sub(since);
        println!(
            "[{:6.1}s] ✔ {what} ({})",
            self.elapsed(),
            fmt_duration(took)
        );
        self.stages.push(Stage { what, took });
    }

    fn step(&self, what: &str) {
        println!("[{:6.1}s] ▶ {what}", self.elapsed());
    }

    async fn describe(&self) -> DemoResult<Option<ClusterDescription>> {
        describe_cluster(&self.client, &self.args.namespace, &self.args.name)
            .await
            .map_err(|e| e.to_string())
    }

    /// Shows the cluster until `done` says the stage is over.
    async fn watch_until(
        &self,
        what: &str,
        done: impl Fn(Option<&ClusterDescription>) -> bool,
    ) -> DemoResult<()> {
        let deadline = Instant::now() + Duration::from_secs(self.args.stage_timeout);
        let mut shown_lines = 0usize;
        loop {
            let tree = self.describe().await?;
            if self.live {
                let text = tree.as_ref().map(ToString::to_string).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                if shown_lines > 0 {
                    // Back to the top of the previous frame, then clear below.
                    let _ = write!(out, "\x1b[{shown_lines}A\x1b[J");
                }
                let _ = write!(out, "{text}");
                let _ = out.flush();
                shown_lines = text.lines().count();
            } else if let Some(t) = &tree {
                // Not a terminal: one line per machine whose state changed.
                let now: Vec<(String, String, String)> = t
                    .machines()
                    .map(|m| {
                        let why = m
                            .infra_ready
                            .as_ref()
                            .filter(|r| r.0 != "True")
                            .map(|r| r.1.clone())
                            .unwrap_or_default();
                        (m.name.clone(), m.phase.clone(), why)
                    })
                    .collect();
                let mut printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
                for m in &now {
                    if !printed.contains(m) {
                        let why = if m.2.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", m.2)
                        };
                        println!("[{:6.1}s]   Machine {} {}{why}", self.elapsed(), m.0, m.1);
                    }
                }
                *printed = now;
            }
            if done(tree.as_ref()) {
                if !self.live
                    && let Some(t) = &tree
                {
                    print!("{t}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                if let Some(t) = &tree {
                    print!("{t}");
                }
                return Err(format!(
                    "{what}: not done after {} s",
                    self.args.stage_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn scenario(&mut self, env: Option<&TestEnv>) -> DemoResult<()> {
        let (name, ns) = (self.args.name.clone(), self.args.namespace.clone());
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .patch(
                &ns,
                &PatchParams::apply("capi-rs-demo"),
                &Patch::Apply(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
                })),
            )
            .await
            .map_err(err("creating the namespace"))?;
        let yaml = capi_provider_simcloud::testkit_cluster(&name, &ns, self.args.workers)
            .map_err(|e| e.to_string())?;
        capi_testkit::apply::apply_yaml(&self.client, &yaml, &ns, "capi-rs-demo")
            .await
            .map_err(|e| e.to_string())?;
        self.step(&format!(
            "applied Cluster {ns}/{name}: 1 control-plane Machine, MachineDeployment {name}-md-0 of {} workers",
            self.args.workers
        ));

        let up = self.args.workers as usize + 1;
        self.watch_until("bringing the cluster up", |t| running(t, up))
            .await?;
        self.stage_done(format!("cluster up: {up} machines running"));

        for (workers, verb) in [(self.args.scale_out, "out"), (self.args.scale_in, "in")] {
            self.step(&format!("scaling {name}-md-0 {verb} to {workers} workers"));
            Api::<MachineDeployment>::namespaced(self.client.clone(), &ns)
                .patch(
                    &format!("{name}-md-0"),
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"replicas": workers}})),
                )
                .await
                .map_err(err("scaling"))?;
            let n = workers as usize + 1;
            self.watch_until(&format!("scaling {verb}"), |t| running(t, n))
                .await?;
            self.stage_done(format!("scaled {verb}: {n} machines running"));
        }

        if self.args.keep {
            self.keep_serving(env).await?;
        }

        self.step(&format!("deleting Cluster {ns}/{name}"));
        Api::<Cluster>::namespaced(self.client.clone(), &ns)
            .delete(&name, &DeleteParams::background())
            .await
            .map_err(err("deleting the cluster"))?;
        self.watch_until("deleting the cluster", |t| t.is_none())
            .await?;
        self.stage_done("cluster deleted".into());
        self.check_leaks().await?;
        self.stage_done("nothing leaked: no CAPI or SimCloud objects, no cloud resources".into());
        Ok(())
    }

    async fn keep_serving(&self, env: Option<&TestEnv>) -> DemoResult<()> {
        if let Some(env) = env {
            let path = std::env::temp_dir().join("capi-rs-demo.kubeconfig");
            env.write_kubeconfig_to(&path)
                .map_err(|e| format!("writing the kubeconfig: {e}"))?;
            println!(
                "\nThe cluster stays up. Look at it with kubectl:\n\n    kubectl --kubeconfig {} get clusters,machines,simcloudmachines -A\n",
                path.display()
            );
        }
        println!("Press Ctrl-C to delete the cluster and finish.");
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("waiting for Ctrl-C: {e}"))
    }

    async fn check_leaks(&self) -> DemoResult<()> {
        let ns = &self.args.namespace;
        let lp = ListParams::default();
        let mut left = Vec::new();
        let machines = Api::<Machine>::namespaced(self.client.clone(), ns)
            .list(&lp)
            .await
            .map_err(err("listing Machines"))?;
        left.extend(
            machines
                .items
                .iter()
                .map(|m| format!("Machine {}", m.name_any())),
        );
        let infra_machines = Api::<SimCloudMachine>::namespaced(self.client.clone(), ns)
            .list(&lp)
            .await
            .map_err(err("listing SimCloudMachines"))?;
        left.extend(infra_machines.items.iter().map(|m| {
            format!(
                "SimCloudMachine {} (finalizers {:?})",
                m.name_any(),
                m.finalizers()
            )
        }));
        let infra_clusters = Api::<SimCloudCluster>::namespaced(self.client.clone(), ns)
            .list(&lp)
            .await
            .map_err(err("listing SimCloudClusters"))?;
        left.extend(infra_clusters.items.iter().map(|c| {
            format!(
                "SimCloudCluster {} (finalizers {:?})",
                c.name_any(),
                c.finalizers()
            )
        }));
        // Terminations finish in the cloud a moment after the objects are gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.cloud.inventory().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let inventory = self.cloud.inventory();
        if !inventory.is_empty() {
            left.push(format!("cloud resources: {inventory:?}"));
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("leaked: {}", left.join(", ")))
        }
    }

    fn summary(&self, result: &DemoResult<()>) {
        let stats = self.cloud.stats();
        println!("\nSummary");
        for s in &self.stages {
            println!("  {:>8}  {}", fmt_duration(s.took), s.what);
        }
        println!("  {:>8}  total", fmt_duration(self.started.elapsed()));
        println!(
            "  cloud: {} calls, {} failed on purpose (error rate {})",
            stats.calls, stats.injected_errors, self.args.cloud_error_rate
        );
        match result {
            Ok(()) => {
                println!("\nDemo finished: the cluster came up, scaled and went away cleanly.")
            }
            Err(e) => println!("\nDemo failed: {e}"),
        }
    }
}

fn running(tree: Option<&ClusterDescription>, n: usize) -> bool {
    tree.is_some_and(|t| t.machines().count() == n && t.machines().all(|m| m.phase == "Running"))
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
