//! CustomResourceDefinitions: the core kinds' CRDs, and the tools provider authors use for their own.
//!
//! A CRD serving several versions is the merge of one single-version CRD per Rust type (what
//! `kube::CustomResourceExt::crd()` gives), with exactly one storage version. Provider CRDs carry
//! the contract-version labels (`cluster.x-k8s.io/v1beta2: v1alpha1_v1beta1`) through which CAPI
//! decides which of the provider's API versions to use (capi-contract.md section 1).
//!
//! ```
//! let crds = capi_core::crd::core_crds().unwrap();
//! let clusters = crds.iter().find(|c| c.metadata.name.as_deref() == Some("clusters.cluster.x-k8s.io")).unwrap();
//! let served: Vec<_> = clusters.spec.versions.iter().map(|v| (v.name.as_str(), v.storage)).collect();
//! assert_eq!(served, [("v1beta1", false), ("v1beta2", true)]);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::{v1beta1, v1beta2};

/// Why CRDs could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The single-version CRDs disagree (different group, kind or scope) or name no storage version.
    #[error("cannot merge CRDs: {0}")]
    Merge(#[from] kube::core::crd::MergeError),
    /// No CRD was given.
    #[error("no CRD versions given")]
    Empty,
    /// A provider CRD has no version that the contract labels name.
    #[error("CRD {crd} has no served version {version} that its contract label {label} names")]
    UnknownVersion {
        /// CRD name.
        crd: String,
        /// The label key.
        label: String,
        /// The missing version.
        version: String,
    },
    /// YAML serialization failed.
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
}

/// Merges single-version CRDs of one kind into one multi-version CRD whose storage version is
/// `storage`, versions sorted by Kubernetes version priority, lowest first (alpha, beta, GA).
pub fn merge_versions(
    crds: Vec<CustomResourceDefinition>,
    storage: &str,
) -> Result<CustomResourceDefinition, CrdError> {
    if crds.is_empty() {
        return Err(CrdError::Empty);
    }
    let mut merged = kube::core::crd::merge_crds(crds, storage)?;
    merged
        .spec
        .versions
        .sort_by_key(|v| crate::contract::version_priority(&v.name));
    complete(&mut merged);
    Ok(merged)
}

/// Makes a kube-derive CRD read like controller-gen's: adds `listKind` and the root
/// `apiVersion`, `kind` and `metadata` properties (so `kubectl explain` documents them), and
/// drops the `nullable: true` schemars puts on every `Option` field. Upstream has none, and the
/// API server treats it as meaningful: it keeps explicit nulls instead of pruning them.
fn complete(crd: &mut CustomResourceDefinition) {
    if crd.spec.names.list_kind.is_none() {
        crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    }
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        drop_nullable(root);
        let props = root.properties.get_or_insert_with(BTreeMap::new);
        let string = |description: &str| JSONSchemaProps {
            type_: Some("string".into()),
            description: Some(description.into()),
            ..JSONSchemaProps::default()
        };
        props
            .entry("apiVersion".into())
            .or_insert_with(|| string(API_VERSION_DOC));
        props
            .entry("kind".into())
            .or_insert_with(|| string(KIND_DOC));
        props
            .entry("metadata".into())
            .or_insert_with(|| JSONSchemaProps {
                type_: Some("object".into()),
                ..JSONSchemaProps::default()
            });
    }
}

fn drop_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        drop_nullable(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        drop_nullable(items);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(ap)) = schema.additional_properties.as_mut() {
        drop_nullable(ap);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of]
        .into_iter()
        .flatten()
    {
        list.iter_mut().for_each(drop_nullable);
    }
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object.\n\
Servers should convert recognized schemas to the latest internal value, and\n\
may reject unrecognized values.\n\
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";

const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents.\n\
Servers may infer this from the endpoint the client submits requests to.\n\
Cannot be updated.\n\
In CamelCase.\n\
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Core's CRDs declare `cluster.x-k8s.io/v1beta1: v1beta1` and `cluster.x-k8s.io/v1beta2: v1beta2`.
static CORE_CONTRACT: std::sync::LazyLock<ContractVersionLabels> = std::sync::LazyLock::new(|| {
    ContractVersionLabels::new()
        .with("v1beta1", ["v1beta1"])
        .with("v1beta2", ["v1beta2"])
});

/// The CRDs of every capi-core kind, serving v1beta1 (deprecated) and v1beta2 (storage), sorted
/// by name.
///
/// ```
/// let names: Vec<_> = capi_core::crd::core_crds()
///     .unwrap()
///     .into_iter()
///     .filter_map(|c| c.metadata.name)
///     .collect();
/// assert!(names.contains(&"machinedeployments.cluster.x-k8s.io".to_string()));
/// ```
pub fn core_crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let pairs = [
        [v1beta1::Cluster::crd(), v1beta2::Cluster::crd()],
        [v1beta1::Machine::crd(), v1beta2::Machine::crd()],
        [v1beta1::MachineSet::crd(), v1beta2::MachineSet::crd()],
        [
            v1beta1::MachineDeployment::crd(),
            v1beta2::MachineDeployment::crd(),
        ],
        [
            v1beta1::MachineHealthCheck::crd(),
            v1beta2::MachineHealthCheck::crd(),
        ],
        [v1beta1::MachinePool::crd(), v1beta2::MachinePool::crd()],
    ];
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let mut crd = merge_versions(pair.into(), "v1beta2")?;
        // Upstream's release manifests label core CRDs with their own contract versions and the
        // provider name (kustomize adds them; the CRD bases have none).
        let labels = crd.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("cluster.x-k8s.io/provider".into(), "cluster-api".into());
        labels.extend(CORE_CONTRACT.to_labels());
        out.push(crd);
    }
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(out)
}

/// Builds a provider's CRD for one kind from its single-version CRDs (one per Rust type, e.g.
/// `vec![v1alpha1::DockerMachine::crd(), v1beta1::DockerMachine::crd()]`), with `storage` as
/// storage version and the contract-version labels CAPI reads to pick the version it talks to.
///
/// Every version the labels name must be served by the CRD.
///
/// ```
/// use capi_core::crd::provider_crd;
/// use capi_core::crd::ContractVersionLabels;
/// # use kube::{CustomResource, CustomResourceExt};
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// #[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "infrastructure.example.com", version = "v1beta1", kind = "ExampleMachine", namespaced)]
/// pub struct ExampleMachineSpec {
///     #[serde(rename = "providerID", skip_serializing_if = "Option::is_none")]
///     pub provider_id: Option<String>,
/// }
///
/// let labels = ContractVersionLabels::new().with("v1beta2", ["v1beta1"]);
/// let crd = provider_crd(vec![ExampleMachine::crd()], "v1beta1", &labels).unwrap();
/// assert_eq!(crd.metadata.labels.unwrap()["cluster.x-k8s.io/v1beta2"], "v1beta1");
/// ```
pub fn provider_crd(
    versions: Vec<CustomResourceDefinition>,
    storage: &str,
    contract: &ContractVersionLabels,
) -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = merge_versions(versions, storage)?;
    let name = crd.metadata.name.clone().unwrap_or_default();
    for (label, value) in contract.to_labels() {
        for version in value.split('_') {
            if !crd
                .spec
                .versions
                .iter()
                .any(|v| v.name == version && v.served)
            {
                return Err(CrdError::UnknownVersion {
                    crd: name,
                    label,
                    version: version.to_owned(),
                });
            }
        }
        crd.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(label, value);
    }
    Ok(crd)
}

/// The contract-version labels of a provider CRD: for each CAPI contract version (`v1beta1`,
/// `v1beta2`), the provider API versions that satisfy it, written as
/// `cluster.x-k8s.io/<contract>: <v1>_<v2>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContractVersionLabels {
    contracts: BTreeMap<String, Vec<String>>,
}

impl ContractVersionLabels {
    /// No labels yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that `versions` of the provider's API satisfy CAPI contract `contract`.
    pub fn with<I, S>(mut self, contract: &str, versions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.contracts
            .entry(contract.to_owned())
            .or_default()
            .extend(versions.into_iter().map(Into::into));
        self
    }

    /// The labels as `(key, value)` pairs, e.g. `("cluster.x-k8s.io/v1beta2", "v1alpha1_v1beta1")`.
    pub fn to_labels(&self) -> Vec<(String, String)> {
        self.contracts
            .iter()
            .map(|(contract, versions)| {
                (format!("cluster.x-k8s.io/{contract}"), versions.join("_"))
            })
            .collect()
    }
}

/// Serializes a CRD as YAML, deterministically (field order fixed by the types, maps sorted).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    Ok(serde_saphyr::to_string(crd)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1", "v1beta2", "v1alpha1", "v1beta1", "v2alpha1"];
        v.sort_by_key(|v| crate::contract::version_priority(v));
        assert_eq!(v, ["v1alpha1", "v2alpha1", "v1beta1", "v1beta2", "v1"]);
    }

    #[test]
    fn core_crds_are_multi_version_with_status() {
        let crds = core_crds().unwrap();
        assert_eq!(crds.len(), 6);
        for crd in &crds {
            let versions: Vec<_> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(versions, ["v1beta1", "v1beta2"], "{:?}", crd.metadata.name);
            let v1 = &crd.spec.versions[0];
            let v2 = &crd.spec.versions[1];
            assert!(v1.served && v1.deprecated == Some(true) && !v1.storage);
            assert!(v2.served && v2.storage && v2.deprecated != Some(true));
            for v in [v1, v2] {
                assert!(
                    v.subresources
                        .as_ref()
                        .and_then(|s| s.status.as_ref())
                        .is_some()
                );
            }
        }
    }

    #[test]
    fn output_is_deterministic() {
        let a: Vec<String> = core_crds()
            .unwrap()
            .iter()
            .map(|c| to_yaml(c).unwrap())
            .collect();
        let b: Vec<String> = core_crds()
            .unwrap()
            .iter()
            .map(|c| to_yaml(c).unwrap())
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn provider_crd_rejects_labels_naming_unserved_versions() {
        let labels = ContractVersionLabels::new().with("v1beta2", ["v1beta3"]);
        let err = provider_crd(vec![v1beta2::Machine::crd()], "v1beta2", &labels).unwrap_err();
        assert!(matches!(err, CrdError::UnknownVersion { .. }), "{err}");
    }
}
