//! What the SDK's informer caches keep of each object, and nothing more.
//!
//! A controller keeps every object it watches in memory for as long as it runs, so what a cache
//! holds per object is most of a provider's memory per managed machine. Three things are left
//! out before an object enters a store:
//!
//! - `metadata.managedFields`, on every cache (the InfraMachine/InfraCluster's own one too):
//!   nothing in a controller reads it, and it is often as large as the rest of the object.
//! - the `kubectl.kubernetes.io/last-applied-configuration` annotation, on every cache: a
//!   second copy of the object as someone last `kubectl apply`-ed it. Our writes are merge
//!   patches of what a reconcile changed, so an annotation missing on both sides of the diff is
//!   never touched on the server.
//! - the Machine's `status`: [`CachedMachine`] is a Machine without it. The status is CAPI
//!   core's view of the node (node info, addresses, conditions, deletion timestamps): no
//!   contract step reads it, and it is most of a running Machine. Decoding the watch stream
//!   straight into the smaller type also means a full Machine is never built, not even during
//!   the initial list. Machines grow with the managed objects; Clusters do not (one per
//!   cluster), so the Cluster cache keeps typed [`Cluster`]s, only stripped as above.

use std::borrow::Cow;

use capi_core::v1beta2::{Cluster, Machine, MachineSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;

/// The annotation `kubectl apply` stores the whole applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no reconcile reads from an object's metadata before it is cached.
pub(crate) fn strip_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A Machine as the SDK caches it: its metadata and spec, no status (see the module docs).
///
/// Watches the same API (`cluster.x-k8s.io/v1beta2` machines) as [`Machine`]; the status in the
/// server's answers is skipped while decoding.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CachedMachine {
    pub metadata: ObjectMeta,
    pub spec: MachineSpec,
}

impl CachedMachine {
    /// The Machine an author's context gets: metadata and spec as cached, no status.
    pub(crate) fn to_machine(&self) -> Machine {
        Machine {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: None,
        }
    }
}

impl Resource for CachedMachine {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Machine::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        Machine::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        Machine::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        Machine::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Strips a Cluster before it is cached: metadata only (see the module docs).
pub(crate) fn strip_cluster(cluster: &mut Cluster) {
    strip_metadata(&mut cluster.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cached_machine_keeps_metadata_and_spec_and_skips_status() {
        let m: CachedMachine = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "b"},
                "annotations": {LAST_APPLIED: "{}", "keep": "me"},
                "managedFields": [{"manager": "x", "operation": "Update"}]},
            "spec": {"clusterName": "c", "bootstrap": {"dataSecretName": "s"},
                "infrastructureRef": {"apiGroup": "g", "kind": "K", "name": "m"},
                "version": "v1.31.0", "failureDomain": "fd"},
            "status": {"phase": "Running", "nodeInfo": {"architecture": "amd64"}}
        }))
        .unwrap();
        let mut m = m;
        strip_metadata(&mut m.metadata);
        assert!(m.metadata.managed_fields.is_none());
        let annotations = m.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["keep"], "me");
        let machine = m.to_machine();
        assert_eq!(machine.metadata.name.as_deref(), Some("m"));
        assert_eq!(machine.spec.cluster_name, "c");
        assert_eq!(machine.spec.version.as_deref(), Some("v1.31.0"));
        assert_eq!(machine.spec.infrastructure_ref.kind, "K");
        assert!(machine.status.is_none());
        assert_eq!(CachedMachine::plural(&()), Machine::plural(&()));
        assert_eq!(CachedMachine::api_version(&()), Machine::api_version(&()));
    }

    #[test]
    fn stripping_drops_an_annotation_map_left_empty() {
        let mut meta = ObjectMeta {
            annotations: Some([(LAST_APPLIED.to_owned(), "{}".to_owned())].into()),
            ..ObjectMeta::default()
        };
        strip_metadata(&mut meta);
        assert!(meta.annotations.is_none());
    }
}
