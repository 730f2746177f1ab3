//! The black-box conformance suite for infrastructure providers, in any language.
//!
//! - Layer 1, [`static_checks`]: a provider's CRDs and release files, no server.
//! - Layer 2, [`scenarios`]: contract scenarios against a running provider, through the API
//!   server only, with the [CAPI-core simulator](crate::simulator) playing CAPI's controllers.
//!
//! From a provider's own tests, with the provider running against the same API server:
//!
//! ```no_run
//! # async fn t(client: kube::Client) {
//! use capi_testkit::conformance::{run, ConformanceConfig};
//! let report = run(ConformanceConfig::new(client)).await.unwrap();
//! assert!(report.passed(), "{}", report.table());
//! # }
//! ```

pub mod harness;
pub mod report;
pub mod scenarios;
pub mod static_checks;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

pub use harness::{DiscoveryError, Harness, ProviderUnderTest};
pub use report::{Report, ScenarioResult};
pub use scenarios::Scenario;

/// What to test and how patiently.
#[derive(Clone)]
pub struct ConformanceConfig {
    /// Client to the API server the provider watches.
    pub client: Client,
    /// Specs for new provider objects by kind (from a cluster template); `{}` otherwise.
    pub specs: BTreeMap<String, Value>,
    /// How long to wait for the provider to act in one step.
    pub timeout: Duration,
    /// How long "nothing happens" is watched for.
    pub settle: Duration,
    /// Run only the scenarios with these names (all when empty).
    pub only: Vec<String>,
    /// Prefix of the namespaces scenarios create.
    pub namespace_prefix: String,
    /// The server's fault rules when it is capi-testkit's (`TestEnv::server().faults()`): enables
    /// the fault-injection scenario, which is skipped (passes trivially) otherwise.
    pub faults: Option<std::sync::Arc<crate::server::faults::Faults>>,
    /// Scenarios run at once, each in its own namespace (at least 1). Those that need the
    /// server to themselves run alone afterwards.
    pub parallel: usize,
}

impl std::fmt::Debug for ConformanceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConformanceConfig")
            .field("timeout", &self.timeout)
            .field("settle", &self.settle)
            .field("only", &self.only)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl ConformanceConfig {
    /// Defaults: 20 s per step, 1.5 s settle windows, every scenario, four at a time.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            specs: BTreeMap::new(),
            timeout: Duration::from_secs(20),
            settle: Duration::from_millis(1500),
            only: Vec::new(),
            namespace_prefix: "conformance".into(),
            faults: None,
            parallel: 4,
        }
    }

    /// Takes provider object specs from a cluster template (InfraCluster, InfraMachineTemplate).
    pub fn with_template(mut self, yaml: &str) -> Result<Self, String> {
        let filled = capi_core::template::substitute(yaml, |name| {
            Some(match name {
                "CLUSTER_NAME" => "c1".into(),
                "NAMESPACE" => "default".into(),
                "KUBERNETES_VERSION" => "v1.34.0".into(),
                _ => "1".into(),
            })
        })
        .map_err(|e| e.to_string())?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&filled).map_err(|e| e.to_string())?;
        for d in docs {
            let (Some(kind), Some(group)) = (d["kind"].as_str(), d["apiVersion"].as_str()) else {
                continue;
            };
            if group.starts_with("cluster.x-k8s.io/") {
                continue;
            }
            self.specs.insert(kind.to_owned(), d["spec"].clone());
        }
        Ok(self)
    }
}

/// Why the suite could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The provider's kinds could not be found.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Reading CRDs failed.
    #[error("reading CRDs: {0}")]
    Kube(#[from] kube::Error),
}

/// Runs the static checks on the installed provider CRDs, then every scenario, each in a
/// namespace of its own.
pub async fn run(config: ConformanceConfig) -> Result<Report, ConformanceError> {
    let start = Instant::now();
    let provider = ProviderUnderTest::discover(&config.client, &config.specs).await?;
    let crds: Api<CustomResourceDefinition> = Api::all(config.client.clone());
    let theirs: Vec<CustomResourceDefinition> = crds
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.spec.group == provider.infra_machine.resource.group)
        .collect();
    let mut report = Report {
        findings: static_checks::check_crds(&theirs)
            .iter()
            .map(Into::into)
            .collect(),
        ..Report::default()
    };
    let suffix = std::process::id();
    let selected: Vec<(usize, Scenario)> = scenarios::all()
        .into_iter()
        .enumerate()
        .filter(|(_, s)| config.only.is_empty() || config.only.iter().any(|n| n == s.name))
        .collect();
    let (alone, together): (Vec<_>, Vec<_>) = selected.into_iter().partition(|(_, s)| s.exclusive);
    let run_one = |(i, scenario): (usize, Scenario)| {
        let harness = Harness {
            client: config.client.clone(),
            namespace: format!("{}-{suffix}-{i}", config.namespace_prefix),
            provider: provider.clone(),
            timeout: config.timeout,
            settle: config.settle,
            faults: config.faults.clone(),
        };
        async move { (i, run_scenario(&harness, &scenario).await) }
    };
    let mut results: Vec<(usize, ScenarioResult)> = futures::stream::iter(together)
        .map(run_one)
        .buffer_unordered(config.parallel.max(1))
        .collect()
        .await;
    for scenario in alone {
        results.push(run_one(scenario).await);
    }
    // Reported in the suite's order, however they finished.
    results.sort_by_key(|(i, _)| *i);
    report.scenarios = results.into_iter().map(|(_, r)| r).collect();
    report.duration = start.elapsed();
    Ok(report)
}

/// Runs one scenario in its own namespace, which is deleted afterwards.
async fn run_scenario(harness: &Harness, scenario: &Scenario) -> ScenarioResult {
    let t = Instant::now();
    let outcome = match harness.create_namespace().await {
        Ok(()) => (scenario.run)(harness).await,
        Err(e) => Err(e),
    };
    harness.delete_namespace().await;
    tracing::info!(
        scenario = scenario.name,
        passed = outcome.is_ok(),
        "scenario finished"
    );
    ScenarioResult {
        name: scenario.name.to_owned(),
        clause: scenario.clause.to_owned(),
        required: scenario.required,
        passed: outcome.is_ok(),
        message: outcome.err().map(|e| e.0),
        duration: t.elapsed(),
    }
}
