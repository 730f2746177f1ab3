//! `byoh-provider`: the bring-your-own-host provider's manager.

use std::time::Duration;

use capi_provider_byoh::ByohProvider;
use capi_provider_sdk::Manager;
use capi_provider_sdk::flags::ManagerFlags;
use clap::Parser;

/// The bring-your-own-host Cluster API infrastructure provider.
#[derive(Parser, Debug)]
#[command(name = "byoh-provider", version)]
struct Cli {
    #[command(flatten)]
    manager: ManagerFlags,
    /// Namespace the ByoHosts register in (default: each ByoMachine's own namespace).
    #[arg(long)]
    host_namespace: Option<String>,
    /// How often to look again while waiting for a host, its bootstrap or its cleanup.
    #[arg(long, default_value_t = 5000)]
    poll_interval_ms: u64,
    /// Hosts whose last heartbeat is older than this are not claimed.
    #[arg(long, default_value_t = 60)]
    heartbeat_timeout_seconds: u64,
    /// How often to release claims whose ByoMachine is gone.
    #[arg(long, default_value_t = 30_000)]
    orphan_scan_ms: u64,
    /// Print the provider's CRDs as YAML and exit.
    #[arg(long)]
    print_crds: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    if cli.print_crds {
        for crd in capi_provider_byoh::try_crds()? {
            println!("---\n{}", capi_provider_sdk::capi_core::crd::to_yaml(&crd)?);
        }
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut provider = ByohProvider::default()
        .with_poll(Duration::from_millis(cli.poll_interval_ms.max(10)))
        .with_heartbeat_timeout(Duration::from_secs(cli.heartbeat_timeout_seconds));
    // Empty (a components YAML variable left unset): the ByoMachine's own namespace.
    if let Some(ns) = cli.host_namespace.as_ref().filter(|ns| !ns.is_empty()) {
        provider = provider.with_host_namespace(ns);
    }
    let client = cli.manager.client().await?;
    tokio::spawn(provider.clone().collect_orphans(
        client.clone(),
        Duration::from_millis(cli.orphan_scan_ms.max(10)),
    ));
    Manager::new(client, cli.manager.options("byoh-provider"))
        .machine(provider.clone())
        .cluster(provider)
        .run()
        .await?;
    Ok(())
}
