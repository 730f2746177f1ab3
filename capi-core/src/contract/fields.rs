//! Contract fields for provider CRDs, with upstream's names, shapes and validation.
//!
//! Embed them with `#[serde(flatten)]` next to your own fields; the derived JSON schema then
//! carries the contract's properties, so the CRD from `kube::CustomResourceExt::crd()` has them.
//! These are the v1beta2-contract shapes (CAPI ≥ 1.11); [`v1beta1`] has the older ones.
//!
//! ```
//! use capi_core::contract::{InfraMachineSpec, InfraMachineStatus};
//! use kube::{CustomResource, CustomResourceExt};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "infrastructure.example.com", version = "v1alpha1", kind = "ExampleMachine")]
//! #[kube(namespaced, status = "ExampleMachineStatus")]
//! pub struct ExampleMachineSpec {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineSpec,
//!     /// The instance size, a field of this provider.
//!     pub size: String,
//! }
//!
//! #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
//! pub struct ExampleMachineStatus {
//!     #[serde(flatten)]
//!     pub contract: InfraMachineStatus,
//! }
//!
//! let crd = serde_json::to_value(ExampleMachine::crd()).unwrap();
//! let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
//! assert_eq!(spec["properties"]["providerID"]["maxLength"], 512);
//! assert!(spec["properties"]["size"].is_object());
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::v1beta2::{
    ApiEndpoint, FailureDomain, MachineAddress, MachineAddressType, ObjectMeta,
};

/// `status.initialization`: the contract's "infrastructure is provisioned" signal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("minProperties" = 1))]
pub struct Initialization {
    /// Whether the infrastructure is fully provisioned. Once true it stays true: CAPI treats the
    /// flag as a one-way signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<bool>,
}

impl Initialization {
    /// `{provisioned: true}`.
    pub fn provisioned() -> Self {
        Self {
            provisioned: Some(true),
        }
    }
}

/// The contract part of an InfraCluster's spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InfraClusterSpec {
    /// Where the workload cluster's API server listens, when this provider supplies it (a load
    /// balancer, say). CAPI copies it to `Cluster.spec.controlPlaneEndpoint`.
    #[serde(
        rename = "controlPlaneEndpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane_endpoint: Option<ApiEndpoint>,
}

/// The contract part of an InfraCluster's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InfraClusterStatus {
    /// `initialization.provisioned`: CAPI sets `Cluster.status.initialization.infrastructureProvisioned` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,
    /// The failure domains machines may be spread over; CAPI copies them to the Cluster.
    #[serde(
        rename = "failureDomains",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend(
        "minItems" = 1,
        "maxItems" = 100,
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["name"]
    ))]
    pub failure_domains: Option<Vec<FailureDomain>>,
    /// `status.ready`, for readers of the v1beta1 contract (CAPI ≤ 1.10); written only when a
    /// provider is configured for them. v1beta2 core ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// A terminal failure's reason: v1beta2 core copies it to `deprecated.v1beta1` of its object.
    #[serde(
        rename = "failureReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_reason: Option<String>,
    /// A terminal failure's message.
    #[serde(
        rename = "failureMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_message: Option<String>,
    /// CAPI v1beta1 conditions kept for older readers, as upstream providers keep them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
    /// Conditions; `Ready` is mirrored to the Cluster's `InfrastructureReady`, `Paused` should be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
}

/// The contract part of an InfraMachine's spec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InfraMachineSpec {
    /// The ID of the machine's instance as the Node's `spec.providerID` will show it
    /// (`<cloud>://<id>`); see [`crate::provider_id`]. Must eventually be set.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("minLength" = 1, "maxLength" = 512))]
    pub provider_id: Option<String>,
    /// Deprecated reverse flow of v1beta1: the failure domain CAPI asked for. Read the owner
    /// Machine's `spec.failureDomain` instead; kept so older clients can write it.
    #[serde(
        rename = "failureDomain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("minLength" = 1, "maxLength" = 256))]
    pub failure_domain: Option<String>,
}

/// The contract part of an InfraMachine's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InfraMachineStatus {
    /// `initialization.provisioned`: CAPI sets `Machine.status.initialization.infrastructureProvisioned` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,
    /// The machine's addresses; CAPI copies them to the Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<MachineAddress>>,
    /// The failure domain the machine actually runs in.
    #[serde(
        rename = "failureDomain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("minLength" = 1, "maxLength" = 256))]
    pub failure_domain: Option<String>,
    /// Whether the instance may be interrupted (spot/preemptible); CAPI labels the Node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruptible: Option<bool>,
    /// `status.ready`, for readers of the v1beta1 contract (CAPI ≤ 1.10); written only when a
    /// provider is configured for them. v1beta2 core ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// A terminal failure's reason: v1beta2 core copies it to `deprecated.v1beta1` of its object.
    #[serde(
        rename = "failureReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_reason: Option<String>,
    /// A terminal failure's message.
    #[serde(
        rename = "failureMessage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_message: Option<String>,
    /// CAPI v1beta1 conditions kept for older readers, as upstream providers keep them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
    /// Conditions; `Ready` is mirrored to the Machine's `InfrastructureReady`, `Paused` should be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
}

/// The schema upstream gives `status.conditions` of v1beta2-contract objects: metav1.Condition
/// items with their bounds and patterns, a list-map keyed by `type`, at most 32 items.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 32,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string", "maxLength": 32768},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                "reason": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                }
            }
        }
    })
}

/// `status.deprecated`: what v1beta2 objects keep for v1beta1 readers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeprecatedStatus {
    /// The v1beta1 part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta1: Option<V1Beta1DeprecatedStatus>,
}

/// `status.deprecated.v1beta1`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct V1Beta1DeprecatedStatus {
    /// CAPI v1beta1 conditions (with severity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<crate::conditions::V1Beta1Condition>>,
}

/// The spec of an InfraMachineTemplate or InfraClusterTemplate: `spec.template`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateSpec<S> {
    /// The template CAPI clones into new objects.
    pub template: TemplateResource<S>,
}

/// `spec.template` of a template kind: optional labels/annotations and the spec to copy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateResource<S> {
    /// Labels and annotations for the objects created from the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// The spec of the objects created from the template, copied verbatim.
    pub spec: S,
}

/// The v1beta1-contract shapes (CAPI ≤ 1.10): `status.ready`, map-shaped failure domains,
/// CAPI conditions with severity, terminal failure fields.
pub mod v1beta1 {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// `spec.providerID` and the deprecated `spec.failureDomain` have the same shape in both
    /// contracts (`providerID` is a `*string` in v1beta1, read the same way).
    pub use super::InfraMachineSpec;
    use crate::conditions::V1Beta1Condition;
    pub use crate::v1beta1::{ApiEndpoint, FailureDomainSpec, MachineAddress};

    /// `status.v1beta2`: where a v1beta1-contract object keeps its `metav1.Condition`s (CAPI's
    /// transition path; v1beta2 core reads `status.v1beta2.conditions` before `status.conditions`).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct V1Beta2Status {
        /// Conditions in the v1beta2 shape (`Ready`, `Paused`, provider-specific ones).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "super::conditions_schema")]
        pub conditions: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
    }

    /// The contract part of a v1beta1-contract InfraCluster's spec.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct InfraClusterSpec {
        /// Where the workload cluster's API server listens, when this provider supplies it.
        #[serde(
            rename = "controlPlaneEndpoint",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub control_plane_endpoint: Option<ApiEndpoint>,
    }

    /// The contract part of a v1beta1-contract InfraCluster's status.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct InfraClusterStatus {
        /// Whether the infrastructure is ready.
        #[serde(default)]
        pub ready: bool,
        /// Failure domains by name.
        #[serde(
            rename = "failureDomains",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub failure_domains: Option<BTreeMap<String, FailureDomainSpec>>,
        /// A terminal failure's reason (copied to the Cluster).
        #[serde(
            rename = "failureReason",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub failure_reason: Option<String>,
        /// A terminal failure's message (copied to the Cluster).
        #[serde(
            rename = "failureMessage",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub failure_message: Option<String>,
        /// CAPI v1beta1 conditions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub conditions: Option<Vec<V1Beta1Condition>>,
        /// The same conditions in the v1beta2 shape, which v1beta2 core reads first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub v1beta2: Option<V1Beta2Status>,
    }

    /// The contract part of a v1beta1-contract InfraMachine's status.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct InfraMachineStatus {
        /// Whether the infrastructure is ready.
        #[serde(default)]
        pub ready: bool,
        /// The machine's addresses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub addresses: Option<Vec<MachineAddress>>,
        /// Whether the instance may be interrupted (spot/preemptible); core labels the Node
        /// `cluster.x-k8s.io/interruptible` (read by v1beta1 core as well).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interruptible: Option<bool>,
        /// A terminal failure's reason (copied to the Machine; triggers remediation).
        #[serde(
            rename = "failureReason",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub failure_reason: Option<String>,
        /// A terminal failure's message.
        #[serde(
            rename = "failureMessage",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub failure_message: Option<String>,
        /// CAPI v1beta1 conditions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub conditions: Option<Vec<V1Beta1Condition>>,
        /// The same conditions in the v1beta2 shape, which v1beta2 core reads first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub v1beta2: Option<V1Beta2Status>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our contract fields must have upstream's schema: compare with the "dev" provider's CRDs
    /// (CAPI's own test infrastructure provider) from ../shared/corpus.
    #[test]
    fn contract_field_schemas_match_the_dev_provider() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/cluster-api/provider-dev-crds");
        if !dir.is_dir() {
            println!("skipped: {} is absent", dir.display());
            return;
        }
        let read = |file: &str| -> serde_json::Value {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let crd: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
            let v = crd["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == "v1beta2")
                .unwrap()
                .clone();
            v["schema"]["openAPIV3Schema"].clone()
        };
        let machine = read("infrastructure.cluster.x-k8s.io_devmachines.yaml");
        let cluster = read("infrastructure.cluster.x-k8s.io_devclusters.yaml");
        let no_labels = crate::crd::ContractVersionLabels::new();
        let ours_machine = our_root(
            crate::crd::provider_crd(vec![TestMachine::crd()], "v1beta2", &no_labels).unwrap(),
        );
        let ours_cluster = our_root(
            crate::crd::provider_crd(vec![TestCluster::crd()], "v1beta2", &no_labels).unwrap(),
        );
        let cases = [
            (
                &ours_machine["properties"]["status"],
                &machine["properties"]["status"],
                vec![
                    "initialization",
                    "addresses",
                    "failureDomain",
                    "conditions",
                    "deprecated",
                ],
            ),
            (
                &ours_machine["properties"]["spec"],
                &machine["properties"]["spec"],
                vec!["providerID"],
            ),
            (
                &ours_cluster["properties"]["status"],
                &cluster["properties"]["status"],
                vec![
                    "initialization",
                    "failureDomains",
                    "conditions",
                    "deprecated",
                ],
            ),
            (
                &ours_cluster["properties"]["spec"],
                &cluster["properties"]["spec"],
                vec!["controlPlaneEndpoint"],
            ),
        ];
        for (ours, upstream, fields) in cases {
            for f in fields {
                let mine = strip(&ours["properties"][f]);
                let theirs = strip(&upstream["properties"][f]);
                assert!(
                    same(&mine, &theirs),
                    "{f}: ours {mine:#} vs upstream {theirs:#}"
                );
            }
        }
    }

    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "default" | "title"))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
            serde_json::Value::Array(a) => a.iter().map(strip).collect(),
            other => other.clone(),
        }
    }

    use kube::{CustomResource, CustomResourceExt};

    #[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "infrastructure.cluster.x-k8s.io",
        version = "v1beta2",
        kind = "TestMachine"
    )]
    #[kube(namespaced, status = "TestMachineStatus")]
    struct TestMachineSpec {
        #[serde(flatten)]
        contract: InfraMachineSpec,
    }

    #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
    struct TestMachineStatus {
        #[serde(flatten)]
        contract: InfraMachineStatus,
    }

    #[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "infrastructure.cluster.x-k8s.io",
        version = "v1beta2",
        kind = "TestCluster"
    )]
    #[kube(namespaced, status = "TestClusterStatus")]
    struct TestClusterSpec {
        #[serde(flatten)]
        contract: InfraClusterSpec,
    }

    #[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
    struct TestClusterStatus {
        #[serde(flatten)]
        contract: InfraClusterStatus,
    }

    fn our_root(
        crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> serde_json::Value {
        let crd = serde_json::to_value(crd).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match (a, b) {
            (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
            (Object(x), Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
}
