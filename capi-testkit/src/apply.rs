//! `kubectl apply -f` for code: server-side apply of every object in a multi-document YAML
//! stream, each kind found through discovery.
//!
//! ```no_run
//! # async fn f(client: kube::Client) -> Result<(), capi_testkit::apply::ApplyError> {
//! let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";
//! let applied = capi_testkit::apply::apply_yaml(&client, yaml, "default", "my-tool").await?;
//! assert_eq!(applied[0].kind, "ConfigMap");
//! # Ok(()) }
//! ```

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};
use serde_json::Value;

/// Why a manifest could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stream is not YAML.
    #[error("not YAML: {0}")]
    Parse(String),
    /// A document lacks apiVersion, kind or metadata.name.
    #[error("document {index}: {what}")]
    Shape {
        /// The document's position, from 0.
        index: usize,
        /// What is missing.
        what: String,
    },
    /// The kind is not served.
    #[error("{kind}: {source}")]
    Discovery {
        /// `apiVersion/kind`.
        kind: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The server refused the object.
    #[error("applying {kind} {name}: {source}")]
    Apply {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

/// An object that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its kind.
    pub kind: String,
    /// Its namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// Applies every document of `yaml` (empty documents are skipped) with `field_manager`,
/// forcing ownership as `kubectl apply --server-side --force-conflicts` does. Namespaced
/// objects without a namespace go to `namespace`.
pub async fn apply_yaml(
    client: &Client,
    yaml: &str,
    namespace: &str,
    field_manager: &str,
) -> Result<Vec<Applied>, ApplyError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| ApplyError::Parse(e.to_string()))?;
    let mut applied = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let shape = |what: &str| ApplyError::Shape {
            index,
            what: what.to_owned(),
        };
        let api_version = doc["apiVersion"]
            .as_str()
            .ok_or_else(|| shape("no apiVersion"))?;
        let kind = doc["kind"].as_str().ok_or_else(|| shape("no kind"))?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|source| ApplyError::Discovery {
                kind: format!("{api_version}/{kind}"),
                source,
            })?;
        let obj: DynamicObject = serde_json::from_value(doc.clone())
            .map_err(|e| shape(&format!("not an object: {e}")))?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| shape("no metadata.name"))?;
        let (api, ns) = match caps.scope {
            Scope::Namespaced => {
                let ns = obj.namespace().unwrap_or_else(|| namespace.to_owned());
                (
                    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource),
                    Some(ns),
                )
            }
            Scope::Cluster => (Api::all_with(client.clone(), &resource), None),
        };
        api.patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&doc),
        )
        .await
        .map_err(|source| ApplyError::Apply {
            kind: kind.to_owned(),
            name: name.clone(),
            source,
        })?;
        applied.push(Applied {
            kind: kind.to_owned(),
            namespace: ns,
            name,
        });
    }
    Ok(applied)
}
