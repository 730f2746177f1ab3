//! `byoh-agent`: registers one or more simulated hosts and runs their agents.

use std::path::PathBuf;
use std::time::Duration;

use capi_provider_byoh::Agent;
use clap::Parser;

/// A simulated bring-your-own-host agent.
#[derive(Parser, Debug)]
#[command(name = "byoh-agent", version)]
struct Cli {
    /// Kubeconfig of the management cluster (default: inferred).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Namespace to register the ByoHost in.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The host's name (with `--hosts N`: the prefix of `NAME-0` .. `NAME-<N-1>`).
    #[arg(long)]
    name: String,
    /// A label of the host, `key=value` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Run this many simulated hosts in one process.
    #[arg(long)]
    hosts: Option<u16>,
    /// Heartbeat (and resync) interval.
    #[arg(long, default_value_t = 10_000)]
    heartbeat_ms: u64,
    /// Where bootstrap data is written (default: `$TMPDIR/byoh-agent`).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The address to report (default `127.0.0.1`; with `--hosts`, `127.0.0.<i+1>`).
    #[arg(long)]
    address: Option<String>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = client(cli.kubeconfig.as_ref()).await?;
    let work_dir = cli
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("byoh-agent"));
    let hosts: Vec<(String, String)> = match cli.hosts {
        None => vec![(
            cli.name.clone(),
            cli.address.clone().unwrap_or_else(|| "127.0.0.1".into()),
        )],
        Some(n) => (0..n)
            .map(|i| {
                (
                    format!("{}-{i}", cli.name),
                    format!("127.0.0.{}", (u32::from(i) % 254) + 1),
                )
            })
            .collect(),
    };
    let mut tasks = Vec::new();
    for (name, address) in hosts {
        let agent = Agent::builder(client.clone(), &cli.namespace, name)
            .labels(cli.labels.clone())
            .heartbeat(Duration::from_millis(cli.heartbeat_ms))
            .work_dir(&work_dir)
            .address(address)
            .build();
        tasks.push(tokio::spawn(agent.run()));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}
