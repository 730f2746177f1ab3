//! `cargo xtask conformance --provider NAME`: the conformance suite through its command line
//! (`capi-testkit conformance`) against a provider's own binaries and release files, as a
//! provider author or a CI pipeline runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::release::Provider;

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn cargo(args: &[&str], root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("{cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed: {status}", args.join(" ")))
    }
}

/// Builds the CLI and the provider's binaries, writes its CRDs and runs the suite; `Ok(false)`
/// when a required scenario failed.
pub fn run(provider: &Provider, root: &Path, junit: Option<&Path>) -> Result<bool, String> {
    cargo(
        &[
            "build",
            "-q",
            "-p",
            "capi-testkit",
            "--features",
            "cli",
            "--bin",
            "capi-testkit",
        ],
        root,
    )?;
    let (binaries, command) = provider.conformance;
    let mut args = vec!["build", "-q"];
    for b in binaries {
        args.extend(["--bin", b]);
    }
    cargo(&args, root)?;

    let bin = target_dir(root).join("debug");
    let work = target_dir(root).join("conformance").join(provider.name);
    let crds = work.join("crds");
    std::fs::create_dir_all(&crds).map_err(|e| format!("{}: {e}", crds.display()))?;
    for crd in (provider.crds)()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let yaml = capi_provider_sdk::capi_core::crd::to_yaml(&crd).map_err(|e| e.to_string())?;
        let path = crds.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // The release files, checked statically by the CLI too.
    let release = work.join("release");
    crate::release::write(provider, "v0.1.0", &release)?;
    let command = command.replace("{bin}", &bin.display().to_string());
    let mut cli = Command::new(bin.join("capi-testkit"));
    cli.arg("conformance")
        .args(["--provider-cmd", &command])
        .arg("--crds")
        .arg(&crds)
        .arg("--release")
        .arg(&release);
    if let Some(path) = junit {
        cli.arg("--junit").arg(path);
    }
    println!(
        "running: capi-testkit conformance --provider-cmd '{command}' --crds {}",
        crds.display()
    );
    let status = cli.status().map_err(|e| format!("capi-testkit: {e}"))?;
    Ok(status.success())
}
