//! `cargo xtask release-artifacts --provider NAME --version vX.Y.Z --out DIR`: what a clusterctl
//! provider repository holds for one release.
//!
//! - `infrastructure-components.yaml`: the provider's CRDs, its Namespace, ServiceAccount,
//!   least-privilege ClusterRole and binding, and a Deployment whose `manager` container runs
//!   with leader election, `--namespace`, `--watch-filter`, metrics and health ports; values a
//!   user sets are `${VARIABLES}` with defaults. Every object has the
//!   `cluster.x-k8s.io/provider: infrastructure-NAME` label.
//! - `metadata.yaml`: the release series and the contract it implements.
//! - `cluster-template*.yaml`: the provider's flavors.
//! - `Dockerfile`: the provider image, built from this repository.

use std::path::Path;

use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// One provider this repository releases.
pub struct Provider {
    /// clusterctl's name: `infrastructure-<name>`.
    pub name: &'static str,
    /// The crate and binary of its manager.
    pub binary: &'static str,
    /// Its CRDs.
    pub crds: fn() -> Result<Vec<CustomResourceDefinition>, String>,
    /// Its least-privilege ClusterRole.
    pub cluster_role: fn(&str) -> ClusterRole,
    /// Its cluster templates, by file name.
    pub templates: &'static [(&'static str, &'static str)],
    /// Manager arguments of its own, `${VARIABLES}` allowed.
    pub extra_args: &'static [&'static str],
    /// `cargo xtask conformance`: the binaries to build, and the command line that runs the
    /// provider (`{bin}`: the folder of the built binaries; `{kubeconfig}`: the server's).
    pub conformance: (&'static [&'static str], &'static str),
}

/// The providers of this repository.
pub fn providers() -> Vec<Provider> {
    vec![
        Provider {
            name: capi_provider_simcloud::PROVIDER_NAME,
            binary: "capi-provider-simcloud",
            crds: || capi_provider_simcloud::api::crds().map_err(|e| e.to_string()),
            cluster_role: capi_provider_simcloud::cluster_role,
            templates: &capi_provider_simcloud::TEMPLATES,
            extra_args: &[
                "--cloud-latency-ms=${SIMCLOUD_LATENCY_MS:=10}",
                "--cloud-error-rate=${SIMCLOUD_ERROR_RATE:=0}",
                "--cloud-instance-quota=${SIMCLOUD_INSTANCE_QUOTA:=100}",
            ],
            conformance: (
                &["capi-provider-simcloud"],
                "{bin}/capi-provider-simcloud --kubeconfig {kubeconfig} --cloud-latency-ms 1 \
             --cloud-boot-ms 300 --cloud-consistency-delay-ms 150",
            ),
        },
        Provider {
            name: capi_provider_byoh::PROVIDER_NAME,
            binary: "byoh-provider",
            crds: || capi_provider_byoh::try_crds().map_err(|e| e.to_string()),
            cluster_role: capi_provider_byoh::cluster_role,
            templates: &capi_provider_byoh::TEMPLATES,
            extra_args: &["--host-namespace=${BYOH_HOST_NAMESPACE:=}"],
            conformance: (
                &["byoh-provider", "byoh-agent"],
                "{bin}/byoh-agent --kubeconfig {kubeconfig} --namespace default --name host \
                 --hosts 12 & exec {bin}/byoh-provider --kubeconfig {kubeconfig} --host-namespace default",
            ),
        },
    ]
}

/// Writes the release files of `provider` at `version` (`vX.Y.Z`) into `out`.
pub fn write(provider: &Provider, version: &str, out: &Path) -> Result<Vec<String>, String> {
    let (major, minor) = parse_version(version)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut files = vec![
        (
            "infrastructure-components.yaml".to_owned(),
            components(provider, version)?,
        ),
        ("metadata.yaml".to_owned(), metadata(major, minor)),
        ("Dockerfile".to_owned(), dockerfile(provider)),
    ];
    files.extend(
        provider
            .templates
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
    );
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(&name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// `vX.Y.Z` → (X, Y).
fn parse_version(version: &str) -> Result<(u64, u64), String> {
    let bad = || format!("version {version:?} is not vMAJOR.MINOR.PATCH");
    let rest = version.strip_prefix('v').ok_or_else(bad)?;
    // A pre-release suffix (v0.2.0-rc.1) follows the patch number.
    let core = rest.split_once('-').map_or(rest, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    num(patch)?;
    Ok((num(major)?, num(minor)?))
}

fn metadata(major: u64, minor: u64) -> String {
    format!(
        "# clusterctl metadata: the contract each release series implements.\n\
         apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\n\
         kind: Metadata\n\
         releaseSeries:\n  - major: {major}\n    minor: {minor}\n    contract: v1beta2\n"
    )
}

fn labelled(mut obj: Value, provider_label: &str) -> Value {
    obj["metadata"]["labels"]["cluster.x-k8s.io/provider"] = json!(provider_label);
    obj
}

fn components(provider: &Provider, version: &str) -> Result<String, String> {
    let label = format!("infrastructure-{}", provider.name);
    let prefix = format!("capi-{}", provider.name);
    let namespace = format!("{prefix}-system");
    let service_account = format!("{prefix}-manager");
    let role_name = format!("{prefix}-manager-role");
    let variable = provider.name.to_uppercase().replace('-', "_");

    let mut objects = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {"control-plane": "controller-manager"}}
    })];
    for crd in (provider.crds)()? {
        objects.push(serde_json::to_value(crd).map_err(|e| e.to_string())?);
    }
    objects.push(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": service_account, "namespace": namespace}
    }));
    let mut role =
        serde_json::to_value((provider.cluster_role)(&role_name)).map_err(|e| e.to_string())?;
    role["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    role["kind"] = json!("ClusterRole");
    objects.push(role);
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("{prefix}-manager-rolebinding")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    }));
    let mut args = vec![
        "--leader-elect".to_owned(),
        format!("--namespace=${{{variable}_WATCH_NAMESPACE:=}}"),
        format!("--watch-filter=${{{variable}_WATCH_FILTER:=}}"),
        format!("--concurrency=${{{variable}_CONCURRENCY:=10}}"),
        "--metrics-bind-address=0.0.0.0:8080".to_owned(),
        "--health-probe-bind-address=0.0.0.0:9440".to_owned(),
    ];
    args.extend(provider.extra_args.iter().map(|a| (*a).to_owned()));
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    objects.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": format!("{prefix}-controller-manager"), "namespace": namespace,
            "labels": {"control-plane": "controller-manager"}
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"control-plane": "controller-manager", "cluster.x-k8s.io/provider": label}},
            "template": {
                "metadata": {"labels": {"control-plane": "controller-manager", "cluster.x-k8s.io/provider": label}},
                "spec": {
                    "serviceAccountName": service_account,
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "manager",
                        "image": format!("${{{variable}_IMAGE:=capi-rs/{}:{version}}}", provider.binary),
                        "imagePullPolicy": "IfNotPresent",
                        "args": args,
                        "env": [
                            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                            {"name": "RUST_LOG", "value": format!("${{{variable}_LOG:=info}}")}
                        ],
                        "ports": [
                            {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
                            {"name": "healthz", "containerPort": 9440, "protocol": "TCP"}
                        ],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "healthz"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsUser": 65532, "runAsGroup": 65532
                        },
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"}
                        }
                    }]
                }
            }
        }
    }));

    let mut out = String::new();
    for obj in objects {
        let yaml = serde_saphyr::to_string(&labelled(obj, &label)).map_err(|e| e.to_string())?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

fn dockerfile(provider: &Provider) -> String {
    let bin = provider.binary;
    format!(
        "# The {bin} image: `docker build -f Dockerfile -t capi-rs/{bin}:VERSION <repository root>`.\n\
         FROM rust:1.89-bookworm AS build\n\
         WORKDIR /src\n\
         COPY . .\n\
         RUN cargo build --release --locked --bin {bin} && cp target/release/{bin} /{bin}\n\
         \n\
         FROM debian:bookworm-slim\n\
         RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*\n\
         COPY --from=build /{bin} /usr/local/bin/{bin}\n\
         USER 65532:65532\n\
         ENTRYPOINT [\"/usr/local/bin/{bin}\"]\n"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use capi_testkit::conformance::static_checks::{
        Severity, check_components, check_crds, check_metadata, check_template,
    };

    #[test]
    fn versions_are_checked() {
        assert_eq!(parse_version("v1.2.3").unwrap(), (1, 2));
        assert_eq!(parse_version("v0.3.0-rc.1").unwrap(), (0, 3));
        for bad in ["1.2.3", "v1.2", "v1.x.3", "v1.2.3.4"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    /// The artefacts of every provider pass the conformance suite's static checks.
    #[test]
    fn every_provider_release_passes_the_static_checks() {
        for provider in providers() {
            let dir = std::env::temp_dir().join(format!(
                "capi-rs-release-{}-{}",
                provider.name,
                std::process::id()
            ));
            let files = write(&provider, "v0.1.0", &dir).unwrap();
            assert!(files.len() >= 4, "{files:?}");
            let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
            let components = read("infrastructure-components.yaml");
            let mut findings = check_components(&components);
            findings.extend(check_metadata(&read("metadata.yaml")));
            findings.extend(check_crds(&(provider.crds)().unwrap()));
            for (name, _) in provider.templates {
                findings.extend(check_template(name, &read(name)));
            }
            let errors: Vec<_> = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", provider.name);
            assert!(components.contains("name: manager"));
            assert!(components.contains("--leader-elect"));
            assert!(read("Dockerfile").contains(&format!("--bin {}", provider.binary)));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
