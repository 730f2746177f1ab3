//! `capi-testkit`: the fake Kubernetes API server as a command.
//!
//! `capi-testkit serve --port 0 --kubeconfig PATH [--crds DIR]...` binds 127.0.0.1 (another
//! address only with `--address`), installs the CRDs, writes the kubeconfig once it serves,
//! logs its URL and stops cleanly on SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use capi_testkit::env::TestEnv;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "capi-testkit",
    version,
    about = "An in-memory Kubernetes API server and CAPI test kit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the fake API server until interrupted.
    Serve {
        /// Port (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Address to bind; loopback unless you ask for another.
        #[arg(long, default_value = "127.0.0.1")]
        address: IpAddr,
        /// Where to write the kubeconfig once the server is ready.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// CRD YAML files or folders to install first (repeatable).
        #[arg(long)]
        crds: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            port,
            address,
            kubeconfig,
            crds,
        } => {
            let mut builder = TestEnv::builder().address(SocketAddr::new(address, port));
            for c in crds {
                builder = builder.crd_path(c);
            }
            let env = match builder.start().await {
                Ok(env) => env,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = env.write_kubeconfig_to(&kubeconfig) {
                eprintln!("error: writing {}: {e}", kubeconfig.display());
                return ExitCode::FAILURE;
            }
            tracing::info!(url = env.url().unwrap_or_default(), kubeconfig = %kubeconfig.display(), "serving");
            let term = async {
                #[cfg(unix)]
                if let Ok(mut s) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    s.recv().await;
                    return;
                }
                std::future::pending::<()>().await;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
            tracing::info!("stopping");
            ExitCode::SUCCESS
        }
    }
}
