//! The command-line flags every provider binary takes, as clap arguments (feature `clap`).
//!
//! They follow the names CAPI providers' managers use (`--namespace`, `--watch-filter`,
//! `--leader-elect`, `--metrics-bind-address`, `--health-probe-bind-address`), so that
//! clusterctl's components YAML and operators' habits carry over. Flatten them into your own
//! parser and turn them into [`ManagerOptions`] and a client:
//!
//! ```
//! use capi_provider_sdk::flags::ManagerFlags;
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     manager: ManagerFlags,
//!     /// A flag of the provider's own.
//!     #[arg(long, default_value = "us-east")]
//!     region: String,
//! }
//!
//! let cli = Cli::parse_from(["provider", "--namespace", "capi-system", "--watch-filter", "team-a", "--leader-elect"]);
//! let options = cli.manager.options("example-provider");
//! assert_eq!(options.namespace.as_deref(), Some("capi-system"));
//! assert_eq!(options.watch_filter.as_deref(), Some("team-a"));
//! assert_eq!(options.leader_election.unwrap().lease_name, "example-provider-leader-election");
//! assert!(options.check_crd_contract);
//!
//! let cli = Cli::parse_from(["provider", "--skip-crd-contract-check"]);
//! assert!(!cli.manager.options("example-provider").check_crd_contract);
//!
//! // Empty values, as a components YAML passes a variable left unset, mean "unset".
//! let cli = Cli::parse_from(["provider", "--namespace=", "--watch-filter="]);
//! let options = cli.manager.options("example-provider");
//! assert_eq!((options.namespace, options.watch_filter), (None, None));
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::manager::{LeaderElection, ManagerOptions};

/// Flags shared by every provider manager.
#[derive(Debug, Clone, clap::Args)]
pub struct ManagerFlags {
    /// Kubeconfig to reach the management cluster; without it: in-cluster config, then
    /// `$KUBECONFIG`, then `~/.kube/config`.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Reconcile objects in this namespace only (all namespaces when unset).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Reconcile only objects labelled `cluster.x-k8s.io/watch-filter=<value>`.
    #[arg(long)]
    pub watch_filter: Option<String>,
    /// Reconciles running at once per controller.
    #[arg(long, default_value_t = 10)]
    pub concurrency: u16,
    /// Hold a Lease so that only one replica reconciles.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (defaults to `$POD_NAMESPACE`, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// Lease duration in seconds.
    #[arg(long, default_value_t = 15)]
    pub leader_elect_lease_duration: u64,
    /// Where to serve Prometheus metrics (`/metrics`); off when unset.
    #[arg(long)]
    pub metrics_bind_address: Option<SocketAddr>,
    /// Where to serve `/healthz` and `/readyz`; off when unset.
    #[arg(long)]
    pub health_probe_bind_address: Option<SocketAddr>,
    /// Reconcile provisioned objects again after this many seconds to detect drift.
    #[arg(long)]
    pub sync_period: Option<u64>,
    /// Also write the v1beta1 contract's fields (`status.ready`, v1beta1 conditions) for CAPI ≤ 1.10.
    #[arg(long)]
    pub v1beta1_fields: bool,
    /// Start without checking that the provider's CRDs carry the right contract label.
    #[arg(long)]
    pub skip_crd_contract_check: bool,
}

/// Why the flags could not be turned into a running configuration.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No configuration was found (no `--kubeconfig`, not in a cluster, no default file).
    #[error("no Kubernetes configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("building the client: {0}")]
    Client(#[from] kube::Error),
}

impl ManagerFlags {
    /// The [`ManagerOptions`] these flags describe, for a provider called `name` (the event
    /// reporter and the Lease name prefix). The leader's identity is `$POD_NAME`, else
    /// `$HOSTNAME`, else the name and the process id.
    pub fn options(&self, name: &str) -> ManagerOptions {
        let leader_election = if self.leader_elect {
            let identity = std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .ok()
                .filter(|s| !s.is_empty())
                // Outside a pod: unique enough for two replicas on one host.
                .unwrap_or_else(|| format!("{name}-{}", std::process::id()));
            Some(LeaderElection {
                lease_name: format!("{name}-leader-election"),
                namespace: self
                    .leader_elect_namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                identity,
                lease_duration_seconds: self.leader_elect_lease_duration,
            })
        } else {
            None
        };
        // `--namespace=""` (a components YAML variable left empty) means all namespaces.
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        ManagerOptions {
            namespace: non_empty(&self.namespace),
            watch_filter: non_empty(&self.watch_filter),
            concurrency: self.concurrency.max(1),
            v1beta1_fields: self.v1beta1_fields,
            resync: self.sync_period.map(Duration::from_secs),
            leader_election,
            metrics_addr: self.metrics_bind_address,
            health_addr: self.health_probe_bind_address,
            check_crd_contract: !self.skip_crd_contract_check,
            ..ManagerOptions::new(name)
        }
    }

    /// A client for the management cluster: from `--kubeconfig` when given, inferred otherwise.
    pub async fn client(&self) -> Result<kube::Client, FlagsError> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    FlagsError::Kubeconfig {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|source| FlagsError::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?
            }
            None => kube::Config::infer().await?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}
