//! Finding provider objects the way CAPI core does: CRD name from group and kind, API version
//! and contract from the CRD's contract labels (capi-contract.md 5.4), cached per kind.

use std::collections::HashMap;
use std::sync::Mutex;

use capi_core::contract::{ContractVersion, select_version};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};

use super::SimError;

/// A provider kind as core talks to it.
#[derive(Debug, Clone)]
pub struct ProviderKind {
    /// Group, version (from the contract label), kind and plural.
    pub resource: ApiResource,
    /// The contract the CRD declares for that version.
    pub contract: ContractVersion,
}

/// Resolved provider kinds, by `(group, kind)`.
#[derive(Debug, Default)]
pub struct KindResolver {
    cache: Mutex<HashMap<(String, String), ProviderKind>>,
}

impl KindResolver {
    /// Resolves `group`/`kind`; the CRD is read once per kind.
    pub async fn resolve(
        &self,
        client: &Client,
        group: &str,
        kind: &str,
    ) -> Result<ProviderKind, SimError> {
        let key = (group.to_owned(), kind.to_owned());
        if let Some(k) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(k.clone());
        }
        let crd_name = capi_core::naming::crd_name(group, kind);
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = crds
            .get_opt(&crd_name)
            .await?
            .ok_or_else(|| SimError::Unresolvable {
                what: format!("{group}/{kind}"),
                reason: format!("CRD {crd_name} not found"),
            })?;
        let labels = crd.metadata.labels.clone().unwrap_or_default();
        let (contract, version) =
            select_version(&labels).ok_or_else(|| SimError::Unresolvable {
                what: format!("{group}/{kind}"),
                reason: format!(
                    "CRD {crd_name} has no cluster.x-k8s.io/v1beta2 or v1beta1 contract label"
                ),
            })?;
        let resolved = ProviderKind {
            resource: ApiResource {
                group: group.to_owned(),
                version: version.clone(),
                api_version: format!("{group}/{version}"),
                kind: kind.to_owned(),
                plural: crd.spec.names.plural.clone(),
            },
            contract,
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Reads a referenced provider object; `None` when it does not exist.
    pub async fn get(
        &self,
        client: &Client,
        group: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<(DynamicObject, ProviderKind)>, SimError> {
        let pk = self.resolve(client, group, kind).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &pk.resource);
        Ok(api.get_opt(name).await?.map(|o| (o, pk)))
    }
}
