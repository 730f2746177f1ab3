//! `capi-testkit`: the fake Kubernetes API server as a command.
//!
//! - `capi-testkit serve --port 0 --kubeconfig PATH [--crds DIR]...` binds 127.0.0.1 (another
//!   address only with `--address`), installs the CRDs, writes the kubeconfig once it serves,
//!   logs its URL and stops cleanly on SIGINT/SIGTERM.
//! - `capi-testkit conformance --provider-cmd '<command with {kubeconfig}>' --crds DIR [--release DIR]
//!   [--template FILE] [--timeout S] [--json FILE] [--junit FILE]` starts the server with the core
//!   and provider CRDs, launches the provider, runs the suite, prints a table; exits non-zero when
//!   a required scenario or a static check fails.

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
    /// Run the conformance suite against a provider launched as a command.
    Conformance(ConformanceArgs),
}

#[derive(Debug, clap::Args)]
struct ConformanceArgs {
    /// The provider's command line; `{kubeconfig}` is replaced by the server's kubeconfig path.
    #[arg(long)]
    provider_cmd: String,
    /// The provider's CRDs (files or folders, repeatable).
    #[arg(long, required = true)]
    crds: Vec<PathBuf>,
    /// A cluster template to take the provider objects' specs from.
    #[arg(long)]
    template: Option<PathBuf>,
    /// A folder of clusterctl release files (`metadata.yaml`, `infrastructure-components.yaml`,
    /// `cluster-template*.yaml`) to check statically as well.
    #[arg(long)]
    release: Option<PathBuf>,
    /// Seconds to wait for the provider in one step.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Only these scenarios (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Write the report as JSON here (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
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
        Command::Conformance(args) => match conformance(args).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The static checks of a release folder: metadata, components and every cluster template.
fn release_findings(
    dir: &std::path::Path,
) -> Result<Vec<capi_testkit::conformance::static_checks::Finding>, String> {
    use capi_testkit::conformance::static_checks;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut findings = static_checks::check_metadata(&read("metadata.yaml")?);
    findings.extend(static_checks::check_components(&read(
        "infrastructure-components.yaml",
    )?));
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut templates: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("cluster-template") && n.ends_with(".yaml"))
        .collect();
    templates.sort();
    for name in templates {
        findings.extend(static_checks::check_template(&name, &read(&name)?));
    }
    Ok(findings)
}

/// SIGTERM to the provider's process group, SIGKILL to what is left after 5 s.
async fn stop_provider(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let group = format!("-{pid}");
        let signal = |sig: &str| {
            // `kill` rather than libc: this crate forbids unsafe code.
            let _ = std::process::Command::new("kill")
                .args([sig, "--", &group])
                .stderr(std::process::Stdio::null())
                .status();
        };
        signal("-TERM");
        if tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            signal("-KILL");
        }
        // Children of the shell may outlive it for a moment: make sure they are gone too.
        signal("-KILL");
    }
    let _ = child.kill().await;
}

async fn conformance(args: ConformanceArgs) -> Result<bool, String> {
    let ConformanceArgs {
        provider_cmd,
        crds: crd_paths,
        template,
        release,
        timeout,
        only,
        json,
        junit,
    } = args;
    use capi_testkit::conformance::{ConformanceConfig, run, static_checks};
    let mut provider_crds = Vec::new();
    for p in &crd_paths {
        provider_crds.extend(capi_testkit::env::read_crds(p).map_err(|e| e.to_string())?);
    }
    let mut all = capi_core::crd::core_crds().map_err(|e| e.to_string())?;
    all.extend(provider_crds.iter().cloned());
    let env = TestEnv::builder()
        .crds(all)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let kubeconfig = env.kubeconfig_path();
    let command = provider_cmd.replace("{kubeconfig}", &kubeconfig.display().to_string());
    tracing::info!(%command, "starting the provider");
    let mut shell = tokio::process::Command::new("sh");
    shell.arg("-c").arg(&command).kill_on_drop(true);
    // A process group of its own: whatever the command line starts (an agent beside the
    // provider, say) is stopped with it.
    #[cfg(unix)]
    shell.process_group(0);
    let mut child = shell
        .spawn()
        .map_err(|e| format!("cannot start the provider: {e}"))?;
    let mut config = ConformanceConfig {
        timeout: std::time::Duration::from_secs(timeout),
        only,
        faults: Some(env.server().faults().clone()),
        ..ConformanceConfig::new(env.client())
    };
    if let Some(t) = &template {
        let text = std::fs::read_to_string(t).map_err(|e| format!("{}: {e}", t.display()))?;
        config = config.with_template(&text)?;
    }
    let result = run(config).await;
    stop_provider(&mut child).await;
    let mut report = result.map_err(|e| e.to_string())?;
    // The static checks read the files as given, not the installed copies.
    let mut findings = static_checks::check_crds(&provider_crds);
    if let Some(dir) = &release {
        findings.extend(release_findings(dir)?);
    }
    report.findings = findings.iter().map(Into::into).collect();
    print!("{}", report.table());
    if let Some(path) = json {
        if path.as_os_str() == "-" {
            println!("{}", report.json());
        } else {
            std::fs::write(&path, report.json()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    if let Some(path) = junit {
        let xml = report.junit().map_err(|e| e.to_string())?;
        std::fs::write(&path, xml).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(report.passed())
}
