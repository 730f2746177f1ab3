//! Owner lookup as CAPI does it: by API group and kind, in any version.
//!
//! ```
//! use capi_core::owner::{owner_ref, Owner};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
//!
//! let meta = ObjectMeta {
//!     owner_references: Some(vec![OwnerReference {
//!         api_version: "cluster.x-k8s.io/v1beta1".into(), kind: "Machine".into(),
//!         name: "m1".into(), uid: "u1".into(), controller: Some(true), ..Default::default()
//!     }]),
//!     ..ObjectMeta::default()
//! };
//! let owner = owner_ref(&meta, Owner::MACHINE).unwrap();
//! assert_eq!((owner.name.as_str(), owner.version()), ("m1", "v1beta1"));
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// A group and kind to look for among owner references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// API group.
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
}

impl Owner {
    /// A CAPI Cluster.
    pub const CLUSTER: Owner = Owner {
        group: crate::GROUP,
        kind: "Cluster",
    };
    /// A CAPI Machine.
    pub const MACHINE: Owner = Owner {
        group: crate::GROUP,
        kind: "Machine",
    };
    /// A CAPI MachineSet.
    pub const MACHINE_SET: Owner = Owner {
        group: crate::GROUP,
        kind: "MachineSet",
    };
    /// A CAPI MachinePool.
    pub const MACHINE_POOL: Owner = Owner {
        group: crate::GROUP,
        kind: "MachinePool",
    };
}

/// An owner reference that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
    /// The apiVersion written in the reference.
    pub api_version: String,
    /// Whether it is the controller reference.
    pub controller: bool,
}

impl OwnerRef {
    /// The version part of `api_version`.
    pub fn version(&self) -> &str {
        self.api_version.rsplit('/').next().unwrap_or_default()
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// The first owner reference with `owner`'s group and kind (any version), as
/// `util.GetOwnerMachine` / `GetOwnerCluster` find them.
pub fn owner_ref(meta: &ObjectMeta, owner: Owner) -> Option<OwnerRef> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| matches(o, owner))
        .map(|o| OwnerRef {
            name: o.name.clone(),
            uid: o.uid.clone(),
            api_version: o.api_version.clone(),
            controller: o.controller == Some(true),
        })
}

/// Whether an owner reference points at `owner`'s group and kind.
pub fn matches(reference: &OwnerReference, owner: Owner) -> bool {
    reference.kind == owner.kind && group_of(&reference.api_version) == owner.group
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(api_version: &str, kind: &str, name: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            ..Default::default()
        }
    }

    #[test]
    fn matches_group_and_kind_in_any_version() {
        let meta = ObjectMeta {
            owner_references: Some(vec![
                r("apps/v1", "Machine", "wrong-group"),
                r("cluster.x-k8s.io/v1beta2", "MachineSet", "ms"),
                r("cluster.x-k8s.io/v1alpha4", "Machine", "m"),
            ]),
            ..ObjectMeta::default()
        };
        assert_eq!(
            owner_ref(&meta, Owner::MACHINE).map(|o| o.name),
            Some("m".into())
        );
        assert_eq!(
            owner_ref(&meta, Owner::MACHINE_SET).map(|o| o.name),
            Some("ms".into())
        );
        assert_eq!(owner_ref(&meta, Owner::CLUSTER), None);
        assert_eq!(owner_ref(&ObjectMeta::default(), Owner::MACHINE), None);
    }
}
