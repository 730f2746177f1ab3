//! Repository automation: `cargo xtask <command>`.
//!
//! - `codegen [--corpus DIR]`: regenerate capi-core's v1beta1/v1beta2 types from upstream CRDs.
//! - `crds --out DIR`: write one YAML file per CRD for every capi-core kind.
//! - `demo`: a cluster brought up, scaled and deleted by the SimCloud example provider.
//! - `bench [--server-only]`: the benchmarks, in release builds: the SDK's provisioning, then the
//!   API server's beside etcd (installed from Debian's `etcd-server` when missing).
//! - `conformance --provider NAME`: the conformance CLI against a provider's binaries.
//! - `release-artifacts --provider NAME --version vX.Y.Z --out DIR`: a provider's clusterctl
//!   release files.

mod codegen;
mod conformance;
mod demo;
mod release;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "capi-rs repository automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Regenerate capi-core's Cluster API types from the upstream CRD schemas.
    Codegen {
        /// Folder holding the upstream core CRDs (both versions in each file).
        #[arg(long, default_value = "../shared/corpus/cluster-api/crds")]
        corpus: PathBuf,
    },
    /// Bring a cluster up, scale it and tear it down with the SimCloud provider, the CAPI-core
    /// simulator and the embedded API server, all in this process.
    Demo(demo::DemoArgs),
    /// Run the benchmarks (release builds): the SDK provisioning 1,000 InfraMachines against a
    /// hand-written kube-runtime controller (`BENCH_MACHINES=N` changes the count), then the API
    /// server's start-up, throughput, watch delivery and memory beside etcd.
    Bench {
        /// Only the API server's benchmarks.
        #[arg(long)]
        server_only: bool,
    },
    /// Run the conformance suite's command line against a provider's binaries.
    Conformance {
        /// The provider (simcloud, byoh).
        #[arg(long)]
        provider: String,
        /// Also write a JUnit report here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Write a provider's clusterctl release files: components, metadata, templates, Dockerfile.
    ReleaseArtifacts {
        /// The provider (simcloud, byoh).
        #[arg(long)]
        provider: String,
        /// The release version, vMAJOR.MINOR.PATCH.
        #[arg(long)]
        version: String,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the CRDs of every capi-core kind, one YAML file each.
    Crds {
        /// Output folder (created if missing). Without it, all CRDs go to stdout as one stream.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen { corpus } => {
            let corpus = if corpus.is_relative() {
                workspace_root().join(corpus)
            } else {
                corpus
            };
            codegen::run(&corpus, &workspace_root().join("capi-core/src")).and_then(|files| {
                // Format like the rest of the tree so `cargo fmt --check` and regeneration agree.
                let status = std::process::Command::new("rustfmt")
                    .args(["--edition", "2024"])
                    .args(&files)
                    .status()
                    .map_err(|e| format!("rustfmt: {e}"))?;
                if !status.success() {
                    return Err(format!("rustfmt failed: {status}"));
                }
                for f in files {
                    println!("wrote {}", f.display());
                }
                Ok(())
            })
        }
        Command::Crds { out } => write_crds(out),
        Command::Demo(args) => demo::run(args),
        Command::Bench { server_only } => bench(server_only),
        Command::Conformance { provider, junit } => find_provider(&provider).and_then(|p| {
            match conformance::run(&p, &workspace_root(), junit.as_deref())? {
                true => Ok(()),
                false => Err(format!(
                    "{provider}: a required conformance scenario failed"
                )),
            }
        }),
        Command::ReleaseArtifacts {
            provider,
            version,
            out,
        } => release_artifacts(&provider, &version, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(server_only: bool) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |args: &[&str]| -> Result<(), String> {
        let status = std::process::Command::new(&cargo)
            .args(args)
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("{cargo}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the benchmark failed: {status}"))
        }
    };
    if !server_only {
        run(&["bench", "-p", "capi-provider-sdk", "--bench", "provision"])?;
    }
    ensure_etcd();
    // `cli` builds the `capi-testkit` binary, which the benchmark runs as the server process;
    // `bench-etcd` the etcd client of its baseline.
    run(&[
        "bench",
        "-p",
        "capi-testkit",
        "--features",
        "cli,bench-etcd",
        "--bench",
        "server",
    ])
}

/// Installs etcd (the baseline of the API server's benchmarks) from Debian's `etcd-server` when it
/// is not on PATH; says why when it cannot, and the benchmark then skips the baselines.
fn ensure_etcd() {
    let has_etcd = || {
        std::process::Command::new("etcd")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_etcd() {
        return;
    }
    if std::process::Command::new("apt-get")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("etcd baseline skipped: no etcd on PATH and no apt-get to install etcd-server");
        return;
    }
    eprintln!("installing etcd-server (the benchmark's baseline) with apt-get");
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["install", "-y", "-q", "etcd-server"])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "etcd-server"]));
    if !installed || !has_etcd() {
        eprintln!(
            "etcd baseline skipped: `apt-get install -y etcd-server` failed (not root, or no package index); install etcd to compare"
        );
    }
}

fn find_provider(name: &str) -> Result<release::Provider, String> {
    let providers = release::providers();
    let known: Vec<&str> = providers.iter().map(|p| p.name).collect();
    let known = known.join(", ");
    providers
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("unknown provider {name:?}; known: {known}"))
}

fn release_artifacts(name: &str, version: &str, out: &std::path::Path) -> Result<(), String> {
    let provider = find_provider(name)?;
    for file in release::write(&provider, version, out)? {
        println!("wrote {file}");
    }
    Ok(())
}

fn write_crds(out: Option<PathBuf>) -> Result<(), String> {
    let crds = capi_core::crd::core_crds().map_err(|e| e.to_string())?;
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for crd in &crds {
                let name = crd.metadata.name.clone().unwrap_or_default();
                let path = dir.join(format!("{name}.yaml"));
                let yaml = capi_core::crd::to_yaml(crd).map_err(|e| e.to_string())?;
                std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
        None => {
            for crd in &crds {
                print!(
                    "---\n{}",
                    capi_core::crd::to_yaml(crd).map_err(|e| e.to_string())?
                );
            }
        }
    }
    Ok(())
}
