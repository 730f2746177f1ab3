//! `capi-testkit`: the fake Kubernetes API server as a command.
//!
//! - `capi-testkit serve --port 0 --kubeconfig PATH [--crds DIR]...` binds 127.0.0.1 (another
//!   address only with `--address`), installs the CRDs, writes the kubeconfig once it serves,
//!   logs its URL and stops gracefully on SIGINT/SIGTERM, as kube-apiserver: the port closes,
//!   HTTP/2 connections get a `GOAWAY`, watches end with their last chunk (`END_STREAM`),
//!   requests in flight are answered (for at most 60 s), then it exits 0. It serves HTTPS, as
//!   kube-apiserver: a CA and a serving certificate (for `localhost`, `127.0.0.1`, `::1` and `--address`) are made at
//!   start and the kubeconfigs carry the CA (`certificate-authority-data`); `--tls-san NAME|IP`
//!   (repeatable) adds names or addresses to the certificate, for clients reaching the server
//!   by another name (bound to `0.0.0.0`, the certificate also names the address of the
//!   default route's interface, and the kubeconfig says `127.0.0.1`). kubectl speaks HTTP/2
//!   (ALPN `h2`), kube-rs HTTP/1.1. `--insecure-http` serves plain HTTP/1.1 instead. `--rbac` enforces RBAC from the stored
//!   Roles, ClusterRoles and bindings (the `--kubeconfig` one stays all-powerful, in
//!   `system:masters`); `--kubeconfig-for-serviceaccount NS/NAME=PATH` and
//!   `--kubeconfig-for-user NAME=PATH` (repeatable) write kubeconfigs that act as that
//!   ServiceAccount or user (its bearer token; with `--insecure-http` also `as:`, since client-go
//!   sends no token over plain HTTP), e.g. to run a provider with only its generated ClusterRole:
//!
//!   ```text
//!   capi-testkit serve --rbac --kubeconfig admin.kubeconfig --crds config/crd \
//!       --kubeconfig-for-serviceaccount capi-system/manager=manager.kubeconfig
//!   kubectl --kubeconfig admin.kubeconfig apply -f config/rbac/   # role + binding to the SA
//!   ./my-provider --kubeconfig manager.kubeconfig                # 403 for anything else
//!   ```
//!
//!   Faults: `--faults FILE` adds fault rules (a YAML list, format in
//!   `capi_testkit::server::faults::parse_rules`) once the CRDs are installed, and SIGUSR1
//!   reads the file again, replacing the rules. SIGHUP restarts the server on the same port:
//!   every connection and watch drops, the port is closed for 100 ms, and `--on-sighup` says
//!   what survives (`keep-state`, the default; `keep-crds`; `empty-store`):
//!
//!   ```text
//!   capi-testkit serve --kubeconfig k --faults faults.yaml --on-sighup keep-crds &
//!   kill -HUP $!    # a fresh cluster with the same CRDs
//!   kill -USR1 $!   # faults.yaml edited: new rules
//!   ```
//! - `capi-testkit conformance --provider-cmd '<command with {kubeconfig}>' --crds DIR [--release DIR]
//!   [--template FILE] [--timeout S] [--parallel N] [--json FILE] [--junit FILE]` starts the server with the core
//!   and provider CRDs, launches the provider, runs the suite, prints a table; exits non-zero when
//!   a required scenario or a static check fails.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use capi_testkit::env::{Identity, TestEnv};
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
        /// Enforce RBAC (the `--kubeconfig` identity is in `system:masters` and may do anything).
        #[arg(long)]
        rbac: bool,
        /// Serve plain HTTP instead of HTTPS (requests without credentials then act as the
        /// administrator, as an old kube-apiserver's insecure port).
        #[arg(long)]
        insecure_http: bool,
        /// Another DNS name or IP address for the serving certificate (repeatable), e.g. for
        /// clients on other machines when bound to `0.0.0.0`.
        #[arg(long = "tls-san", value_name = "NAME|IP", value_parser = parse_san, conflicts_with = "insecure_http")]
        tls_san: Vec<String>,
        /// `NS/NAME=PATH`: write a kubeconfig for the ServiceAccount NS/NAME to PATH (repeatable).
        #[arg(long, value_name = "NS/NAME=PATH", value_parser = parse_serviceaccount_kubeconfig)]
        kubeconfig_for_serviceaccount: Vec<(Identity, PathBuf)>,
        /// `NAME=PATH`: write a kubeconfig for the user NAME (in `system:authenticated`) to PATH
        /// (repeatable).
        #[arg(long, value_name = "NAME=PATH", value_parser = parse_user_kubeconfig)]
        kubeconfig_for_user: Vec<(Identity, PathBuf)>,
        /// Fault rules (a YAML list) to add once the CRDs are installed; read again on SIGUSR1.
        #[arg(long)]
        faults: Option<PathBuf>,
        /// What survives the restart SIGHUP triggers.
        #[arg(long, value_enum, default_value_t = OnSighup::KeepState)]
        on_sighup: OnSighup,
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
    /// Scenarios run at once, each in its own namespace (1: one after another).
    #[arg(long, default_value_t = 4)]
    parallel: usize,
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
            rbac,
            insecure_http,
            tls_san,
            kubeconfig_for_serviceaccount,
            kubeconfig_for_user,
            faults,
            on_sighup,
        } => {
            let mut builder = TestEnv::builder()
                .address(SocketAddr::new(address, port))
                .enforce_rbac(rbac)
                .insecure_http(insecure_http);
            for san in tls_san {
                builder = builder.tls_san(san);
            }
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
            for (identity, path) in kubeconfig_for_serviceaccount
                .iter()
                .chain(&kubeconfig_for_user)
            {
                if let Err(e) = env.write_kubeconfig_for(identity, path) {
                    eprintln!("error: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                tracing::info!(user = identity.name(), kubeconfig = %path.display(), "kubeconfig written");
            }
            if let Some(path) = &faults {
                match load_faults(&env, path) {
                    Ok(n) => tracing::info!(rules = n, "fault rules loaded"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            tracing::info!(
                url = env.url().unwrap_or_default(),
                kubeconfig = %kubeconfig.display(),
                certificate_names = ?env.subject_alt_names().unwrap_or_default(),
                "serving"
            );
            let env = serve_until_stopped(env, faults, on_sighup).await;
            tracing::info!("stopping gracefully");
            env.shutdown().await;
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

/// What survives the restart SIGHUP triggers (`capi_testkit::server::restart::Restart`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OnSighup {
    /// Objects, resourceVersions and watch history (an apiserver restart, etcd intact).
    KeepState,
    /// Only the CRDs: a new, empty cluster with the same CRDs.
    KeepCrds,
    /// Nothing: a new, empty cluster.
    EmptyStore,
}

impl From<OnSighup> for capi_testkit::server::restart::Restart {
    fn from(o: OnSighup) -> Self {
        use capi_testkit::server::restart::Restart;
        match o {
            OnSighup::KeepState => Restart::KeepState,
            OnSighup::KeepCrds => Restart::KeepCrds,
            OnSighup::EmptyStore => Restart::EmptyStore,
        }
    }
}

/// Replaces the server's fault rules with the file's; returns how many there are.
fn load_faults(env: &TestEnv, path: &std::path::Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rules = capi_testkit::server::faults::parse_rules(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let n = rules.len();
    env.faults().clear();
    for r in rules {
        env.faults().add(r);
    }
    Ok(n)
}

/// A signal stream, if the process can have one.
#[cfg(unix)]
fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
        .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for a signal"))
        .ok()
}

/// The next delivery of `s` (never, without a stream).
#[cfg(unix)]
async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Serves until SIGINT or SIGTERM (then returns the environment, to stop it gracefully),
/// restarting on SIGHUP and reloading faults on SIGUSR1.
async fn serve_until_stopped(
    mut env: TestEnv,
    faults: Option<PathBuf>,
    on_sighup: OnSighup,
) -> TestEnv {
    #[cfg(unix)]
    {
        use tokio::signal::unix::SignalKind;
        let mut term = signal(SignalKind::terminate());
        let mut hup = signal(SignalKind::hangup());
        let mut usr1 = signal(SignalKind::user_defined1());
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = next(&mut term) => break,
                () = next(&mut hup) => {
                    tracing::info!(keep = ?on_sighup, "SIGHUP: restarting");
                    if let Err(e) = env.restart(on_sighup.into()).await {
                        tracing::error!(error = %e, "restart failed");
                        break;
                    }
                }
                () = next(&mut usr1) => match &faults {
                    Some(path) => match load_faults(&env, path) {
                        Ok(n) => tracing::info!(rules = n, "SIGUSR1: fault rules reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGUSR1: fault rules kept"),
                    },
                    None => tracing::warn!("SIGUSR1 without --faults: nothing to reload"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (&mut env, faults, on_sighup);
        let _ = tokio::signal::ctrl_c().await;
    }
    env
}

/// `NS/NAME=PATH` → the ServiceAccount and where its kubeconfig goes.
fn parse_serviceaccount_kubeconfig(s: &str) -> Result<(Identity, PathBuf), String> {
    let (sa, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NS/NAME=PATH"))?;
    match sa.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !path.is_empty() => {
            Ok((Identity::service_account(ns, name), PathBuf::from(path)))
        }
        _ => Err(format!("{s:?}: expected NS/NAME=PATH")),
    }
}

/// A `--tls-san`, checked to be an IP address or a DNS name.
fn parse_san(s: &str) -> Result<String, String> {
    s.parse::<capi_testkit::server::tls::SubjectAltName>()
        .map(|n| n.to_string())
        .map_err(|e| e.to_string())
}

/// `NAME=PATH` → the user and where its kubeconfig goes.
fn parse_user_kubeconfig(s: &str) -> Result<(Identity, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((Identity::user(name), PathBuf::from(path)))
        }
        _ => Err(format!("{s:?}: expected NAME=PATH")),
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
        parallel,
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
        parallel,
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
