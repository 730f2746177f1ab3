//! The host agent: stands in for the `byoh-hostagent` that runs on each Linux host.
//!
//! An [`Agent`] registers its [`ByoHost`] (creating it, or adopting an existing one), writes
//! `status.lastHeartbeat` every heartbeat interval and watches its own ByoHost:
//!
//! - claimed, with a `spec.bootstrapSecret`: it reads the Secret (`value`, `format`) and "runs"
//!   it: the data goes to `<work dir>/<host>/bootstrap-data` (in place of cloud-init), then
//!   `status.bootstrapped`, `bootstrapDataHash`, `addresses`, `appliedClaimUID` and the
//!   `Bootstrapped` condition are set;
//! - its state belongs to a claim that is gone (released or replaced): it cleans up (the file is
//!   deleted, the status reset) and acknowledges with `status.observedGeneration`.
//!
//! Bootstrap data is a secret: it is written to the work directory only (mode 0600), never
//! logged; the status carries its SHA-256.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use capi_provider_sdk::capi_core::bootstrap::{BootstrapData, BootstrapError};
use capi_provider_sdk::capi_core::conditions::{self, v1beta2};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::api::{BOOTSTRAPPED, ByoHost, ByoHostSpec};

/// The file (under `<work dir>/<host>/`) the bootstrap data is written to.
pub const BOOTSTRAP_FILE: &str = "bootstrap-data";
/// The file (beside [`BOOTSTRAP_FILE`]) the data's format is written to.
pub const FORMAT_FILE: &str = "bootstrap-format";

/// What an agent step can fail with; the agent logs it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A request to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The claim's bootstrap Secret does not exist (yet).
    #[error("bootstrap secret {namespace}/{name} not found")]
    SecretMissing {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// The Secret holds no usable bootstrap data.
    #[error("bootstrap secret: {0}")]
    Bootstrap(#[from] BootstrapError),
    /// The work directory could not be written.
    #[error("work directory {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Builds an [`Agent`].
pub struct AgentBuilder {
    client: Client,
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    heartbeat: Duration,
    work_dir: PathBuf,
    address: String,
}

impl std::fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AgentBuilder {
    /// Adds a label to the ByoHost (what ByoMachine selectors match).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds labels.
    pub fn labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.labels
            .extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// How often to write `status.lastHeartbeat` (and resync); default 10 s.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Where bootstrap data is written (`<dir>/<host>/bootstrap-data`); default the temp dir.
    pub fn work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = dir.into();
        self
    }

    /// The address reported once bootstrapped (an `InternalIP`); default `127.0.0.1`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// The agent.
    pub fn build(self) -> Agent {
        Agent {
            api: Api::namespaced(self.client.clone(), &self.namespace),
            client: self.client,
            namespace: self.namespace,
            name: self.name,
            labels: self.labels,
            heartbeat: self.heartbeat.max(Duration::from_millis(10)),
            work_dir: self.work_dir,
            address: self.address,
        }
    }
}

/// One host's agent.
#[derive(Clone)]
pub struct Agent {
    client: Client,
    api: Api<ByoHost>,
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    heartbeat: Duration,
    work_dir: PathBuf,
    address: String,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent for host `name`, registering in `namespace`.
    pub fn builder(
        client: Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> AgentBuilder {
        AgentBuilder {
            client,
            namespace: namespace.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            heartbeat: Duration::from_secs(10),
            work_dir: std::env::temp_dir().join("byoh-agent"),
            address: "127.0.0.1".into(),
        }
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the current bootstrap data is in, while the host is bootstrapped.
    pub fn bootstrap_file(&self) -> PathBuf {
        self.work_dir.join(&self.name).join(BOOTSTRAP_FILE)
    }

    /// Creates the ByoHost, or adopts an existing one (adding the agent's labels), and writes
    /// a first heartbeat.
    pub async fn register(&self) -> Result<ByoHost, AgentError> {
        let host = ByoHost {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: ByoHostSpec::default(),
            status: None,
        };
        match self.api.create(&PostParams::default(), &host).await {
            Ok(_) => tracing::info!(host = %self.name, "registered host"),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.api
                    .patch(
                        &self.name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"labels": self.labels}})),
                    )
                    .await?;
                tracing::info!(host = %self.name, "adopted existing host");
            }
            Err(e) => return Err(e.into()),
        }
        self.beat().await
    }

    /// Writes `status.lastHeartbeat` (registering the host again if it was deleted).
    pub async fn beat(&self) -> Result<ByoHost, AgentError> {
        let patch = json!({"status": {"lastHeartbeat": conditions::now()}});
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(h) => Ok(h),
            Err(kube::Error::Api(e)) if e.code == 404 => Box::pin(self.register()).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Runs until `shutdown` completes: registers, heartbeats, acts on claims and releases.
    /// Step errors are logged and retried at the next heartbeat or change.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut changes = watcher(self.api.clone(), config).default_backoff().boxed();
        let mut ticks = tokio::time::interval(self.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {
                    if let Err(e) = self.beat().await {
                        tracing::warn!(host = %self.name, error = %e, "heartbeat failed");
                    }
                }
                change = changes.next() => {
                    if change.is_none() {
                        changes = watcher(self.api.clone(), watcher::Config::default().fields(&format!("metadata.name={}", self.name))).default_backoff().boxed();
                    }
                }
            }
            if let Err(e) = self.step().await {
                tracing::warn!(host = %self.name, error = %e, "agent step failed");
            }
        }
    }

    /// Runs until the process gets Ctrl-C.
    pub async fn run(self) {
        self.run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    }

    /// One pass: brings the host's state (files, status) in line with its spec.
    pub async fn step(&self) -> Result<(), AgentError> {
        let Some(host) = self.api.get_opt(&self.name).await? else {
            self.register().await?;
            return Ok(());
        };
        let generation = host.metadata.generation;
        let status = host.status.clone().unwrap_or_default();
        let desired = host.spec.claim.as_ref().map(|c| c.uid.clone());
        let applied = status.applied_claim_uid.clone();

        if applied.is_some() && applied != desired {
            return self.clean_up(&host).await;
        }
        let mut conds = status.conditions.clone();
        match (&desired, &host.spec.bootstrap_secret) {
            (Some(uid), Some(secret_ref)) if applied.is_none() => {
                let secrets: Api<Secret> =
                    Api::namespaced(self.client.clone(), &secret_ref.namespace);
                let Some(secret) = secrets.get_opt(&secret_ref.name).await? else {
                    return Err(AgentError::SecretMissing {
                        namespace: secret_ref.namespace.clone(),
                        name: secret_ref.name.clone(),
                    });
                };
                let data = match BootstrapData::from_secret(&secret) {
                    Ok(d) => d,
                    Err(e) => {
                        v1beta2::mark_false(
                            &mut conds,
                            BOOTSTRAPPED,
                            "BootstrapFailed",
                            &e.to_string(),
                            generation,
                        );
                        self.patch_status(json!({"conditions": conds})).await?;
                        return Err(e.into());
                    }
                };
                self.write_data(&data)?;
                let hash = crate::hash::digest(&data.value);
                v1beta2::mark_true(
                    &mut conds,
                    BOOTSTRAPPED,
                    "BootstrapSucceeded",
                    &format!("ran {} bootstrap data ({hash})", data.format),
                    generation,
                );
                self.patch_status(json!({
                    "bootstrapped": true,
                    "bootstrapDataHash": hash,
                    "addresses": [{"type": "InternalIP", "address": self.address}],
                    "appliedClaimUID": uid,
                    "observedGeneration": generation,
                    "conditions": conds,
                }))
                .await?;
                tracing::info!(host = %self.name, claim = %uid, "bootstrapped");
            }
            _ => {
                // Nothing to run (unclaimed, or already bootstrapped for this claim): only
                // acknowledge the spec.
                if status.observed_generation < generation {
                    if desired.is_none() {
                        v1beta2::mark_false(
                            &mut conds,
                            BOOTSTRAPPED,
                            "NotClaimed",
                            "the host is free",
                            generation,
                        );
                    }
                    self.patch_status(
                        json!({"observedGeneration": generation, "conditions": conds}),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn clean_up(&self, host: &ByoHost) -> Result<(), AgentError> {
        let dir = self.work_dir.join(&self.name);
        for file in [BOOTSTRAP_FILE, FORMAT_FILE] {
            let path = dir.join(file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(AgentError::Io { path, source }),
            }
        }
        let mut conds = host.status.as_ref().and_then(|s| s.conditions.clone());
        let generation = host.metadata.generation;
        v1beta2::mark_false(
            &mut conds,
            BOOTSTRAPPED,
            "Cleaned",
            "the previous claim's state was removed",
            generation,
        );
        // A claim still there belongs to someone new: its data runs on the next step.
        self.patch_status(json!({
            "bootstrapped": false,
            "bootstrapDataHash": null,
            "addresses": null,
            "appliedClaimUID": null,
            "observedGeneration": generation,
            "conditions": conds,
        }))
        .await?;
        tracing::info!(host = %self.name, "cleaned up after release");
        Ok(())
    }

    fn write_data(&self, data: &BootstrapData) -> Result<(), AgentError> {
        let dir = self.work_dir.join(&self.name);
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(BOOTSTRAP_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = |path: &PathBuf, bytes: &[u8]| {
            use std::io::Write;
            options
                .open(path)
                .and_then(|mut f| f.write_all(bytes))
                .map_err(|source| AgentError::Io {
                    path: path.clone(),
                    source,
                })
        };
        write(&path, &data.value)?;
        write(&dir.join(FORMAT_FILE), data.format.as_str().as_bytes())
    }

    async fn patch_status(&self, status: serde_json::Value) -> Result<ByoHost, AgentError> {
        Ok(self
            .api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?)
    }
}
