//! What a contract scenario works with: the provider's kinds, a namespace of its own, builders
//! for core objects, and waits that fail with a message naming what did not happen.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use capi_core::contract::{ContractVersion, InfraClusterView, InfraMachineView};
use capi_core::v1beta2::{
    Bootstrap, Cluster, ClusterSpec, ContractVersionedObjectReference, Machine, MachineSpec,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use super::static_checks::Role;

/// A provider kind the suite drives.
#[derive(Debug, Clone)]
pub struct ProviderKind {
    /// Group, served version, kind, plural.
    pub resource: ApiResource,
    /// The contract its CRD declares.
    pub contract: ContractVersion,
    /// The spec new objects get (from the cluster template, or `{}`).
    pub spec: Value,
}

/// The provider under test, as found through its installed CRDs.
#[derive(Debug, Clone)]
pub struct ProviderUnderTest {
    /// The InfraCluster kind.
    pub infra_cluster: ProviderKind,
    /// The InfraMachine kind.
    pub infra_machine: ProviderKind,
    /// The InfraMachineTemplate kind (spec = the template's `spec`).
    pub infra_machine_template: ProviderKind,
}

/// Why the provider under test could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Listing CRDs failed.
    #[error("listing CRDs: {0}")]
    Kube(#[from] kube::Error),
    /// A contract kind is missing.
    #[error("no CRD with a contract label for a {0} kind (installed CRDs: {1})")]
    Missing(&'static str, String),
}

impl ProviderUnderTest {
    /// Finds the provider's kinds among the installed CRDs carrying contract labels (outside
    /// `cluster.x-k8s.io`). `specs` overrides the spec by kind (e.g. from a cluster template).
    pub async fn discover(
        client: &Client,
        specs: &BTreeMap<String, Value>,
    ) -> Result<Self, DiscoveryError> {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let list = crds.list(&ListParams::default()).await?.items;
        let mut found: BTreeMap<&'static str, ProviderKind> = BTreeMap::new();
        let mut names = Vec::new();
        for crd in &list {
            if crd.spec.group == "cluster.x-k8s.io" {
                continue;
            }
            let labels = crd.metadata.labels.clone().unwrap_or_default();
            let Some((contract, version)) = capi_core::contract::select_version(&labels) else {
                continue;
            };
            let kind = crd.spec.names.kind.clone();
            names.push(kind.clone());
            let role = match Role::of_kind(&kind) {
                Role::InfraCluster => "InfraCluster",
                Role::InfraMachine => "InfraMachine",
                Role::InfraMachineTemplate => "InfraMachineTemplate",
                _ => continue,
            };
            // Without a cluster template: empty specs, and a template wrapping an empty spec.
            let default = if role == "InfraMachineTemplate" {
                json!({"template": {"spec": {}}})
            } else {
                json!({})
            };
            let spec = specs.get(&kind).cloned().unwrap_or(default);
            found.insert(
                role,
                ProviderKind {
                    resource: ApiResource {
                        group: crd.spec.group.clone(),
                        version: version.clone(),
                        api_version: format!("{}/{version}", crd.spec.group),
                        kind,
                        plural: crd.spec.names.plural.clone(),
                    },
                    contract,
                    spec,
                },
            );
        }
        let mut take = |role: &'static str| {
            found
                .remove(role)
                .ok_or_else(|| DiscoveryError::Missing(role, names.join(", ")))
        };
        Ok(Self {
            infra_cluster: take("InfraCluster")?,
            infra_machine: take("InfraMachine")?,
            infra_machine_template: take("InfraMachineTemplate")?,
        })
    }
}

/// A scenario failure: which clause broke and what was seen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioFailure(pub String);

impl From<kube::Error> for ScenarioFailure {
    fn from(e: kube::Error) -> Self {
        Self(format!("API request failed: {e}"))
    }
}

impl From<serde_json::Error> for ScenarioFailure {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("JSON: {e}"))
    }
}

pub(crate) type Outcome = Result<(), ScenarioFailure>;

/// Fails the scenario with a message.
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::conformance::harness::ScenarioFailure(format!($($t)*))) };
}
pub(crate) use fail;

/// One scenario's world: a namespace and the provider's kinds.
#[derive(Clone)]
pub struct Harness {
    /// Client to the API server the provider watches.
    pub client: Client,
    /// The namespace this scenario owns.
    pub namespace: String,
    /// The provider's kinds.
    pub provider: ProviderUnderTest,
    /// How long to wait for the provider to act.
    pub timeout: Duration,
    /// How long "nothing happens" is watched for.
    pub settle: Duration,
    /// Fault rules of the server, when it is capi-testkit's own (fault scenarios need them).
    pub faults: Option<std::sync::Arc<crate::server::faults::Faults>>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

const POLL: Duration = Duration::from_millis(50);

impl Harness {
    pub(crate) async fn create_namespace(&self) -> Outcome {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns).await?;
        Ok(())
    }

    pub(crate) async fn delete_namespace(&self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }

    /// The API of one provider kind in this namespace.
    pub fn provider_api(&self, kind: &ProviderKind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &kind.resource)
    }

    /// Core objects of this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a provider object from its kind's spec.
    pub async fn create_provider_object(
        &self,
        kind: &ProviderKind,
        name: &str,
        metadata: Value,
    ) -> Result<DynamicObject, ScenarioFailure> {
        let mut meta = json!({"name": name, "namespace": self.namespace});
        if let (Some(m), Some(extra)) = (meta.as_object_mut(), metadata.as_object()) {
            m.extend(extra.clone());
        }
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": kind.resource.api_version,
            "kind": kind.resource.kind,
            "metadata": meta,
            "spec": kind.spec,
        }))?;
        Ok(self
            .provider_api(kind)
            .create(&PostParams::default(), &obj)
            .await?)
    }

    /// A Cluster referencing an InfraCluster named like it (created too when `with_infra`).
    pub async fn create_cluster(
        &self,
        name: &str,
        with_infra: bool,
        infra_metadata: Value,
    ) -> Result<Cluster, ScenarioFailure> {
        let ic = &self.provider.infra_cluster;
        if with_infra {
            self.create_provider_object(ic, name, infra_metadata)
                .await?;
        }
        let cluster = Cluster {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: ClusterSpec {
                infrastructure_ref: Some(ContractVersionedObjectReference {
                    api_group: ic.resource.group.clone(),
                    kind: ic.resource.kind.clone(),
                    name: name.into(),
                }),
                ..ClusterSpec::default()
            },
            status: None,
        };
        Ok(self
            .api::<Cluster>()
            .create(&PostParams::default(), &cluster)
            .await?)
    }

    /// A Machine (control plane or worker) with its InfraMachine, as a user or KCP creates them.
    pub async fn create_machine(
        &self,
        cluster: &str,
        name: &str,
        control_plane: bool,
        data_secret: Option<&str>,
    ) -> Result<Machine, ScenarioFailure> {
        let im = &self.provider.infra_machine;
        let mut labels = BTreeMap::from([(
            "cluster.x-k8s.io/cluster-name".to_owned(),
            cluster.to_owned(),
        )]);
        if control_plane {
            labels.insert("cluster.x-k8s.io/control-plane".into(), String::new());
        }
        self.create_provider_object(im, name, json!({"labels": labels}))
            .await?;
        let machine = Machine {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: MachineSpec {
                cluster_name: cluster.into(),
                bootstrap: Bootstrap {
                    data_secret_name: data_secret.map(str::to_owned),
                    ..Bootstrap::default()
                },
                infrastructure_ref: ContractVersionedObjectReference {
                    api_group: im.resource.group.clone(),
                    kind: im.resource.kind.clone(),
                    name: name.into(),
                },
                version: Some("v1.34.0".into()),
                ..MachineSpec::default()
            },
            status: None,
        };
        Ok(self
            .api::<Machine>()
            .create(&PostParams::default(), &machine)
            .await?)
    }

    /// Writes a bootstrap data secret as a bootstrap provider does.
    pub async fn create_bootstrap_secret(&self, name: &str, cluster: &str) -> Outcome {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "cluster.x-k8s.io/cluster-name".to_owned(),
                    cluster.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("cluster.x-k8s.io/secret".into()),
            data: Some(BTreeMap::from([
                ("value".to_owned(), ByteString(b"#cloud-config\n".to_vec())),
                ("format".to_owned(), ByteString(b"cloud-config".to_vec())),
            ])),
            ..Secret::default()
        };
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Merge-patches a status (as core's controllers do).
    pub async fn patch_status<K>(&self, name: &str, status: Value) -> Outcome
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        Ok(())
    }

    /// Merge-patches an object.
    pub async fn patch<K>(&self, name: &str, patch: Value) -> Outcome
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        Ok(())
    }

    /// Reads a provider object as JSON (`None` when gone).
    pub async fn provider_json(
        &self,
        kind: &ProviderKind,
        name: &str,
    ) -> Result<Option<Value>, ScenarioFailure> {
        match self.provider_api(kind).get_opt(name).await? {
            Some(o) => Ok(Some(serde_json::to_value(o)?)),
            None => Ok(None),
        }
    }

    /// Waits until `check` holds for the provider object, or fails with `what`.
    pub async fn wait_for(
        &self,
        kind: &ProviderKind,
        name: &str,
        what: &str,
        check: impl Fn(Option<&Value>) -> bool,
    ) -> Result<Option<Value>, ScenarioFailure> {
        let start = Instant::now();
        loop {
            let obj = self.provider_json(kind, name).await?;
            if check(obj.as_ref()) {
                return Ok(obj);
            }
            if start.elapsed() > self.timeout {
                fail!(
                    "{} {name}: {what} did not happen within {:?}",
                    kind.resource.kind,
                    self.timeout
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Watches the provider object for the settle window; fails as soon as `bad` holds.
    pub async fn never(
        &self,
        kind: &ProviderKind,
        name: &str,
        what: &str,
        bad: impl Fn(&Value) -> bool,
    ) -> Outcome {
        let start = Instant::now();
        while start.elapsed() < self.settle {
            if let Some(obj) = self.provider_json(kind, name).await?
                && bad(&obj)
            {
                fail!("{} {name}: {what}", kind.resource.kind);
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// The object's resourceVersion stays the same for the settle window; a failure names the
    /// fields that changed, so the author sees which write to look for.
    pub async fn stays_unchanged(&self, kind: &ProviderKind, name: &str, clause: &str) -> Outcome {
        let Some(first) = self.provider_json(kind, name).await? else {
            return Ok(());
        };
        let start = Instant::now();
        while start.elapsed() < self.settle {
            if let Some(now) = self.provider_json(kind, name).await?
                && now["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
            {
                let mut changed = Vec::new();
                changed_paths(&first, &now, String::new(), &mut changed);
                changed.retain(|p| {
                    p != "metadata.resourceVersion" && !p.starts_with("metadata.managedFields")
                });
                // Each changed path with its values, so a failure says what flapped, not only where.
                let described: Vec<String> = changed
                    .iter()
                    .map(|p| {
                        format!(
                            "{p}: {} → {}",
                            abbreviated(at_path(&first, p)),
                            abbreviated(at_path(&now, p))
                        )
                    })
                    .collect();
                fail!(
                    "{} {name}: {clause} (changed: {})",
                    kind.resource.kind,
                    if described.is_empty() {
                        "nothing but the resourceVersion".to_owned()
                    } else {
                        described.join("; ")
                    }
                );
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}

/// The value at a dotted path from [`changed_paths`] (`null` where it is absent).
fn at_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

/// A value as compact JSON, cut to a length a report line can carry.
fn abbreviated(v: &Value) -> String {
    const MAX: usize = 240;
    let s = v.to_string();
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// The dotted paths at which `a` and `b` differ (objects compared key by key, anything else
/// whole).
fn changed_paths(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => changed_paths(va, vb, path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(at),
        _ => {}
    }
}

/// `status.initialization.provisioned` or `status.ready`, per the contract its CRD declares,
/// read as core reads it ([`capi_core::contract::view`]); a malformed field is not provisioned.
pub(crate) fn provisioned(kind: &ProviderKind, obj: &Value) -> bool {
    match Role::of_kind(&kind.resource.kind) {
        Role::InfraCluster => InfraClusterView::new(obj, kind.contract).provisioned(),
        _ => InfraMachineView::new(obj, kind.contract).provisioned(),
    }
    .unwrap_or(false)
}

pub(crate) fn provider_id(obj: &Value) -> Option<&str> {
    obj["spec"]["providerID"].as_str().filter(|s| !s.is_empty())
}

pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}
