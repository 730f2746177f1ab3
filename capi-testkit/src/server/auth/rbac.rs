//! The RBAC authorizer: rules from the stored Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings, evaluated as k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac does.
//!
//! ClusterRoleBindings grant everywhere; RoleBindings grant in their own namespace, whether they
//! refer to a Role (of that namespace) or a ClusterRole. A rule allows a request when its verb,
//! API group, resource (`resource/subresource`, or `*/subresource`) and resource name match, each
//! with `*` as a wildcard and no resource names meaning any; non-resource rules match a path
//! exactly or by a trailing `*`. A binding whose role is missing is reported in the denial reason
//! (`RBAC: role.rbac.authorization.k8s.io "x" not found`), as upstream.
//!
//! ```
//! use std::collections::HashMap;
//! use capi_testkit::server::auth::{Attributes, PolicyRule};
//! use serde_json::json;
//!
//! let rule = PolicyRule::from_json(&json!({
//!     "apiGroups": ["cluster.x-k8s.io"], "resources": ["machines", "machines/status"],
//!     "verbs": ["get", "patch"],
//! }));
//! let path = "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/machines/m1/status";
//! assert!(rule.allows(&Attributes::from_request("PATCH", path, &HashMap::new())));
//! assert!(!rule.allows(&Attributes::from_request("PUT", path, &HashMap::new())));
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde_json::{Value, json};

use super::attributes::Attributes;
use super::identity::Identity;
use crate::server::resources::Resource;
use crate::server::selectors::{LabelSelector, Requirement};
use crate::server::store::Store;

/// The RBAC API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRule {
    /// Verbs (`*`: all).
    pub verbs: Vec<String>,
    /// API groups (`*`: all).
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource` for subresources (`*`, `*/status`).
    pub resources: Vec<String>,
    /// Object names; empty means any.
    pub resource_names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/apis/*`).
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|x| x == "*" || x == wanted)
}

impl PolicyRule {
    /// A rule from its JSON form (missing or mistyped fields are empty).
    pub fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// Whether the rule allows the request (upstream's `RuleAllows`).
    pub fn allows(&self, attrs: &Attributes) -> bool {
        match attrs {
            Attributes::Resource(r) => {
                let combined = if r.subresource.is_empty() {
                    r.resource.clone()
                } else {
                    format!("{}/{}", r.resource, r.subresource)
                };
                has(&self.verbs, &r.verb)
                    && has(&self.api_groups, &r.group)
                    && self.resources.iter().any(|x| {
                        x == "*"
                            || *x == combined
                            || (!r.subresource.is_empty()
                                && x.strip_prefix("*/") == Some(r.subresource.as_str()))
                    })
                    && (self.resource_names.is_empty() || self.resource_names.contains(&r.name))
            }
            Attributes::NonResource { verb, path } => {
                has(&self.verbs, verb)
                    && self.non_resource_urls.iter().any(|u| {
                        u == "*"
                            || u == path
                            || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    }
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub allowed: bool,
    /// Why (`RBAC: allowed by …`), or what went wrong resolving the rules; may be empty.
    pub reason: String,
}

impl Decision {
    /// Allowed with no reason (privileged groups, RBAC off).
    pub(crate) fn allow() -> Self {
        Self {
            allowed: true,
            reason: String::new(),
        }
    }
}

/// A binding that applies to the user, named as upstream's describers do
/// (`ClusterRoleBinding "b" of ClusterRole "r" to User "jane"`).
fn describe(kind: &str, binding: &Value, subject: &Value, namespace: &str) -> String {
    let name = binding["metadata"]["name"].as_str().unwrap_or_default();
    let shown = if kind == "RoleBinding" {
        format!("{name}/{namespace}")
    } else {
        name.to_owned()
    };
    let s_kind = subject["kind"].as_str().unwrap_or_default();
    let s_name = subject["name"].as_str().unwrap_or_default();
    let who = if s_kind == "ServiceAccount" {
        let ns = subject["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(namespace);
        format!("{s_name}/{ns}")
    } else {
        s_name.to_owned()
    };
    format!(
        "{kind} {} of {} {} to {s_kind} {}",
        crate::gofmt::quote(&shown),
        binding["roleRef"]["kind"].as_str().unwrap_or_default(),
        crate::gofmt::quote(binding["roleRef"]["name"].as_str().unwrap_or_default()),
        crate::gofmt::quote(&who),
    )
}

/// The first subject of a binding that is the user (upstream's `appliesTo`).
fn subject_for<'a>(user: &Identity, binding: &'a Value, namespace: &str) -> Option<&'a Value> {
    binding["subjects"].as_array()?.iter().find(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => user.name() == name,
            Some("Group") => user.has_group(name),
            Some("ServiceAccount") => {
                let ns = s["namespace"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                !ns.is_empty() && user.as_service_account() == Some((ns, name))
            }
            _ => false,
        }
    })
}

/// The selector of one `aggregationRule.clusterRoleSelectors` entry (`{}` selects all).
fn selector_of(v: &Value) -> LabelSelector {
    let mut reqs = Vec::new();
    if let Some(m) = v["matchLabels"].as_object() {
        for (k, val) in m {
            reqs.push(Requirement::Equals(
                k.clone(),
                val.as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    for e in v["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default().to_owned();
        let values: BTreeSet<String> = strings(&e["values"]).into_iter().collect();
        reqs.push(match e["operator"].as_str() {
            Some("In") => Requirement::In(key, values),
            Some("NotIn") => Requirement::NotIn(key, values),
            Some("Exists") => Requirement::Exists(key),
            // DoesNotExist, and an unknown operator selects nothing it could match.
            _ => Requirement::DoesNotExist(key),
        });
    }
    LabelSelector(reqs)
}

/// Rules from the store.
#[derive(Debug, Clone, Copy)]
pub struct Rbac<'a> {
    store: &'a Store,
}

impl<'a> Rbac<'a> {
    /// The authorizer over `store`'s RBAC objects.
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn resource(&self, plural: &str) -> Option<Resource> {
        self.store.lock().registry.get(GROUP, plural).cloned()
    }

    fn list(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        self.resource(plural)
            .map(|r| self.store.list(&r, namespace).0)
            .unwrap_or_default()
    }

    /// The rules of a ClusterRole, aggregated when it has an `aggregationRule` (the rules of
    /// every ClusterRole its selectors match, as the aggregation controller would write them).
    fn cluster_role_rules(&self, role: &Value, seen: &mut Vec<String>) -> Vec<PolicyRule> {
        let name = role["metadata"]["name"].as_str().unwrap_or_default();
        seen.push(name.to_owned());
        let Some(selectors) = role["aggregationRule"].as_object() else {
            return role["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(PolicyRule::from_json)
                .collect();
        };
        let selectors: Vec<LabelSelector> = selectors
            .get("clusterRoleSelectors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(selector_of)
            .collect();
        let mut rules: Vec<PolicyRule> = Vec::new();
        for other in self.list("clusterroles", None) {
            let other_name = other["metadata"]["name"].as_str().unwrap_or_default();
            if seen.iter().any(|s| s == other_name)
                || !selectors
                    .iter()
                    .any(|s| s.matches(other["metadata"].get("labels")))
            {
                continue;
            }
            for r in self.cluster_role_rules(&other, seen) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
        rules
    }

    /// The rules a binding's `roleRef` stands for (upstream's `GetRoleReferenceRules`).
    fn role_ref_rules(&self, binding: &Value, namespace: &str) -> Result<Vec<PolicyRule>, String> {
        let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        match binding["roleRef"]["kind"].as_str().unwrap_or_default() {
            "Role" => {
                let role = self
                    .resource("roles")
                    .and_then(|r| self.store.get(&r, namespace, name).ok())
                    .ok_or_else(|| {
                        format!("role.{GROUP} {} not found", crate::gofmt::quote(name))
                    })?;
                Ok(role["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(PolicyRule::from_json)
                    .collect())
            }
            "ClusterRole" => {
                let role = self
                    .resource("clusterroles")
                    .and_then(|r| self.store.get(&r, "", name).ok())
                    .ok_or_else(|| {
                        format!(
                            "clusterrole.{GROUP} {} not found",
                            crate::gofmt::quote(name)
                        )
                    })?;
                Ok(self.cluster_role_rules(&role, &mut Vec::new()))
            }
            other => Err(format!(
                "unsupported role reference kind: {}",
                crate::gofmt::quote(other)
            )),
        }
    }

    /// Calls `visit` with each binding that applies to `user` in `namespace` (cluster-wide ones
    /// first) and its rules or the error resolving them, until it breaks.
    fn visit(
        &self,
        user: &Identity,
        namespace: &str,
        mut visit: impl FnMut(&str, Result<&[PolicyRule], &str>) -> ControlFlow<()>,
    ) {
        for b in self.list("clusterrolebindings", None) {
            let Some(subject) = subject_for(user, &b, "") else {
                continue;
            };
            let source = describe("ClusterRoleBinding", &b, subject, "");
            let flow = match self.role_ref_rules(&b, "") {
                Ok(rules) => visit(&source, Ok(&rules)),
                Err(e) => visit(&source, Err(&e)),
            };
            if flow.is_break() {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for b in self.list("rolebindings", Some(namespace)) {
            let Some(subject) = subject_for(user, &b, namespace) else {
                continue;
            };
            let source = describe("RoleBinding", &b, subject, namespace);
            let flow = match self.role_ref_rules(&b, namespace) {
                Ok(rules) => visit(&source, Ok(&rules)),
                Err(e) => visit(&source, Err(&e)),
            };
            if flow.is_break() {
                return;
            }
        }
    }

    /// Whether RBAC allows `user` the request (upstream's `RBACAuthorizer.Authorize`).
    pub fn authorize(&self, user: &Identity, attrs: &Attributes) -> Decision {
        let mut allowed_by = None;
        let mut errors: Vec<String> = Vec::new();
        self.visit(user, attrs.namespace(), |source, rules| match rules {
            Ok(rules) if rules.iter().any(|r| r.allows(attrs)) => {
                allowed_by = Some(source.to_owned());
                ControlFlow::Break(())
            }
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                errors.push(e.to_owned());
                ControlFlow::Continue(())
            }
        });
        match allowed_by {
            Some(source) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {source}"),
            },
            None => Decision {
                allowed: false,
                reason: if errors.is_empty() {
                    String::new()
                } else {
                    format!("RBAC: {}", aggregate(&errors))
                },
            },
        }
    }

    /// Every rule that applies to `user` in `namespace`, and the errors met resolving them.
    pub fn rules_for(&self, user: &Identity, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, |_, rules| {
            match rules {
                Ok(rules) => out.extend(rules.iter().cloned()),
                Err(e) => errors.push(e.to_owned()),
            }
            ControlFlow::Continue(())
        });
        (out, errors)
    }
}

/// Several errors as one message, as apimachinery's `utilerrors.NewAggregate` prints them
/// (one: itself; more: `[a, b]`, repeats once).
pub(crate) fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => {
            let mut s = String::from("[");
            for (i, e) in many.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "{e}");
            }
            s.push(']');
            s
        }
    }
}

/// A rule in the JSON of a `SelfSubjectRulesReview` (`ResourceRule` or `NonResourceRule`).
pub(crate) fn rule_json(r: &PolicyRule) -> (Option<Value>, Option<Value>) {
    let resource = (!r.resources.is_empty()).then(|| {
        let mut v = json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
        if !r.resource_names.is_empty() {
            v["resourceNames"] = json!(r.resource_names);
        }
        v
    });
    let non_resource = (!r.non_resource_urls.is_empty())
        .then(|| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
    (resource, non_resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn attrs(method: &str, path: &str) -> Attributes {
        Attributes::from_request(method, path, &HashMap::new())
    }

    #[test]
    fn wildcards_subresources_and_names_match_as_upstream() {
        let all =
            PolicyRule::from_json(&json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(all.allows(&attrs("DELETE", "/apis/x.io/v1/namespaces/d/foos/a/status")));
        let sub = PolicyRule::from_json(
            &json!({"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]}),
        );
        assert!(sub.allows(&attrs("GET", "/api/v1/namespaces/d/pods/p/status")));
        assert!(!sub.allows(&attrs("GET", "/api/v1/namespaces/d/pods/p")));
        let main = PolicyRule::from_json(
            &json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
        );
        assert!(
            !main.allows(&attrs("GET", "/api/v1/namespaces/d/pods/p/status")),
            "a subresource is its own resource"
        );
        let named = PolicyRule::from_json(
            &json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get", "list"]}),
        );
        assert!(named.allows(&attrs("GET", "/api/v1/namespaces/d/configmaps/a")));
        assert!(!named.allows(&attrs("GET", "/api/v1/namespaces/d/configmaps/b")));
        assert!(
            !named.allows(&attrs("GET", "/api/v1/namespaces/d/configmaps")),
            "a list names no object"
        );
        let urls = PolicyRule::from_json(
            &json!({"nonResourceURLs": ["/apis/*", "/healthz"], "verbs": ["get"]}),
        );
        assert!(urls.allows(&attrs("GET", "/apis/apps/v1")));
        assert!(urls.allows(&attrs("GET", "/healthz")));
        assert!(!urls.allows(&attrs("GET", "/healthz/etcd")));
        assert!(!urls.allows(&attrs("POST", "/healthz")));
    }

    #[test]
    fn errors_aggregate_as_apimachinery_prints_them() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
    }
}
