//! The Manager: runs a provider's controllers in production.
//!
//! It scopes them (namespace, `cluster.x-k8s.io/watch-filter` label), bounds their
//! concurrency, optionally holds a Lease so only one replica reconciles, serves Prometheus
//! metrics and health probes, and shuts down gracefully: running reconciles finish, no new ones
//! start. Nothing global is installed: no logger, no signal handler unless [`Manager::run`] is
//! used, no process exit.
//!
//! ```no_run
//! # use capi_provider_sdk::{Manager, ManagerOptions};
//! # async fn example(client: kube::Client) -> Result<(), capi_provider_sdk::ManagerError> {
//! let options = ManagerOptions {
//!     metrics_addr: Some("0.0.0.0:8080".parse().unwrap()),
//!     health_addr: Some("0.0.0.0:8081".parse().unwrap()),
//!     ..ManagerOptions::new("example-provider")
//! };
//! Manager::new(client, options)
//!     // .machine(MyCloud::new()).cluster(MyCloud::new())
//!     .run()
//!     .await
//! # }
//! ```
//!
//! # Memory
//!
//! Most of a provider's memory is its informer caches: one entry per watched object, kept
//! small (no `managedFields`, no `last-applied-configuration`, Machines without their status),
//! plus about 100 bytes per event series for six minutes. What the allocator does with freed
//! memory is the rest, and the SDK leaves it to the binary: a library must not change a
//! process-wide allocator setting behind its user's back, and this workspace forbids the
//! `unsafe` a `mallopt` call would need.
//!
//! With glibc's malloc (the default on `*-linux-gnu`) each thread that allocates may get an
//! arena of its own, up to eight per core, and memory freed in one is not reused by another:
//! a tokio runtime's worker threads decode watch events in all of them. Set
//! `MALLOC_ARENA_MAX=2` in the provider's Deployment (it is read at process start, so it cannot
//! be set from `main`):
//!
//! ```yaml
//! env:
//!   - name: MALLOC_ARENA_MAX
//!     value: "2"
//! ```
//!
//! The caches fill from paged lists of 100 objects (kube-runtime's default is 500): a page's
//! JSON and decoded objects are live at once while it is stored, and resident memory keeps the
//! high-water mark of such transient peaks.
//!
//! In the SDK's provisioning benchmark (1,000 machines, provider in a process of its own with
//! one runtime worker thread) each further managed object costs 4.9–5.0 KiB of RSS (3.6 KiB
//! of heap): the growth from 1,000 to 2,000 provisioned objects. The growth from idle to the
//! first 1,000 is 13.2–13.4 KiB per object because it also holds what does not grow with the
//! objects: about 5 MiB of code paged in on first use, the connection pool, runtime buffers.
//! With one worker thread `MALLOC_ARENA_MAX` changes nothing there; it matters
//! with tokio's default of one worker per core (the fewer arenas, though, the more lock
//! contention between threads). A different global allocator is no better by default: mimalloc
//! doubled resident memory in an earlier run. That is the binary's choice
//! (`#[global_allocator]`), not the SDK's.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Client;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::controller::{ControllerEnv, run_cluster_controller, run_machine_controller};
use crate::metrics::Metrics;
use crate::provider::{InfraCluster, InfraMachine};
use crate::resource::{InfraClusterResource, InfraMachineResource};

mod crd_check;

pub use crd_check::CrdContractError;

/// Why the manager stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// A probe or metrics listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election: {0}")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),
    /// Leadership was lost while running; the controllers were stopped (a replica restarts).
    #[error("lost leadership of lease {0}")]
    LostLeadership(String),
    /// A provider kind's CRD does not match its Rust type (see [the start-up
    /// check](self#the-crd-check-at-start-up)); nothing was started.
    #[error("refusing to start: {0}")]
    CrdContract(#[from] CrdContractError),
}

/// Lease-based leader election.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// The Lease's name, e.g. `<provider>-leader-election`.
    pub lease_name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Lease duration in seconds.
    pub lease_duration_seconds: u64,
}

/// Manager settings; every field is public so vendors can set them from their own config.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// The name events are reported under and the default Lease name prefix.
    pub name: String,
    /// Reconcile only objects in this namespace (`--namespace`); `None`: all namespaces.
    pub namespace: Option<String>,
    /// Reconcile only objects labelled `cluster.x-k8s.io/watch-filter=<value>` (`--watch-filter`).
    pub watch_filter: Option<String>,
    /// Reconciles running at once per controller (never two for the same object).
    pub concurrency: u16,
    /// Also write `status.ready` for v1beta1-contract readers (CAPI ≤ 1.10).
    pub v1beta1_fields: bool,
    /// Reconcile provisioned objects again after this long to detect drift; `None`: on change only.
    pub resync: Option<Duration>,
    /// Lease-based leader election; `None`: every replica reconciles.
    pub leader_election: Option<LeaderElection>,
    /// Where to serve `/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// Where to serve `/healthz` and `/readyz`.
    pub health_addr: Option<SocketAddr>,
    /// Check at start that the provider's CRDs carry the contract label its Rust types follow
    /// (on by default; `--skip-crd-contract-check`; see [`Manager::skip_crd_contract_check`]).
    pub check_crd_contract: bool,
}

impl ManagerOptions {
    /// Defaults: all namespaces, no filter, 10 concurrent reconciles, no leader election, no listeners.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: None,
            watch_filter: None,
            concurrency: 10,
            v1beta1_fields: false,
            resync: None,
            leader_election: None,
            metrics_addr: None,
            health_addr: None,
            check_crd_contract: true,
        }
    }
}

type ControllerFn = Box<dyn FnOnce(ControllerEnv, Shutdown) -> BoxFuture<'static, ()> + Send>;

/// A cloneable shutdown signal for the controllers.
#[derive(Clone, Debug)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn wait(self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0;
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// Runs a provider's controllers.
pub struct Manager {
    client: Client,
    options: ManagerOptions,
    registry: Registry,
    controllers: Vec<ControllerFn>,
    resources: Vec<crate::rbac::ResourceRef>,
    expected_crds: Vec<crd_check::ExpectedCrd>,
    check_crds: bool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("options", &self.options)
            .field("controllers", &self.controllers.len())
            .field("check_crds", &self.check_crds)
            .finish()
    }
}

impl Manager {
    /// A manager talking to the API server through `client`.
    pub fn new(client: Client, options: ManagerOptions) -> Self {
        Self {
            check_crds: options.check_crd_contract,
            client,
            options,
            registry: Registry::default(),
            controllers: Vec::new(),
            resources: Vec::new(),
            expected_crds: Vec::new(),
        }
    }

    /// Adds the InfraMachine controller of `provider`.
    pub fn machine<P: InfraMachine>(mut self, provider: P) -> Self {
        self.resources
            .push(crate::rbac::ResourceRef::of::<P::Resource>());
        self.expected_crds
            .push(crd_check::ExpectedCrd::of::<P::Resource>(
                "InfraMachine",
                <P::Resource as InfraMachineResource>::contract_version(),
            ));
        self.controllers.push(Box::new(move |env, shutdown| {
            Box::pin(run_machine_controller(env, provider, shutdown.wait()))
        }));
        self
    }

    /// Adds the InfraCluster controller of `provider`.
    pub fn cluster<P: InfraCluster>(mut self, provider: P) -> Self {
        self.resources
            .push(crate::rbac::ResourceRef::of::<P::Resource>());
        self.expected_crds
            .push(crd_check::ExpectedCrd::of::<P::Resource>(
                "InfraCluster",
                <P::Resource as InfraClusterResource>::contract_version(),
            ));
        self.controllers.push(Box::new(move |env, shutdown| {
            Box::pin(run_cluster_controller(env, provider, shutdown.wait()))
        }));
        self
    }

    /// Starts without [checking the CRDs' contract labels](self#the-crd-check-at-start-up).
    ///
    /// For management clusters where the manager may not read CRDs, or where they are
    /// installed after it starts; the labels must still be right, or CAPI core misreads the
    /// provider's objects (or cannot resolve them at all) without any error here.
    ///
    /// ```no_run
    /// # use capi_provider_sdk::{Manager, ManagerOptions};
    /// # async fn example(client: kube::Client) -> Result<(), capi_provider_sdk::ManagerError> {
    /// Manager::new(client, ManagerOptions::new("example-provider"))
    ///     // .machine(MyCloud::new()).cluster(MyCloud::new())
    ///     .skip_crd_contract_check()
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn skip_crd_contract_check(mut self) -> Self {
        self.check_crds = false;
        self
    }

    /// The least-privilege ClusterRole for the controllers added so far.
    pub fn cluster_role(&self, name: &str) -> k8s_openapi::api::rbac::v1::ClusterRole {
        self.resources
            .iter()
            .cloned()
            .fold(crate::rbac::ClusterRoleBuilder::new(name), |b, r| {
                b.resource(r)
            })
            .build()
    }

    /// The metrics registry, to add the provider's own metrics before running.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Runs until SIGINT or SIGTERM.
    pub async fn run(self) -> Result<(), ManagerError> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` resolves, then stops gracefully.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ManagerError> {
        if self.check_crds {
            crd_check::check(&self.client, &self.expected_crds).await?;
        } else {
            tracing::info!("CRD contract-label check skipped");
        }
        let metrics = Metrics::new(&mut self.registry);
        let registry = Arc::new(self.registry);
        let ready = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        if let Some(addr) = self.options.metrics_addr {
            listeners.push(
                serve(
                    addr,
                    crate::probes::metrics_router(registry.clone()),
                    Shutdown(stop_rx.clone()),
                )
                .await?,
            );
        }
        if let Some(addr) = self.options.health_addr {
            listeners.push(
                serve(
                    addr,
                    crate::probes::health_router(ready.clone()),
                    Shutdown(stop_rx.clone()),
                )
                .await?,
            );
        }

        let mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
        // Leader election: wait for the lease (or shutdown) before reconciling anything.
        let mut leadership = None;
        if let Some(le) = &self.options.leader_election {
            // LeaseParams panics on a zero duration or a grace not below it: clamp first.
            let duration = le.lease_duration_seconds.max(2);
            let grace = (duration / 3).clamp(1, duration - 1);
            let params = kube_lease_manager::LeaseParams::new(le.identity.clone(), duration, grace);
            let lease = kube_lease_manager::LeaseManager::new(
                self.client.clone(),
                le.lease_name.clone(),
                le.namespace.clone(),
                params,
                kube_lease_manager::LeaseCreateMode::default(),
            )
            .await?;
            let (mut is_leader, handle) = lease.watch().await;
            tracing::info!(lease = %le.lease_name, identity = %le.identity, "waiting for leadership");
            let became_leader = tokio::select! {
                r = is_leader.wait_for(|l| *l) => r.is_ok(),
                () = &mut shutdown => false,
            };
            if !became_leader {
                drop(is_leader);
                let _ = handle.await;
                let _ = stop_tx.send(true);
                return Ok(());
            }
            tracing::info!(lease = %le.lease_name, "became leader");
            leadership = Some((is_leader, handle, le.lease_name.clone()));
        }

        let env = ControllerEnv {
            client: self.client.clone(),
            namespace: self.options.namespace.clone(),
            watch_filter: self.options.watch_filter.clone(),
            concurrency: self.options.concurrency,
            metrics,
            reporter: self.options.name.clone(),
            v1beta1_fields: self.options.v1beta1_fields,
            resync: self.options.resync,
        };
        let mut tasks = Vec::new();
        for start in self.controllers {
            tasks.push(tokio::spawn(start(env.clone(), Shutdown(stop_rx.clone()))));
        }
        ready.store(true, Ordering::Relaxed);

        let outcome = match leadership.as_mut() {
            Some((is_leader, _, name)) => {
                tokio::select! {
                    () = &mut shutdown => Ok(()),
                    _ = is_leader.wait_for(|l| !*l) => Err(ManagerError::LostLeadership(name.clone())),
                }
            }
            None => {
                shutdown.await;
                Ok(())
            }
        };
        tracing::info!("stopping controllers");
        ready.store(false, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "controller task failed");
            }
        }
        for l in listeners {
            let _ = l.await;
        }
        if let Some((is_leader, handle, _)) = leadership {
            // Dropping the receiver makes the lease manager release the lease.
            drop(is_leader);
            let _ = handle.await;
        }
        outcome
    }
}

async fn serve(
    addr: SocketAddr,
    router: axum::Router,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, ManagerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ManagerError::Bind { addr, source })?;
    tracing::info!(%addr, "listening");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.wait())
            .await
        {
            tracing::error!(error = %e, "listener failed");
        }
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
