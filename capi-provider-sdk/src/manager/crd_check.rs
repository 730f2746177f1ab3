//! The start-up check of the provider's CRDs: each kind the manager runs a controller for must
//! have a CRD that serves the Rust type's version and carries the contract label of the
//! contract its embedded status structs write.
//!
//! CAPI core picks the JSON paths it reads from an InfraMachine or InfraCluster by the CRD's
//! `cluster.x-k8s.io/v1beta2` / `cluster.x-k8s.io/v1beta1` label, the newest present first
//! (capi-contract.md 5.4). A mismatch fails silently and late: a v1beta2 label on a kind that
//! writes `status.ready` makes core wait for `status.initialization.provisioned` forever; no
//! label makes core fail to resolve the reference at all. So the manager refuses to start.

use capi_core::contract::{ContractVersion, labelled_versions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;

/// A provider kind's CRD as the check expects it, from the Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedCrd {
    /// `InfraMachine` or `InfraCluster`, for messages.
    pub role: &'static str,
    pub kind: String,
    pub group: String,
    pub version: String,
    pub plural: String,
    /// The contract the embedded status writes; `None` when the type cannot tell.
    pub contract: Option<ContractVersion>,
}

impl ExpectedCrd {
    pub(crate) fn of<K: kube::Resource<DynamicType = ()>>(
        role: &'static str,
        contract: Option<ContractVersion>,
    ) -> Self {
        Self {
            role,
            kind: K::kind(&()).into_owned(),
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            contract,
        }
    }

    /// `<plural>.<group>`, the CRD's name.
    pub(crate) fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// Why the manager refused to start: a provider kind's CRD does not match its Rust type.
///
/// Every message says what is wrong and what to change. The check runs when
/// [`Manager::run`](crate::Manager::run) or [`run_until`](crate::Manager::run_until) starts;
/// [`Manager::skip_crd_contract_check`](crate::Manager::skip_crd_contract_check) turns it off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrdContractError {
    /// The CRD does not exist.
    #[error(
        "CRD {crd} of the {role} kind {kind} does not exist: install the provider's CRDs \
         (labelled `{label}: {version}`) before starting the manager"
    )]
    NotFound {
        /// The CRD's name, `<plural>.<group>`.
        crd: String,
        /// `InfraMachine` or `InfraCluster`.
        role: &'static str,
        /// The kind.
        kind: String,
        /// The contract label the CRD needs.
        label: &'static str,
        /// The Rust type's API version.
        version: String,
    },
    /// The CRD could not be read (no permission, no connection).
    #[error(
        "cannot read CRD {crd} to check its contract label: {source}. The manager needs `get` on \
         it (the ClusterRole from Manager::cluster_role grants it); where it cannot have it, turn \
         the check off with Manager::skip_crd_contract_check"
    )]
    Unreadable {
        /// The CRD's name.
        crd: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The CRD does not have the Rust type's version, or does not serve it.
    #[error(
        "CRD {crd} does not serve version {version}, which the Rust type {kind} is (served: \
         {served}): install the CRD generated from this version of the provider"
    )]
    VersionNotServed {
        /// The CRD's name.
        crd: String,
        /// The kind.
        kind: String,
        /// The Rust type's API version.
        version: String,
        /// The versions the CRD serves, comma-separated (`none` when none).
        served: String,
    },
    /// The contract label of the type's contract does not name its version.
    #[error(
        "CRD {crd} is not labelled for the {contract} contract that {kind} (version {version}) \
         writes: {detail}. Add the label `{label}: {version}` to the CRD (versions in one label \
         are `_`-separated; capi_core::crd::provider_crd with \
         ContractVersionLabels::new().with(\"{contract}\", [\"{version}\"]) generates it)"
    )]
    MissingLabel {
        /// The CRD's name.
        crd: String,
        /// The kind.
        kind: String,
        /// The contract the Rust type writes.
        contract: ContractVersion,
        /// The label that must name the version.
        label: &'static str,
        /// The Rust type's API version.
        version: String,
        /// What the CRD has instead, and what core would do with it.
        detail: String,
    },
    /// A kind writing the v1beta1 contract whose CRD carries the v1beta2 label.
    #[error(
        "CRD {crd} carries the label `cluster.x-k8s.io/v1beta2: {value}`, but {kind} writes the \
         v1beta1 contract: CAPI core takes the v1beta2 label first and then waits for \
         status.initialization.provisioned, which this type never sets, ignoring status.ready. \
         Remove the label cluster.x-k8s.io/v1beta2 and keep `cluster.x-k8s.io/v1beta1: \
         {version}` (or embed the v1beta2-contract structs in the type)"
    )]
    UnexpectedV1Beta2Label {
        /// The CRD's name.
        crd: String,
        /// The kind.
        kind: String,
        /// The label's value.
        value: String,
        /// The Rust type's API version.
        version: String,
    },
}

/// Reads each expected CRD and checks it (see [`verify`]).
pub(crate) async fn check(
    client: &Client,
    expected: &[ExpectedCrd],
) -> Result<(), CrdContractError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for e in expected {
        let crd_name = e.crd_name();
        let crd = api
            .get_opt(&crd_name)
            .await
            .map_err(|source| CrdContractError::Unreadable {
                crd: crd_name.clone(),
                source,
            })?;
        let Some(crd) = crd else {
            return Err(CrdContractError::NotFound {
                crd: crd_name,
                role: e.role,
                kind: e.kind.clone(),
                label: e.contract.unwrap_or(ContractVersion::V1Beta2).label_key(),
                version: e.version.clone(),
            });
        };
        verify(e, &crd)?;
        tracing::debug!(crd = %crd_name, version = %e.version, "CRD contract label matches");
    }
    Ok(())
}

/// Checks one CRD against the Rust type: the version exists and is served; a v1beta2-contract
/// type's CRD has `cluster.x-k8s.io/v1beta2` naming the version; a v1beta1-contract type's CRD
/// has `cluster.x-k8s.io/v1beta1` naming it and no `cluster.x-k8s.io/v1beta2` label.
pub(crate) fn verify(
    e: &ExpectedCrd,
    crd: &CustomResourceDefinition,
) -> Result<(), CrdContractError> {
    let crd_name = e.crd_name();
    let served: Vec<&str> = crd
        .spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect();
    if !served.contains(&e.version.as_str()) {
        return Err(CrdContractError::VersionNotServed {
            crd: crd_name,
            kind: e.kind.clone(),
            version: e.version.clone(),
            served: if served.is_empty() {
                "none".into()
            } else {
                served.join(", ")
            },
        });
    }
    let no_labels = std::collections::BTreeMap::new();
    let labels = crd.metadata.labels.as_ref().unwrap_or(&no_labels);
    let v1beta2 = labelled_versions(labels, ContractVersion::V1Beta2);
    let v1beta1 = labelled_versions(labels, ContractVersion::V1Beta1);
    let version = e.version.as_str();
    let Some(contract) = e.contract else {
        // A hand-written resource impl: only check that core can find the version at all.
        tracing::warn!(crd = %crd_name, "the Rust type does not tell its contract: checking only that a contract label names its version");
        let named = [&v1beta2, &v1beta1]
            .into_iter()
            .flatten()
            .any(|l| l.contains(&version));
        if named {
            return Ok(());
        }
        return Err(CrdContractError::MissingLabel {
            crd: crd_name,
            kind: e.kind.clone(),
            contract: ContractVersion::V1Beta2,
            label: ContractVersion::V1Beta2.label_key(),
            version: e.version.clone(),
            detail: "no contract label names this version".into(),
        });
    };
    let missing = |detail: String| CrdContractError::MissingLabel {
        crd: crd_name.clone(),
        kind: e.kind.clone(),
        contract,
        label: contract.label_key(),
        version: e.version.clone(),
        detail,
    };
    let describe = |label: &str, versions: &[&str]| format!("`{label}: {}`", versions.join("_"));
    match contract {
        ContractVersion::V1Beta2 => match (&v1beta2, &v1beta1) {
            (Some(l), _) if l.contains(&version) => {}
            (Some(l), _) => {
                return Err(missing(format!(
                    "its label {} does not name {}, so CAPI core would talk to another version",
                    describe(ContractVersion::V1Beta2.label_key(), l),
                    e.version
                )));
            }
            (None, Some(l)) => {
                return Err(missing(format!(
                    "it only has {}, so CAPI core would read it under the v1beta1 contract \
                     (status.ready), not status.initialization.provisioned that this type writes",
                    describe(ContractVersion::V1Beta1.label_key(), l)
                )));
            }
            (None, None) => {
                return Err(missing(
                    "it has no contract label, so CAPI core cannot resolve references to it".into(),
                ));
            }
        },
        ContractVersion::V1Beta1 => {
            if let Some(l) = &v1beta2 {
                return Err(CrdContractError::UnexpectedV1Beta2Label {
                    crd: crd_name,
                    kind: e.kind.clone(),
                    value: l.join("_"),
                    version: e.version.clone(),
                });
            }
            match &v1beta1 {
                Some(l) if l.contains(&version) => {}
                Some(l) => {
                    return Err(missing(format!(
                        "its label {} does not name {}, so CAPI core would talk to another version",
                        describe(ContractVersion::V1Beta1.label_key(), l),
                        e.version
                    )));
                }
                None => {
                    return Err(missing(
                        "it has no contract label, so CAPI core cannot resolve references to it"
                            .into(),
                    ));
                }
            }
        }
    }
    // Core talks to the highest version the label names; another one than ours is served
    // through conversion, which is fine but worth a line.
    if let Some((_, used)) = capi_core::contract::select_version(labels)
        && used != e.version
    {
        tracing::info!(crd = %crd_name, core_reads = %used, controller_reads = %e.version, "CAPI core will use another version of this CRD than the controller (converted by the API server)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion;
    use std::collections::BTreeMap;

    fn expected(contract: Option<ContractVersion>) -> ExpectedCrd {
        ExpectedCrd {
            role: "InfraMachine",
            kind: "ExampleMachine".into(),
            group: "infrastructure.example.com".into(),
            version: "v1alpha2".into(),
            plural: "examplemachines".into(),
            contract,
        }
    }

    fn crd(labels: &[(&str, &str)], versions: &[(&str, bool)]) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        );
        crd.spec.versions = versions
            .iter()
            .map(|(name, served)| CustomResourceDefinitionVersion {
                name: (*name).to_owned(),
                served: *served,
                ..CustomResourceDefinitionVersion::default()
            })
            .collect();
        crd
    }

    const V2: &str = "cluster.x-k8s.io/v1beta2";
    const V1: &str = "cluster.x-k8s.io/v1beta1";

    #[test]
    fn v1beta2_types_need_the_v1beta2_label_naming_their_version() {
        let e = expected(Some(ContractVersion::V1Beta2));
        let served = [("v1alpha1", true), ("v1alpha2", true)];
        assert!(verify(&e, &crd(&[(V2, "v1alpha1_v1alpha2")], &served)).is_ok());
        assert!(verify(&e, &crd(&[(V2, "v1alpha2"), (V1, "v1alpha1")], &served)).is_ok());
        for labels in [
            &[][..],
            &[(V2, "")][..],
            &[(V2, "v1alpha1")][..],
            &[(V1, "v1alpha2")][..],
        ] {
            let err = verify(&e, &crd(labels, &served)).unwrap_err();
            assert!(
                matches!(err, CrdContractError::MissingLabel { .. }),
                "{labels:?}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains("Add the label `cluster.x-k8s.io/v1beta2: v1alpha2`"),
                "{message}"
            );
        }
    }

    #[test]
    fn v1beta1_types_need_the_v1beta1_label_and_no_v1beta2_one() {
        let e = expected(Some(ContractVersion::V1Beta1));
        let served = [("v1alpha2", true)];
        assert!(verify(&e, &crd(&[(V1, "v1alpha2")], &served)).is_ok());
        // An empty label is no label to core.
        assert!(verify(&e, &crd(&[(V1, "v1alpha2"), (V2, "")], &served)).is_ok());
        let err = verify(&e, &crd(&[(V1, "v1alpha2"), (V2, "v1alpha2")], &served)).unwrap_err();
        assert!(
            matches!(err, CrdContractError::UnexpectedV1Beta2Label { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("Remove the label cluster.x-k8s.io/v1beta2")
        );
        let err = verify(&e, &crd(&[], &served)).unwrap_err();
        assert!(
            err.to_string()
                .contains("Add the label `cluster.x-k8s.io/v1beta1: v1alpha2`"),
            "{err}"
        );
    }

    #[test]
    fn the_version_must_be_served() {
        let e = expected(Some(ContractVersion::V1Beta2));
        for versions in [&[("v1alpha1", true)][..], &[("v1alpha2", false)][..]] {
            let err = verify(&e, &crd(&[(V2, "v1alpha2")], versions)).unwrap_err();
            assert!(
                matches!(err, CrdContractError::VersionNotServed { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unknown_contract_needs_some_label_naming_the_version() {
        let e = expected(None);
        let served = [("v1alpha2", true)];
        assert!(verify(&e, &crd(&[(V1, "v1alpha2")], &served)).is_ok());
        assert!(verify(&e, &crd(&[(V2, "v1alpha1")], &served)).is_err());
    }
}
