//! Labels and annotations of the contract (capi-contract.md 5.1, 5.2), and the helpers that
//! read them as CAPI does.
//!
//! ```
//! use std::collections::BTreeMap;
//! use capi_core::labels::{self, CLUSTER_NAME, PAUSED};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! let meta = ObjectMeta {
//!     labels: Some(BTreeMap::from([(CLUSTER_NAME.to_string(), "c1".to_string())])),
//!     annotations: Some(BTreeMap::from([(PAUSED.to_string(), String::new())])),
//!     ..ObjectMeta::default()
//! };
//! assert_eq!(labels::cluster_name(&meta), Some("c1"));
//! assert!(labels::has_paused_annotation(&meta));
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

// Labels.

/// The Cluster an object belongs to: the canonical way to find it (`util.GetClusterFromMetadata`).
pub const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
/// Present (value `""`) on control-plane Machines and their InfraMachines.
pub const CONTROL_PLANE: &str = "cluster.x-k8s.io/control-plane";
/// The control plane's name (hashed when longer than 63 characters).
pub const CONTROL_PLANE_NAME: &str = "cluster.x-k8s.io/control-plane-name";
/// The MachineSet that created a Machine.
pub const SET_NAME: &str = "cluster.x-k8s.io/set-name";
/// The MachineDeployment a Machine belongs to.
pub const DEPLOYMENT_NAME: &str = "cluster.x-k8s.io/deployment-name";
/// The MachinePool a Machine belongs to.
pub const POOL_NAME: &str = "cluster.x-k8s.io/pool-name";
/// The template hash of a MachineDeployment's Machines.
pub const MACHINE_TEMPLATE_HASH: &str = "machine-template-hash";
/// The provider a component belongs to, e.g. `infrastructure-docker`.
pub const PROVIDER: &str = "cluster.x-k8s.io/provider";
/// Marks components clusterctl installed.
pub const CLUSTERCTL: &str = "clusterctl.cluster.x-k8s.io";
/// Include an object in `clusterctl move`.
pub const CLUSTERCTL_MOVE: &str = "clusterctl.cluster.x-k8s.io/move";
/// Include an object and its owned hierarchy in `clusterctl move`.
pub const CLUSTERCTL_MOVE_HIERARCHY: &str = "clusterctl.cluster.x-k8s.io/move-hierarchy";
/// With `--watch-filter=<value>`, controllers reconcile only objects carrying this label value.
pub const WATCH_FILTER: &str = "cluster.x-k8s.io/watch-filter";
/// On a provider ClusterRole: aggregate it into the CAPI manager role.
pub const AGGREGATE_TO_MANAGER: &str = "cluster.x-k8s.io/aggregate-to-manager";
/// On objects managed by a ClusterClass topology.
pub const TOPOLOGY_OWNED: &str = "topology.cluster.x-k8s.io/owned";
/// On workload Nodes of interruptible (spot) instances.
pub const INTERRUPTIBLE: &str = "cluster.x-k8s.io/interruptible";

// Annotations.

/// Presence pauses reconciliation of the object.
pub const PAUSED: &str = "cluster.x-k8s.io/paused";
/// The InfraCluster is managed by something else: providers must leave it alone.
pub const MANAGED_BY: &str = "cluster.x-k8s.io/managed-by";
/// The template an object was cloned from.
pub const CLONED_FROM_NAME: &str = "cluster.x-k8s.io/cloned-from-name";
/// The group and kind of the template an object was cloned from (`Kind.group`).
pub const CLONED_FROM_GROUP_KIND: &str = "cluster.x-k8s.io/cloned-from-groupkind";
/// Present during topology server-side-apply dry runs.
pub const TOPOLOGY_DRY_RUN: &str = "topology.cluster.x-k8s.io/dry-run";
/// While present on any object, `clusterctl move` waits.
pub const BLOCK_MOVE: &str = "clusterctl.cluster.x-k8s.io/block-move";
/// Set on source objects `clusterctl move` is about to delete.
pub const DELETE_FOR_MOVE: &str = "clusterctl.cluster.x-k8s.io/delete-for-move";
/// On a CRD: skip clusterctl's CRD-name preflight check.
pub const SKIP_CRD_NAME_PREFLIGHT_CHECK: &str =
    "clusterctl.cluster.x-k8s.io/skip-crd-name-preflight-check";
/// Prefer this Machine on scale-down.
pub const DELETE_MACHINE: &str = "cluster.x-k8s.io/delete-machine";
/// Prefix of Machine pre-drain deletion hooks.
pub const PRE_DRAIN_DELETE_HOOK_PREFIX: &str = "pre-drain.delete.hook.machine.cluster.x-k8s.io";
/// Prefix of Machine pre-terminate deletion hooks.
pub const PRE_TERMINATE_DELETE_HOOK_PREFIX: &str =
    "pre-terminate.delete.hook.machine.cluster.x-k8s.io";
/// Skip draining the Machine's Node.
pub const EXCLUDE_NODE_DRAINING: &str = "machine.cluster.x-k8s.io/exclude-node-draining";
/// Skip waiting for the Node's volumes to detach.
pub const EXCLUDE_WAIT_FOR_NODE_VOLUME_DETACH: &str =
    "machine.cluster.x-k8s.io/exclude-wait-for-node-volume-detach";
/// A MachinePool whose replicas an external system manages.
pub const REPLICAS_MANAGED_BY: &str = "cluster.x-k8s.io/replicas-managed-by";
/// Where the v1beta1 ⇄ v1beta2 conversion keeps what the older version cannot hold.
pub const CONVERSION_DATA: &str = "cluster.x-k8s.io/conversion-data";

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// The `cluster.x-k8s.io/cluster-name` label.
pub fn cluster_name(meta: &ObjectMeta) -> Option<&str> {
    label(meta, CLUSTER_NAME).filter(|n| !n.is_empty())
}

/// Whether the object has the paused annotation (any value: presence counts).
pub fn has_paused_annotation(meta: &ObjectMeta) -> bool {
    has_annotation(meta, PAUSED)
}

/// Whether an InfraCluster is externally managed (`cluster.x-k8s.io/managed-by`, an annotation
/// in the code even though the contract page calls it a label).
pub fn is_externally_managed(meta: &ObjectMeta) -> bool {
    has_annotation(meta, MANAGED_BY)
}

/// Whether a Machine (or its InfraMachine) is part of the control plane.
pub fn is_control_plane_machine(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.contains_key(CONTROL_PLANE))
}

/// Whether an object passes a `--watch-filter` value: with no filter everything passes; with
/// one only objects labelled `cluster.x-k8s.io/watch-filter=<value>`.
pub fn matches_watch_filter(meta: &ObjectMeta, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| label(meta, WATCH_FILTER) == Some(f))
}

/// Anything that can be paused through its Cluster: implemented by both Cluster versions.
pub trait ClusterPause {
    /// `spec.paused` of the Cluster.
    fn spec_paused(&self) -> bool;
}

impl ClusterPause for crate::v1beta2::Cluster {
    fn spec_paused(&self) -> bool {
        self.spec.paused == Some(true)
    }
}

impl ClusterPause for crate::v1beta1::Cluster {
    fn spec_paused(&self) -> bool {
        self.spec.paused == Some(true)
    }
}

/// Whether `obj` must not be reconciled: its Cluster's `spec.paused`, or the paused annotation on
/// the object itself (`annotations.IsPaused`).
///
/// ```
/// use capi_core::labels::is_paused;
/// use capi_core::v1beta2::{Cluster, ClusterSpec};
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// let mut cluster = Cluster::new("c1", ClusterSpec::default());
/// assert!(!is_paused(&cluster, &ObjectMeta::default()));
/// cluster.spec.paused = Some(true);
/// assert!(is_paused(&cluster, &ObjectMeta::default()));
/// ```
pub fn is_paused(cluster: &impl ClusterPause, obj: &ObjectMeta) -> bool {
    cluster.spec_paused() || has_paused_annotation(obj)
}

/// The causes of a pause as upstream words them in the Paused condition's message.
pub fn pause_causes(cluster: &impl ClusterPause, obj: &ObjectMeta, kind: &str) -> Vec<String> {
    let mut causes = Vec::new();
    if cluster.spec_paused() {
        causes.push("Cluster spec.paused is set to true".to_owned());
    }
    if has_paused_annotation(obj) {
        causes.push(format!("{kind} has the {PAUSED} annotation"));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let m = |p: &[(&str, &str)]| {
            Some(
                p.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        ObjectMeta {
            labels: m(labels),
            annotations: m(annotations),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn control_plane_label_presence_counts() {
        assert!(is_control_plane_machine(&meta(&[(CONTROL_PLANE, "")], &[])));
        assert!(!is_control_plane_machine(&meta(
            &[(CLUSTER_NAME, "c")],
            &[]
        )));
    }

    #[test]
    fn managed_by_is_an_annotation() {
        assert!(is_externally_managed(&meta(&[], &[(MANAGED_BY, "")])));
        assert!(!is_externally_managed(&meta(&[(MANAGED_BY, "x")], &[])));
    }

    #[test]
    fn watch_filter() {
        let m = meta(&[(WATCH_FILTER, "a")], &[]);
        assert!(matches_watch_filter(&m, None));
        assert!(matches_watch_filter(&m, Some("a")));
        assert!(!matches_watch_filter(&m, Some("b")));
        assert!(!matches_watch_filter(&ObjectMeta::default(), Some("a")));
    }

    #[test]
    fn pause_causes_are_worded_as_upstream() {
        let mut c = crate::v1beta2::Cluster::new("c", Default::default());
        c.spec.paused = Some(true);
        let causes = pause_causes(&c, &meta(&[], &[(PAUSED, "")]), "DevMachine");
        assert_eq!(
            causes,
            [
                "Cluster spec.paused is set to true",
                "DevMachine has the cluster.x-k8s.io/paused annotation"
            ]
        );
    }
}
