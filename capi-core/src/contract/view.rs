//! Reading contract fields from any provider object, as CAPI core reads them.
//!
//! Core does not know a provider's Rust or Go types: it reads a handful of JSON paths, chosen by
//! the contract version the provider's CRD declares (capi-contract.md sections 1, 2.3, 3.2). The
//! views here do the same on a `serde_json::Value` (e.g. a `kube::api::DynamicObject`'s data),
//! so a simulator or a conformance suite can drive providers written in any language.
//!
//! ```
//! use capi_core::contract::{ContractVersion, InfraMachineView};
//! let obj = serde_json::json!({
//!     "spec": {"providerID": "aws:///us-east-1a/i-0123"},
//!     "status": {"initialization": {"provisioned": true},
//!                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}
//! });
//! let view = InfraMachineView::new(&obj, ContractVersion::V1Beta2);
//! assert!(view.provisioned().unwrap());
//! assert_eq!(view.provider_id().unwrap(), Some("aws:///us-east-1a/i-0123"));
//! assert_eq!(view.addresses().unwrap()[0].address, "10.0.0.5");
//! ```

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ContractVersion;
use super::fields::{ApiEndpoint, FailureDomain, MachineAddress};

/// A contract field is present but has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ContractError {
    /// The JSON path of the field, e.g. `status.initialization.provisioned`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(obj, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn typed<T: DeserializeOwned>(obj: &Value, path: &str) -> Result<Option<T>, ContractError> {
    lookup(obj, path)
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| ContractError {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn string<'a>(obj: &'a Value, path: &str) -> Result<Option<&'a str>, ContractError> {
    match lookup(obj, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ContractError {
            path: path.to_owned(),
            message: format!("expected a string, found {other}"),
        }),
    }
}

/// The `Ready` condition's summary, in whichever condition shape the object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadySummary {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The condition's reason, if any.
    pub reason: Option<String>,
    /// The condition's message, if any.
    pub message: Option<String>,
}

fn condition(obj: &Value, type_: &str) -> Option<ReadySummary> {
    // As core's UnstructuredGetAll: `status.v1beta2.conditions` first (a provider on the v1beta1
    // contract that added v1beta2 conditions beside its old ones), then `status.conditions`.
    let list = lookup(obj, "status.v1beta2.conditions")
        .and_then(Value::as_array)
        .or_else(|| lookup(obj, "status.conditions")?.as_array())?;
    let c = list
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let text = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(ReadySummary {
        status: text("status").unwrap_or_else(|| "Unknown".into()),
        reason: text("reason"),
        message: text("message"),
    })
}

/// `provisioned` as core reads it: `status.initialization.provisioned` (v1beta2) or
/// `status.ready` (v1beta1); a missing field means false.
fn provisioned(obj: &Value, contract: ContractVersion) -> Result<bool, ContractError> {
    let path = match contract {
        ContractVersion::V1Beta2 => "status.initialization.provisioned",
        ContractVersion::V1Beta1 => "status.ready",
    };
    Ok(typed::<bool>(obj, path)?.unwrap_or(false))
}

/// A terminal failure a provider reported (v1beta1 contract fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalFailure {
    /// `status.failureReason`.
    pub reason: Option<String>,
    /// `status.failureMessage`.
    pub message: Option<String>,
}

/// A terminal failure (`status.failureReason` / `status.failureMessage`): behaviour-changing in
/// the v1beta1 contract, only copied to `deprecated.v1beta1` in v1beta2.
fn failure(obj: &Value) -> Result<Option<TerminalFailure>, ContractError> {
    let reason = string(obj, "status.failureReason")?.map(str::to_owned);
    let message = string(obj, "status.failureMessage")?.map(str::to_owned);
    Ok((reason.is_some() || message.is_some()).then_some(TerminalFailure { reason, message }))
}

/// Contract fields of an InfraMachine.
#[derive(Debug, Clone, Copy)]
pub struct InfraMachineView<'a> {
    obj: &'a Value,
    contract: ContractVersion,
}

impl<'a> InfraMachineView<'a> {
    /// A view of `obj` (the whole object as JSON) under `contract`.
    pub fn new(obj: &'a Value, contract: ContractVersion) -> Self {
        Self { obj, contract }
    }

    /// `spec.providerID`.
    pub fn provider_id(&self) -> Result<Option<&'a str>, ContractError> {
        string(self.obj, "spec.providerID")
    }

    /// Whether the machine's infrastructure is provisioned.
    pub fn provisioned(&self) -> Result<bool, ContractError> {
        provisioned(self.obj, self.contract)
    }

    /// `status.addresses` (empty when absent).
    pub fn addresses(&self) -> Result<Vec<MachineAddress>, ContractError> {
        Ok(typed(self.obj, "status.addresses")?.unwrap_or_default())
    }

    /// The failure domain the machine reports: `status.failureDomain`, else the deprecated
    /// `spec.failureDomain` core still reads.
    pub fn failure_domain(&self) -> Result<Option<&'a str>, ContractError> {
        match string(self.obj, "status.failureDomain")? {
            Some(fd) => Ok(Some(fd)),
            None => string(self.obj, "spec.failureDomain"),
        }
    }

    /// `status.interruptible`.
    pub fn interruptible(&self) -> Result<bool, ContractError> {
        Ok(typed::<bool>(self.obj, "status.interruptible")?.unwrap_or(false))
    }

    /// The `Ready` condition, which core mirrors into the Machine's `InfrastructureReady`.
    pub fn ready_condition(&self) -> Option<ReadySummary> {
        condition(self.obj, "Ready")
    }

    /// A reported terminal failure.
    pub fn failure(&self) -> Result<Option<TerminalFailure>, ContractError> {
        failure(self.obj)
    }
}

/// Contract fields of an InfraCluster.
#[derive(Debug, Clone, Copy)]
pub struct InfraClusterView<'a> {
    obj: &'a Value,
    contract: ContractVersion,
}

impl<'a> InfraClusterView<'a> {
    /// A view of `obj` (the whole object as JSON) under `contract`.
    pub fn new(obj: &'a Value, contract: ContractVersion) -> Self {
        Self { obj, contract }
    }

    /// Whether the cluster's infrastructure is provisioned.
    pub fn provisioned(&self) -> Result<bool, ContractError> {
        provisioned(self.obj, self.contract)
    }

    /// `spec.controlPlaneEndpoint`, when it is valid as core judges it (host non-empty, port ≠ 0).
    pub fn control_plane_endpoint(&self) -> Result<Option<ApiEndpoint>, ContractError> {
        let endpoint: Option<ApiEndpoint> = typed(self.obj, "spec.controlPlaneEndpoint")?;
        Ok(endpoint.filter(|e| {
            e.host.as_deref().is_some_and(|h| !h.is_empty()) && e.port.is_some_and(|p| p != 0)
        }))
    }

    /// The failure domains as core copies them to the Cluster: a list sorted by name, a v1beta1
    /// map converted to that list, a missing `controlPlane` read as false.
    ///
    /// ```
    /// use capi_core::contract::{ContractVersion, InfraClusterView};
    /// let obj = serde_json::json!({"status": {"failureDomains": {"b": {}, "a": {"controlPlane": true}}}});
    /// let fds = InfraClusterView::new(&obj, ContractVersion::V1Beta1).failure_domains().unwrap();
    /// assert_eq!(fds.iter().map(|f| (f.name.as_str(), f.control_plane)).collect::<Vec<_>>(),
    ///            [("a", Some(true)), ("b", Some(false))]);
    /// ```
    pub fn failure_domains(&self) -> Result<Vec<FailureDomain>, ContractError> {
        let mut out: Vec<FailureDomain> = match self.contract {
            ContractVersion::V1Beta2 => {
                typed(self.obj, "status.failureDomains")?.unwrap_or_default()
            }
            ContractVersion::V1Beta1 => {
                let map: std::collections::BTreeMap<String, crate::v1beta1::FailureDomainSpec> =
                    typed(self.obj, "status.failureDomains")?.unwrap_or_default();
                map.into_iter()
                    .map(|(name, spec)| FailureDomain {
                        name,
                        control_plane: spec.control_plane,
                        attributes: spec.attributes,
                    })
                    .collect()
            }
        };
        for fd in &mut out {
            fd.control_plane.get_or_insert(false);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The `Ready` condition, which core mirrors into the Cluster's `InfrastructureReady`.
    pub fn ready_condition(&self) -> Option<ReadySummary> {
        condition(self.obj, "Ready")
    }

    /// A reported terminal failure.
    pub fn failure(&self) -> Result<Option<TerminalFailure>, ContractError> {
        failure(self.obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1beta1_reads_status_ready_and_ignores_initialization() {
        let obj = json!({"status": {"ready": true, "initialization": {"provisioned": false}}});
        assert!(
            InfraMachineView::new(&obj, ContractVersion::V1Beta1)
                .provisioned()
                .unwrap()
        );
        assert!(
            !InfraMachineView::new(&obj, ContractVersion::V1Beta2)
                .provisioned()
                .unwrap()
        );
    }

    #[test]
    fn missing_fields_mean_not_provisioned_and_empty() {
        let obj = json!({"spec": {}});
        let m = InfraMachineView::new(&obj, ContractVersion::V1Beta2);
        assert!(!m.provisioned().unwrap());
        assert_eq!(m.provider_id().unwrap(), None);
        assert!(m.addresses().unwrap().is_empty());
        let c = InfraClusterView::new(&obj, ContractVersion::V1Beta2);
        assert!(c.failure_domains().unwrap().is_empty());
        assert_eq!(c.control_plane_endpoint().unwrap(), None);
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_path() {
        let obj = json!({"spec": {"providerID": 7}, "status": {"initialization": {"provisioned": "yes"}, "addresses": [{"type": "Bogus", "address": "x"}]}});
        let m = InfraMachineView::new(&obj, ContractVersion::V1Beta2);
        assert_eq!(m.provider_id().unwrap_err().path, "spec.providerID");
        assert_eq!(
            m.provisioned().unwrap_err().path,
            "status.initialization.provisioned"
        );
        assert_eq!(m.addresses().unwrap_err().path, "status.addresses");
    }

    #[test]
    fn endpoint_counts_only_when_host_and_port_are_set() {
        let half = json!({"spec": {"controlPlaneEndpoint": {"host": "lb", "port": 0}}});
        assert_eq!(
            InfraClusterView::new(&half, ContractVersion::V1Beta2)
                .control_plane_endpoint()
                .unwrap(),
            None
        );
        let full = json!({"spec": {"controlPlaneEndpoint": {"host": "lb", "port": 6443}}});
        let ep = InfraClusterView::new(&full, ContractVersion::V1Beta2)
            .control_plane_endpoint()
            .unwrap()
            .unwrap();
        assert_eq!((ep.host.as_deref(), ep.port), (Some("lb"), Some(6443)));
    }

    #[test]
    fn ready_condition_and_failure_are_read_in_either_shape() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "severity": "Error", "reason": "Boom"}], "failureReason": "CreateError"}});
        let m = InfraMachineView::new(&obj, ContractVersion::V1Beta1);
        assert_eq!(m.ready_condition().unwrap().reason.as_deref(), Some("Boom"));
        // A v1beta1-contract provider that added v1beta2 conditions: those are read first.
        let migrating = json!({"status": {
            "conditions": [{"type": "Ready", "status": "False", "severity": "Info", "reason": "Old"}],
            "v1beta2": {"conditions": [{"type": "Ready", "status": "True", "reason": "New"}]}}});
        let ready = InfraMachineView::new(&migrating, ContractVersion::V1Beta1)
            .ready_condition()
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("New"))
        );
        assert_eq!(
            m.failure().unwrap(),
            Some(TerminalFailure {
                reason: Some("CreateError".into()),
                message: None
            })
        );
    }
}
