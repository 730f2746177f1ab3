//! The Machine and Cluster an author's `delete` sees when CAPI's own objects are already gone
//! (a namespace being deleted takes everything at once): only what the infrastructure object
//! still knows, their names.

use capi_core::v1beta2::{Cluster, ClusterSpec, Machine, MachineSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn cluster_label(infra: &ObjectMeta) -> String {
    infra
        .labels
        .as_ref()
        .and_then(|l| l.get(capi_core::labels::CLUSTER_NAME))
        .cloned()
        .unwrap_or_default()
}

/// The owner Machine as the InfraMachine names it: name (from the owner reference), namespace
/// and cluster name.
pub(crate) fn machine(infra: &ObjectMeta) -> Machine {
    let name = capi_core::owner::owner_ref(infra, capi_core::owner::Owner::MACHINE)
        .map(|o| o.name.clone())
        .or_else(|| infra.name.clone());
    let cluster = cluster_label(infra);
    let mut machine = Machine::new(
        name.as_deref().unwrap_or_default(),
        MachineSpec {
            cluster_name: cluster.clone(),
            ..MachineSpec::default()
        },
    );
    machine.metadata.namespace = infra.namespace.clone();
    machine.metadata.labels = Some([(capi_core::labels::CLUSTER_NAME.to_owned(), cluster)].into());
    machine
}

/// The Cluster `name` (the infrastructure object's cluster-name label when empty), in the
/// infrastructure object's namespace.
pub(crate) fn cluster(name: &str, infra: &ObjectMeta) -> Cluster {
    let name = if name.is_empty() {
        cluster_label(infra)
    } else {
        name.to_owned()
    };
    let mut cluster = Cluster::new(&name, ClusterSpec::default());
    cluster.metadata.namespace = infra.namespace.clone();
    cluster
}
