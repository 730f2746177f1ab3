//! `capi-provider-simcloud`: the SimCloud provider's manager, with the simulated cloud in
//! process.
//!
//! ```text
//! capi-provider-simcloud --kubeconfig PATH [--namespace NS] [--watch-filter VALUE] [--leader-elect]
//!     [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR]
//!     [--cloud-latency-ms N] [--cloud-error-rate P] [--cloud-instance-quota N] [--cloud-seed N]
//! capi-provider-simcloud --print-crds
//! ```

use std::process::ExitCode;
use std::time::Duration;

use capi_provider_sdk::Manager;
use capi_provider_sdk::flags::ManagerFlags;
use capi_provider_simcloud::cloud::{CloudConfig, SimCloud};
use capi_provider_simcloud::provider::SimCloudProvider;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "capi-provider-simcloud",
    version,
    about = "Cluster API infrastructure provider for SimCloud"
)]
struct Cli {
    #[command(flatten)]
    manager: ManagerFlags,
    #[command(flatten)]
    cloud: CloudFlags,
    /// Print the provider's CRDs as YAML and exit.
    #[arg(long)]
    print_crds: bool,
}

/// How the in-process simulated cloud behaves.
#[derive(Debug, clap::Args)]
struct CloudFlags {
    /// Latency of every cloud call, in milliseconds.
    #[arg(long, default_value_t = 10)]
    cloud_latency_ms: u64,
    /// Probability (0 to 1) that a cloud call fails.
    #[arg(long, default_value_t = 0.0)]
    cloud_error_rate: f64,
    /// Live instances the cloud allows.
    #[arg(long, default_value_t = 100)]
    cloud_instance_quota: usize,
    /// How long new cloud resources stay invisible, in milliseconds.
    #[arg(long, default_value_t = 300)]
    cloud_consistency_delay_ms: u64,
    /// How long an instance takes to boot, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    cloud_boot_ms: u64,
    /// The cloud's zones.
    #[arg(long, value_delimiter = ',', default_value = "zone-a,zone-b,zone-c")]
    cloud_zones: Vec<String>,
    /// Seed of the cloud's error dice.
    #[arg(long, default_value_t = 0)]
    cloud_seed: u64,
}

impl CloudFlags {
    fn config(&self) -> CloudConfig {
        CloudConfig {
            latency: Duration::from_millis(self.cloud_latency_ms),
            error_rate: self.cloud_error_rate,
            instance_quota: self.cloud_instance_quota,
            consistency_delay: Duration::from_millis(self.cloud_consistency_delay_ms),
            boot_time: Duration::from_millis(self.cloud_boot_ms),
            zones: self.cloud_zones.clone(),
            seed: self.cloud_seed,
            ..CloudConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_crds {
        return match print_crds() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let client = match cli.manager.client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the management cluster");
            return ExitCode::FAILURE;
        }
    };
    let provider = SimCloudProvider::new(SimCloud::new(cli.cloud.config()));
    let options = cli.manager.options("capi-provider-simcloud");
    match Manager::new(client, options)
        .machine(provider.clone())
        .cluster(provider)
        .run()
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "manager stopped");
            ExitCode::FAILURE
        }
    }
}

fn print_crds() -> Result<(), Box<dyn std::error::Error>> {
    for crd in capi_provider_simcloud::api::crds()? {
        print!("---\n{}", capi_provider_sdk::capi_core::crd::to_yaml(&crd)?);
    }
    Ok(())
}
