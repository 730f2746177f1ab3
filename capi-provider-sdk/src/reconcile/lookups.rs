//! Reading objects CAPI references by group and kind only (v1beta2 `ContractVersionedObjectReference`):
//! the version comes from the CRD's contract labels, as core resolves it (capi-contract.md 5.4).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};

use super::ReconcileError;

/// Resolved `(group, kind)` → API resource, so each kind's CRD is read once.
#[derive(Debug, Default)]
pub(crate) struct VersionCache {
    resolved: Mutex<HashMap<(String, String), ApiResource>>,
}

impl VersionCache {
    fn get(&self, group: &str, kind: &str) -> Option<ApiResource> {
        let map = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(group.to_owned(), kind.to_owned())).cloned()
    }

    fn put(&self, group: &str, kind: &str, ar: ApiResource) {
        let mut map = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((group.to_owned(), kind.to_owned()), ar);
    }
}

/// Reads the object `group/kind name` in `namespace` in the version its CRD's contract label
/// names; `None` when it does not exist.
pub(crate) async fn get_referenced(
    client: &Client,
    cache: &VersionCache,
    group: &str,
    kind: &str,
    name: &str,
    namespace: &str,
) -> Result<Option<DynamicObject>, ReconcileError> {
    let ar = match cache.get(group, kind) {
        Some(ar) => ar,
        None => {
            let ar = resolve(client, group, kind).await?;
            cache.put(group, kind, ar.clone());
            ar
        }
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    Ok(api.get_opt(name).await?)
}

async fn resolve(client: &Client, group: &str, kind: &str) -> Result<ApiResource, ReconcileError> {
    let unresolvable = |reason: String| ReconcileError::Unresolvable {
        group: group.into(),
        kind: kind.into(),
        reason,
    };
    let crd_name = capi_core::naming::crd_name(group, kind);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get_opt(&crd_name)
        .await?
        .ok_or_else(|| unresolvable(format!("CRD {crd_name} not found")))?;
    let labels = crd.metadata.labels.clone().unwrap_or_default();
    let (_, version) = capi_core::contract::select_version(&labels).ok_or_else(|| {
        unresolvable(format!(
            "CRD {crd_name} has no cluster.x-k8s.io/v1beta2 or v1beta1 contract label"
        ))
    })?;
    Ok(ApiResource {
        group: group.to_owned(),
        version: version.clone(),
        api_version: format!("{group}/{version}"),
        kind: kind.to_owned(),
        plural: crd.spec.names.plural.clone(),
    })
}
