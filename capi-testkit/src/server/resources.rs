//! The kinds the server serves: the built-in ones controllers touch, and CRDs once created.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::schema::StructuralSchema;

/// A printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column name.
    pub name: String,
    /// integer, number, string, boolean, date.
    pub type_: String,
    /// Simple JSONPath, e.g. `.status.phase`.
    pub json_path: String,
    /// Shown only with `-o wide` when > 0.
    pub priority: i64,
    /// Description.
    pub description: String,
}

/// The scale subresource's paths.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// `.spec.replicas`.
    pub spec_replicas: String,
    /// `.status.replicas`.
    pub status_replicas: String,
    /// `.status.selector`.
    pub label_selector: Option<String>,
}

/// One served version of a resource.
#[derive(Debug, Clone)]
pub struct Version {
    /// `v1beta2`.
    pub name: String,
    /// Served at all.
    pub served: bool,
    /// The storage version.
    pub storage: bool,
    /// Deprecated (a Warning header on use).
    pub deprecation_warning: Option<String>,
    /// Status subresource enabled.
    pub status: bool,
    /// Scale subresource.
    pub scale: Option<ScalePaths>,
    /// Printer columns.
    pub columns: Vec<PrinterColumn>,
    /// The compiled schema (CRDs), shared: a request's [`Resource`] is a copy of the served
    /// one, and a CRD's schema is large.
    pub schema: Option<Arc<StructuralSchema>>,
}

/// A resource: group, kind, plural, scope and versions.
#[derive(Debug, Clone)]
pub struct Resource {
    /// API group (`""` for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// List kind.
    pub list_kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced?
    pub namespaced: bool,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Versions, preferred first.
    pub versions: Vec<Version>,
    /// A built-in kind (strategic merge patch allowed, no CR semantics).
    pub builtin: bool,
    /// Whether updates without resourceVersion are allowed (built-ins).
    pub unconditional_update: bool,
    /// The `(group, plural)` of the resource whose objects these are, read through another API
    /// (events.k8s.io Events are core Events, as kube-apiserver stores them); `None` for a
    /// resource with storage of its own.
    pub stored_as: Option<(String, String)>,
}

impl Resource {
    /// The version named `v`, if served.
    pub fn version(&self, v: &str) -> Option<&Version> {
        self.versions.iter().find(|x| x.name == v && x.served)
    }

    /// The storage version's name.
    pub fn storage_version(&self) -> &str {
        self.versions
            .iter()
            .find(|v| v.storage)
            .or(self.versions.first())
            .map_or("v1", |v| v.name.as_str())
    }

    /// `group/version` (or `version` for core).
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The `(group, plural)` its objects are stored under.
    pub fn storage_key(&self) -> (String, String) {
        self.stored_as
            .clone()
            .unwrap_or_else(|| (self.group.clone(), self.plural.clone()))
    }

    /// Field selectors this resource supports: each label as a client writes it, with the label
    /// of the stored object it reads (they differ where the resource is a view of another's
    /// storage).
    pub fn field_selectors(&self) -> Vec<(&'static str, &'static str)> {
        if super::events::is_events_v1(self) {
            return super::events::EVENTS_V1_FIELD_LABELS.to_vec();
        }
        if super::events::is_event(self) {
            return super::events::CORE_FIELD_LABELS.map(|l| (l, l)).to_vec();
        }
        let mut f = vec!["metadata.name"];
        if self.namespaced {
            f.push("metadata.namespace");
        }
        match (self.group.as_str(), self.plural.as_str()) {
            ("", "secrets") => f.push("type"),
            ("", "namespaces") => f.push("status.phase"),
            _ => {}
        }
        f.into_iter().map(|l| (l, l)).collect()
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> Resource {
    Resource {
        group: group.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| (*s).to_owned()).collect(),
        categories: Vec::new(),
        versions: vec![Version {
            name: version.into(),
            served: true,
            storage: true,
            deprecation_warning: None,
            status,
            scale: None,
            columns: Vec::new(),
            schema: None,
        }],
        builtin: true,
        unconditional_update: true,
        stored_as: None,
    }
}

/// The built-in kinds: what controllers and kubectl touch around CAPI providers.
pub fn builtins() -> Vec<Resource> {
    vec![
        builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
        builtin("", "v1", "Secret", "secrets", true, &[], false),
        builtin("", "v1", "Event", "events", true, &["ev"], false),
        builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
        ),
        Resource {
            stored_as: Some((String::new(), "events".into())),
            ..builtin(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                true,
                &["ev"],
                false,
            )
        },
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
        ),
    ]
}

/// A CRD object → the resource it serves. Errors are the 422 causes of an invalid CRD.
pub fn from_crd(crd: &Value) -> Result<Resource, Vec<(String, &'static str, String)>> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut errors = Vec::new();
    let group = text(&spec["group"]);
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    if group.is_empty() {
        errors.push((
            "spec.group".to_owned(),
            "FieldValueRequired",
            "Required value".to_owned(),
        ));
    }
    if plural.is_empty() {
        errors.push((
            "spec.names.plural".to_owned(),
            "FieldValueRequired",
            "Required value".to_owned(),
        ));
    }
    if kind.is_empty() {
        errors.push((
            "spec.names.kind".to_owned(),
            "FieldValueRequired",
            "Required value".to_owned(),
        ));
    }
    let expected = format!("{plural}.{group}");
    if crd["metadata"]["name"].as_str() != Some(expected.as_str()) {
        errors.push((
            "metadata.name".to_owned(),
            "FieldValueInvalid",
            format!(
                "Invalid value: {:?}: must be spec.names.plural+\".\"+spec.group",
                crd["metadata"]["name"].as_str().unwrap_or_default()
            ),
        ));
    }
    let mut versions = Vec::new();
    for (i, v) in spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let schema = match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            Some(s) => match serde_json::from_value(s.clone())
                .map_err(|e| vec![(String::new(), "FieldValueInvalid", e.to_string())])
                .and_then(|p| StructuralSchema::compile(&p).map_err(|e| e.causes()))
            {
                Ok(c) => Some(Arc::new(c)),
                Err(causes) => {
                    let at = format!("spec.versions[{i}].schema.openAPIV3Schema");
                    errors.extend(causes.into_iter().map(|(f, reason, message)| {
                        let field = if f.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{f}")
                        };
                        (field, reason, message)
                    }));
                    None
                }
            },
            None => None,
        };
        let scale = v["subresources"].get("scale").map(|s| ScalePaths {
            spec_replicas: text(&s["specReplicasPath"]),
            status_replicas: text(&s["statusReplicasPath"]),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_owned),
        });
        let columns = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: text(&c["name"]),
                type_: text(&c["type"]),
                json_path: text(&c["jsonPath"]),
                priority: c["priority"].as_i64().unwrap_or(0),
                description: text(&c["description"]),
            })
            .collect();
        let deprecated = v["deprecated"].as_bool().unwrap_or(false);
        // Upstream's default warning points at the newest served version that is not deprecated.
        let replacement = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["served"] == true && o["deprecated"] != true)
            .filter_map(|o| o["name"].as_str())
            .max_by_key(|n| capi_core::contract::version_priority(n))
            .map(|n| format!("; use {group}/{n} {kind}"))
            .unwrap_or_default();
        let api_version = format!("{group}/{}", text(&v["name"]));
        versions.push(Version {
            name: text(&v["name"]),
            served: v["served"].as_bool().unwrap_or(false),
            storage: v["storage"].as_bool().unwrap_or(false),
            deprecation_warning: deprecated.then(|| {
                v["deprecationWarning"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{api_version} {kind} is deprecated{replacement}"))
            }),
            status: v["subresources"].get("status").is_some(),
            scale,
            columns,
            schema,
        });
    }
    if versions.iter().filter(|v| v.storage).count() != 1 {
        errors.push((
            "spec.versions".to_owned(),
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version".to_owned(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Preferred first: Kubernetes version priority, highest first.
    versions.sort_by(|a, b| {
        capi_core::contract::version_priority(&b.name)
            .cmp(&capi_core::contract::version_priority(&a.name))
    });
    Ok(Resource {
        group,
        list_kind: names["listKind"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{kind}List")),
        singular: names["singular"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| kind.to_lowercase()),
        kind,
        plural,
        namespaced: spec["scope"] != "Cluster",
        short_names: list(&names["shortNames"]),
        categories: list(&names["categories"]),
        versions,
        builtin: false,
        unconditional_update: false,
        stored_as: None,
    })
}

/// Every resource by `(group, plural)`.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    resources: BTreeMap<(String, String), Resource>,
}

impl Registry {
    /// The built-ins.
    pub fn new() -> Self {
        let mut r = Self::default();
        for b in builtins() {
            r.insert(b);
        }
        r
    }

    /// Adds or replaces a resource.
    pub fn insert(&mut self, r: Resource) {
        self.resources
            .insert((r.group.clone(), r.plural.clone()), r);
    }

    /// Removes a resource.
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.resources
            .remove(&(group.to_owned(), plural.to_owned()));
    }

    /// A resource by group and plural.
    pub fn get(&self, group: &str, plural: &str) -> Option<&Resource> {
        self.resources.get(&(group.to_owned(), plural.to_owned()))
    }

    /// All resources.
    pub fn all(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// Groups with their served versions, preferred first.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.resources.values() {
            let vs = out.entry(r.group.clone()).or_default();
            for v in r.versions.iter().filter(|v| v.served) {
                if !vs.contains(&v.name) {
                    vs.push(v.name.clone());
                }
            }
        }
        for vs in out.values_mut() {
            vs.sort_by(|a, b| {
                capi_core::contract::version_priority(b)
                    .cmp(&capi_core::contract::version_priority(a))
            });
        }
        out
    }

    /// The `APIResourceList` of one group version.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources = Vec::new();
        for r in self.resources.values().filter(|r| r.group == group) {
            let Some(v) = r.version(version) else {
                continue;
            };
            let mut e = json!({
                "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            });
            if !r.short_names.is_empty() {
                e["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                e["categories"] = json!(r.categories);
            }
            resources.push(e);
            if v.status {
                resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
            }
            if v.scale.is_some() {
                resources.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
            }
        }
        if resources.is_empty() {
            return None;
        }
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .into_iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                let preferred = versions.first().cloned().unwrap_or_default();
                json!({"name": g, "versions": versions, "preferredVersion": preferred})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }
}
