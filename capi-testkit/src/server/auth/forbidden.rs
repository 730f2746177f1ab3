//! The 403 of a refused request, worded as upstream's `responsewriters.Forbidden` and
//! `apierrors.NewForbidden` write it.
//!
//! ```
//! use std::collections::HashMap;
//! use capi_testkit::server::auth::{Attributes, Identity, forbidden};
//!
//! let sa = Identity::service_account("default", "p");
//! let list = Attributes::from_request("GET", "/api/v1/namespaces/default/configmaps", &HashMap::new());
//! let e = forbidden(&sa, &list, "");
//! assert_eq!(e.code, 403);
//! assert_eq!(
//!     e.message,
//!     r#"configmaps is forbidden: User "system:serviceaccount:default:p" cannot list resource "configmaps" in API group "" in the namespace "default""#
//! );
//! ```

use serde_json::json;

use super::attributes::Attributes;
use super::identity::Identity;
use crate::gofmt::quote;
use crate::server::errors::ApiError;

/// `User "<name>" cannot <verb> resource "<resource[/sub]>" in API group "<g>" in the namespace
/// "<ns>"` (or `at the cluster scope`; `cannot <verb> path "<path>"` for non-resource requests).
fn message(user: &Identity, attrs: &Attributes) -> String {
    let name = quote(user.name());
    match attrs {
        Attributes::NonResource { verb, path } => {
            format!("User {name} cannot {verb} path {}", quote(path))
        }
        Attributes::Resource(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", quote(&r.namespace))
            };
            format!(
                "User {name} cannot {} resource {} in API group {} {scope}",
                r.verb,
                quote(&resource),
                quote(&r.group)
            )
        }
    }
}

/// The 403 for `user` asking `attrs`; `reason` (the authorizer's, may be empty) is appended.
pub fn forbidden(user: &Identity, attrs: &Attributes, reason: &str) -> ApiError {
    let mut err = message(user, attrs);
    if !reason.is_empty() {
        err = format!("{err}: {reason}");
    }
    let (message, details) = match attrs {
        Attributes::NonResource { .. } => (format!("forbidden: {err}"), json!({})),
        Attributes::Resource(r) => {
            let qualified = if r.group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.group)
            };
            let mut details = json!({"kind": r.resource});
            if !r.group.is_empty() {
                details["group"] = json!(r.group);
            }
            let message = if r.name.is_empty() {
                format!("{qualified} is forbidden: {err}")
            } else {
                details["name"] = json!(r.name);
                format!("{qualified} {} is forbidden: {err}", quote(&r.name))
            };
            (message, details)
        }
    };
    ApiError::forbidden(message, Some(details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn attrs(method: &str, path: &str) -> Attributes {
        Attributes::from_request(method, path, &HashMap::new())
    }

    #[test]
    fn named_subresources_and_cluster_scope_are_worded_as_upstream() {
        let sa = Identity::service_account("default", "p");
        let e = forbidden(
            &sa,
            &attrs(
                "GET",
                "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/machines/m1/status",
            ),
            "",
        );
        assert_eq!(
            e.message,
            r#"machines.cluster.x-k8s.io "m1" is forbidden: User "system:serviceaccount:default:p" cannot get resource "machines/status" in API group "cluster.x-k8s.io" in the namespace "default""#
        );
        assert_eq!(
            e.details,
            Some(json!({"group": "cluster.x-k8s.io", "kind": "machines", "name": "m1"}))
        );
        let e = forbidden(&sa, &attrs("GET", "/api/v1/namespaces"), "RBAC: x");
        assert_eq!(
            e.message,
            r#"namespaces is forbidden: User "system:serviceaccount:default:p" cannot list resource "namespaces" in API group "" at the cluster scope: RBAC: x"#
        );
        assert_eq!(e.details, Some(json!({"kind": "namespaces"})));
        let e = forbidden(&Identity::anonymous(), &attrs("GET", "/metrics"), "");
        assert_eq!(
            e.message,
            r#"forbidden: User "system:anonymous" cannot get path "/metrics""#
        );
        assert_eq!(e.details, Some(json!({})));
    }

    #[test]
    fn quoting_is_gos() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
