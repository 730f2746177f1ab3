//! The infrastructure-provider contract: what an InfraCluster, an InfraMachine and their
//! templates carry, in both contract versions, and how CAPI reads it.
//!
//! Two halves:
//! - [`fields`]: structs a provider author embeds (`#[serde(flatten)]`) in their own CRD's spec
//!   and status, so the contract's fields have exactly upstream's names, shapes and validation;
//!   the v1beta1-contract shapes live in [`fields::v1beta1`].
//! - [`view`]: reading those fields from any provider object as JSON, the way CAPI core reads
//!   them, whichever contract version the provider's CRD declares. This is what a simulator or
//!   a conformance suite uses on providers written in any language.
//!
//! Which contract a CRD follows is declared by its labels (see [`crate::crd::ContractVersionLabels`]).

pub mod fields;
pub mod view;

pub use fields::{
    InfraClusterSpec, InfraClusterStatus, InfraMachineSpec, InfraMachineStatus, Initialization,
    TemplateResource, TemplateSpec,
};
pub use view::{ContractError, InfraClusterView, InfraMachineView, ReadySummary, TerminalFailure};

/// A version of the infrastructure-provider contract.
///
/// ```
/// use capi_core::contract::ContractVersion;
/// assert_eq!(ContractVersion::V1Beta2.label_key(), "cluster.x-k8s.io/v1beta2");
/// assert_eq!("v1beta1".parse::<ContractVersion>().unwrap(), ContractVersion::V1Beta1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContractVersion {
    /// CAPI ≤ 1.10: `status.ready`, map-shaped failure domains, terminal failure fields.
    V1Beta1,
    /// CAPI ≥ 1.11: `status.initialization.provisioned`, list-shaped failure domains.
    V1Beta2,
}

impl ContractVersion {
    /// The contracts CAPI core v1beta2 accepts, newest first (the order it tries CRD labels in).
    pub const NEWEST_FIRST: [ContractVersion; 2] =
        [ContractVersion::V1Beta2, ContractVersion::V1Beta1];

    /// `v1beta1` or `v1beta2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1Beta1 => "v1beta1",
            Self::V1Beta2 => "v1beta2",
        }
    }

    /// The CRD label declaring which of a provider's API versions satisfy this contract.
    pub fn label_key(self) -> &'static str {
        match self {
            Self::V1Beta1 => "cluster.x-k8s.io/v1beta1",
            Self::V1Beta2 => "cluster.x-k8s.io/v1beta2",
        }
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API version CAPI core uses for a provider CRD, and the contract it reads it under, from
/// the CRD's labels: the newest contract whose label is present and non-empty wins, and within
/// its `_`-joined list the highest Kubernetes-ordered version (GA > beta > alpha).
///
/// ```
/// use std::collections::BTreeMap;
/// use capi_core::contract::{select_version, ContractVersion};
/// let labels = BTreeMap::from([
///     ("cluster.x-k8s.io/v1beta1".to_string(), "v1alpha4_v1beta1".to_string()),
///     ("cluster.x-k8s.io/v1beta2".to_string(), "v1beta2".to_string()),
/// ]);
/// assert_eq!(select_version(&labels), Some((ContractVersion::V1Beta2, "v1beta2".to_string())));
/// ```
pub fn select_version(
    crd_labels: &std::collections::BTreeMap<String, String>,
) -> Option<(ContractVersion, String)> {
    ContractVersion::NEWEST_FIRST.iter().find_map(|contract| {
        let version = labelled_versions(crd_labels, *contract)?
            .into_iter()
            .max_by_key(|v| version_priority(v))?;
        Some((*contract, version.to_owned()))
    })
}

/// The API versions a CRD's label for `contract` lists (`_`-joined), as core reads them: `None`
/// when the label is absent or empty.
///
/// ```
/// use std::collections::BTreeMap;
/// use capi_core::contract::{labelled_versions, ContractVersion};
/// let labels = BTreeMap::from([("cluster.x-k8s.io/v1beta1".to_string(), "v1alpha4_v1beta1".to_string())]);
/// assert_eq!(labelled_versions(&labels, ContractVersion::V1Beta1), Some(vec!["v1alpha4", "v1beta1"]));
/// assert_eq!(labelled_versions(&labels, ContractVersion::V1Beta2), None);
/// ```
pub fn labelled_versions(
    crd_labels: &std::collections::BTreeMap<String, String>,
    contract: ContractVersion,
) -> Option<Vec<&str>> {
    let value = crd_labels
        .get(contract.label_key())
        .filter(|v| !v.is_empty())?;
    Some(value.split('_').filter(|v| !v.is_empty()).collect())
}

/// Kubernetes version priority: GA > beta > alpha; within each, higher numbers first.
pub fn version_priority(v: &str) -> (u32, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let rest = &rest[digits.len()..];
    if let Some(n) = rest.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else if let Some(n) = rest.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if rest.is_empty() {
        (3, major, 0)
    } else {
        (0, major, 0)
    }
}

/// A contract version string that is neither `v1beta1` nor `v1beta2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown contract version {0:?} (expected v1beta1 or v1beta2)")]
pub struct UnknownContractVersion(pub String);

impl std::str::FromStr for ContractVersion {
    type Err = UnknownContractVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1beta1" => Ok(Self::V1Beta1),
            "v1beta2" => Ok(Self::V1Beta2),
            other => Err(UnknownContractVersion(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn newest_contract_then_highest_version() {
        let l = labels(&[("cluster.x-k8s.io/v1beta1", "v1beta1_v1beta2")]);
        assert_eq!(
            select_version(&l),
            Some((ContractVersion::V1Beta1, "v1beta2".into()))
        );
        let l = labels(&[
            ("cluster.x-k8s.io/v1beta2", ""),
            ("cluster.x-k8s.io/v1beta1", "v1alpha3"),
        ]);
        assert_eq!(
            select_version(&l),
            Some((ContractVersion::V1Beta1, "v1alpha3".into()))
        );
        assert_eq!(select_version(&labels(&[("other", "v1")])), None);
        let l = labels(&[("cluster.x-k8s.io/v1beta2", "v1alpha3_v1beta1_v1_v2alpha1")]);
        assert_eq!(
            select_version(&l),
            Some((ContractVersion::V1Beta2, "v1".into()))
        );
    }
}
