//! Repository automation: `cargo xtask <command>`.
//!
//! - `codegen [--corpus DIR]`: regenerate capi-core's v1beta1/v1beta2 types from upstream CRDs.
//! - `crds --out DIR`: write one YAML file per CRD for every capi-core kind.
//! - `demo`: a cluster brought up, scaled and deleted by the SimCloud example provider.
//! - `bench`: the benchmarks, in release builds.
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
    /// hand-written kube-runtime controller. `BENCH_MACHINES=N` changes the count.
    Bench,
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
        Command::Bench => bench(),
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

fn bench() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .args(["bench", "-p", "capi-provider-sdk", "--bench", "provision"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("{cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmark failed: {status}"))
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
