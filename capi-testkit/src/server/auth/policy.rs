//! The default ClusterRoles and ClusterRoleBindings kube-apiserver's RBAC bootstrap creates that
//! matter to any identity: `cluster-admin` (bound to `system:masters`), `system:discovery`
//! (discovery, health, version and OpenAPI for `system:authenticated`),
//! `system:public-info-viewer` (health and version for everyone, `system:unauthenticated` too)
//! and `system:basic-user` (self access and rules reviews, `SelfSubjectReview`).
//!
//! ```
//! let names: Vec<String> = capi_testkit::server::auth::default_policy()
//!     .iter()
//!     .map(|(plural, obj)| format!("{plural}/{}", obj["metadata"]["name"].as_str().unwrap_or_default()))
//!     .collect();
//! assert!(names.contains(&"clusterroles/system:discovery".to_owned()));
//! assert!(names.contains(&"clusterrolebindings/system:public-info-viewer".to_owned()));
//! ```

use serde_json::{Value, json};

use super::identity::{AUTHENTICATED, MASTERS, UNAUTHENTICATED};
use super::rbac::GROUP;
use crate::server::store::Store;

fn meta(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn role(name: &str, rules: Value) -> (&'static str, Value) {
    (
        "clusterroles",
        json!({"apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole", "metadata": meta(name), "rules": rules}),
    )
}

fn binding(name: &str, groups: &[&str]) -> (&'static str, Value) {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g}))
        .collect();
    (
        "clusterrolebindings",
        json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding", "metadata": meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        }),
    )
}

/// The default objects, as `(plural, object)`.
pub fn default_policy() -> Vec<(&'static str, Value)> {
    let public = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        binding("cluster-admin", &[MASTERS]),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        binding("system:discovery", &[AUTHENTICATED]),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": public, "verbs": ["get"]}]),
        ),
        binding(
            "system:public-info-viewer",
            &[AUTHENTICATED, UNAUTHENTICATED],
        ),
        role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ]),
        ),
        binding("system:basic-user", &[AUTHENTICATED]),
    ]
}

/// Creates the default objects that are missing (existing ones are left as they are).
pub(crate) fn ensure_default_policy(store: &Store) {
    for (plural, obj) in default_policy() {
        let Some(res) = store.lock().registry.get(GROUP, plural).cloned() else {
            tracing::warn!(
                plural,
                "RBAC resource not served; default policy incomplete"
            );
            continue;
        };
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if store.get(&res, "", &name).is_ok() {
            continue;
        }
        if let Err(e) = store.create(&res, "", obj, false) {
            tracing::warn!(plural, name, error = %e.message, "could not create a default RBAC object");
        }
    }
}
