//! The least-privilege ClusterRole of a provider, generated from the kinds it reconciles.
//!
//! What the SDK itself touches: the provider's kinds (and their `status` and `finalizers`
//! subresources), CAPI Clusters and Machines (read), bootstrap-data Secrets (read), the
//! provider's own CRDs (`get` only, restricted by `resourceNames`: the manager's
//! [start-up check](crate::manager#the-crd-check-at-start-up) of their contract labels, and
//! resolving the version of the InfraCluster a Cluster references), Events (write) and Leases
//! (leader election).
//!
//! A provider whose machines may sit in Clusters whose infrastructure is a kind it does not
//! reconcile itself adds `get` on that kind's CRD with [`ClusterRoleBuilder::rule`].
//!
//! ```
//! use capi_provider_sdk::rbac::{ClusterRoleBuilder, ResourceRef};
//! let role = ClusterRoleBuilder::new("capx-manager-role")
//!     .resource(ResourceRef::new("infrastructure.example.com", "examplemachines"))
//!     .build();
//! let rules = role.rules.unwrap();
//! assert!(rules.iter().any(|r| r.resources.as_ref().unwrap().contains(&"examplemachines/status".to_string())));
//! // Its own CRD, read only, by name.
//! let crds = rules.iter().find(|r| r.resources.as_ref().unwrap() == &["customresourcedefinitions"]).unwrap();
//! assert_eq!(crds.verbs, ["get"]);
//! assert_eq!(crds.resource_names.as_deref().unwrap(), ["examplemachines.infrastructure.example.com"]);
//! ```

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A resource (group + plural) the provider reconciles.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceRef {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

impl ResourceRef {
    /// A resource by group and plural.
    pub fn new(group: impl Into<String>, plural: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            plural: plural.into(),
        }
    }

    /// The resource of a kube type.
    pub fn of<K: kube::Resource<DynamicType = ()>>() -> Self {
        Self::new(K::group(&()), K::plural(&()))
    }

    /// The name of its CRD, `<plural>.<group>`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// Builds a provider's ClusterRole.
#[derive(Debug, Clone)]
pub struct ClusterRoleBuilder {
    name: String,
    resources: BTreeSet<ResourceRef>,
    extra: Vec<PolicyRule>,
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

impl ClusterRoleBuilder {
    /// A ClusterRole named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            resources: BTreeSet::new(),
            extra: Vec::new(),
        }
    }

    /// Adds a reconciled resource.
    pub fn resource(mut self, r: ResourceRef) -> Self {
        self.resources.insert(r);
        self
    }

    /// Adds a rule for what the provider's own code needs beyond the SDK.
    pub fn rule(mut self, rule: PolicyRule) -> Self {
        self.extra.push(rule);
        self
    }

    /// The ClusterRole, rules in a deterministic order.
    pub fn build(self) -> ClusterRole {
        let mut rules = Vec::new();
        let groups: BTreeSet<&str> = self.resources.iter().map(|r| r.group.as_str()).collect();
        for group in groups {
            let plurals: Vec<&str> = self
                .resources
                .iter()
                .filter(|r| r.group == group)
                .map(|r| r.plural.as_str())
                .collect();
            rules.push(rule(
                group,
                &plurals,
                &["get", "list", "watch", "update", "patch"],
            ));
            let subs: Vec<String> = plurals
                .iter()
                .flat_map(|p| [format!("{p}/status"), format!("{p}/finalizers")])
                .collect();
            let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
            rules.push(rule(group, &subs, &["get", "update", "patch"]));
        }
        rules.push(rule(
            "cluster.x-k8s.io",
            &["clusters", "machines"],
            &["get", "list", "watch"],
        ));
        rules.push(rule("", &["secrets"], &["get", "list", "watch"]));
        // Without names a rule would grant every CRD: none when there is nothing to name.
        if !self.resources.is_empty() {
            rules.push(PolicyRule {
                resource_names: Some(self.resources.iter().map(ResourceRef::crd_name).collect()),
                ..rule(
                    "apiextensions.k8s.io",
                    &["customresourcedefinitions"],
                    &["get"],
                )
            });
        }
        rules.push(rule("", &["events"], &["create", "patch"]));
        rules.push(rule("events.k8s.io", &["events"], &["create", "patch"]));
        rules.push(rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "create", "update", "patch"],
        ));
        rules.extend(self.extra);
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(self.name),
                ..ObjectMeta::default()
            },
            rules: Some(rules),
            ..ClusterRole::default()
        }
    }
}
