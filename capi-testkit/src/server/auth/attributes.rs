//! What a request asks to do, in the authorizer's terms: upstream's `RequestInfoFactory`
//! (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
//!
//! `/api/v1/...` and `/apis/<group>/<version>/...` with a resource are resource requests; every
//! other path (`/healthz`, `/version`, `/api`, `/apis/<group>/<version>`, `/openapi/...`) is a
//! non-resource request whose verb is the lower-cased HTTP method. The verb of a resource
//! request comes from the method: GET on a collection is `list` (`watch` with `?watch=true`),
//! DELETE on a collection `deletecollection`; a list or watch with the field selector
//! `metadata.name=<name>` names that object, so `resourceNames` rules apply to it.
//!
//! ```
//! use std::collections::HashMap;
//! use capi_testkit::server::auth::{Attributes, ResourceAttributes};
//!
//! let status = Attributes::from_request(
//!     "PATCH",
//!     "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/machines/m1/status",
//!     &HashMap::new(),
//! );
//! let Attributes::Resource(r) = &status else { panic!("a resource request") };
//! assert_eq!((r.verb.as_str(), r.group.as_str(), r.resource.as_str()), ("patch", "cluster.x-k8s.io", "machines"));
//! assert_eq!((r.subresource.as_str(), r.name.as_str(), r.namespace.as_str()), ("status", "m1", "default"));
//!
//! let watch = HashMap::from([("watch".to_owned(), "true".to_owned())]);
//! assert_eq!(Attributes::from_request("GET", "/api/v1/configmaps", &watch).verb(), "watch");
//! assert!(matches!(Attributes::from_request("GET", "/healthz", &HashMap::new()), Attributes::NonResource { .. }));
//! ```

use std::collections::HashMap;

/// A resource request: verb, group, version, resource, subresource, namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, …
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`, `scale`, …), `""` for none.
    pub subresource: String,
    /// Namespace, `""` for cluster scope.
    pub namespace: String,
    /// Object name, `""` for collections.
    pub name: String,
}

/// A request as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request for an API resource.
    Resource(ResourceAttributes),
    /// Any other path.
    NonResource {
        /// The lower-cased HTTP method (`get`, `post`, …).
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// Namespace subresources: `/api/v1/namespaces/<ns>/<this>` is the namespace's, not a resource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl Attributes {
    /// The attributes of an HTTP request (`query`: its decoded query parameters).
    pub fn from_request(method: &str, path: &str, query: &HashMap<String, String>) -> Self {
        let non_resource = || Self::NonResource {
            verb: method.to_ascii_lowercase(),
            path: path.to_owned(),
        };
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let rest = match parts.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => return non_resource(),
        };
        let (group, version, mut rest) = rest;
        let mut r = ResourceAttributes {
            group: group.to_owned(),
            version: version.to_owned(),
            ..ResourceAttributes::default()
        };
        let mut by_method = false;
        match rest {
            [special @ ("proxy" | "watch"), tail @ ..] => {
                if tail.is_empty() {
                    return Self::Resource(r);
                }
                r.verb = (*special).to_owned();
                rest = tail;
            }
            _ => {
                by_method = true;
                r.verb = match method {
                    "POST" => "create",
                    "GET" | "HEAD" => "get",
                    "PUT" => "update",
                    "PATCH" => "patch",
                    "DELETE" => "delete",
                    _ => "",
                }
                .to_owned();
            }
        }
        if let ["namespaces", ns, tail @ ..] = rest {
            r.namespace = (*ns).to_owned();
            if let [first, ..] = tail
                && !NAMESPACE_SUBRESOURCES.contains(first)
            {
                rest = tail;
            }
        }
        match rest {
            [resource, name, sub, ..] if r.verb != "proxy" => {
                r.resource = (*resource).to_owned();
                r.name = (*name).to_owned();
                r.subresource = (*sub).to_owned();
            }
            [resource, name, ..] => {
                r.resource = (*resource).to_owned();
                r.name = (*name).to_owned();
            }
            [resource] => r.resource = (*resource).to_owned(),
            [] => {}
        }
        if r.name.is_empty() && r.verb == "get" {
            let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
            r.verb = if watch { "watch" } else { "list" }.to_owned();
            if let Some(name) = query.get("fieldSelector").and_then(|s| exact_name(s)) {
                r.name = name.to_owned();
            }
        }
        if by_method && r.name.is_empty() && r.verb == "delete" {
            r.verb = "deletecollection".to_owned();
        }
        Self::Resource(r)
    }

    /// The verb.
    pub fn verb(&self) -> &str {
        match self {
            Self::Resource(r) => &r.verb,
            Self::NonResource { verb, .. } => verb,
        }
    }

    /// The namespace (`""` for cluster scope and non-resource requests).
    pub fn namespace(&self) -> &str {
        match self {
            Self::Resource(r) => &r.namespace,
            Self::NonResource { .. } => "",
        }
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `==`), if it is a valid
/// path segment, as upstream's `RequiresExactMatch("metadata.name")`.
fn exact_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let value = term
            .trim()
            .strip_prefix("metadata.name")?
            .trim_start()
            .strip_prefix('=')?;
        let value = value.strip_prefix('=').unwrap_or(value).trim();
        let valid = !value.is_empty()
            && value != "."
            && value != ".."
            && !value.contains('/')
            && !value.contains('%');
        valid.then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, path: &str, query: &[(&str, &str)]) -> Attributes {
        let q = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Attributes::from_request(method, path, &q)
    }

    fn res(method: &str, path: &str, query: &[(&str, &str)]) -> ResourceAttributes {
        match attrs(method, path, query) {
            Attributes::Resource(r) => r,
            other => ResourceAttributes {
                verb: format!("non-resource: {other:?}"),
                ..ResourceAttributes::default()
            },
        }
    }

    #[test]
    fn discovery_and_health_paths_are_non_resource() {
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/version",
            "/openapi/v3/api/v1",
        ] {
            assert!(
                matches!(attrs("GET", p, &[]), Attributes::NonResource { ref verb, .. } if verb == "get"),
                "{p}"
            );
        }
    }

    #[test]
    fn verbs_follow_the_method_and_the_collection() {
        assert_eq!(
            res("GET", "/api/v1/namespaces/d/configmaps", &[]).verb,
            "list"
        );
        assert_eq!(
            res("GET", "/api/v1/namespaces/d/configmaps", &[("watch", "1")]).verb,
            "watch"
        );
        assert_eq!(
            res("GET", "/api/v1/namespaces/d/configmaps/c", &[]).verb,
            "get"
        );
        assert_eq!(
            res("POST", "/api/v1/namespaces/d/configmaps", &[]).verb,
            "create"
        );
        assert_eq!(
            res("PUT", "/api/v1/namespaces/d/configmaps/c", &[]).verb,
            "update"
        );
        assert_eq!(
            res("PATCH", "/api/v1/namespaces/d/configmaps/c", &[]).verb,
            "patch"
        );
        assert_eq!(
            res("DELETE", "/api/v1/namespaces/d/configmaps/c", &[]).verb,
            "delete"
        );
        assert_eq!(
            res("DELETE", "/api/v1/namespaces/d/configmaps", &[]).verb,
            "deletecollection"
        );
        assert_eq!(
            res("GET", "/api/v1/watch/namespaces/d/configmaps", &[]).verb,
            "watch"
        );
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let r = res("GET", "/api/v1/namespaces/d", &[]);
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.namespace.as_str()),
            ("namespaces", "d", "d")
        );
        let r = res("PUT", "/api/v1/namespaces/d/finalize", &[]);
        assert_eq!(
            (r.resource.as_str(), r.subresource.as_str()),
            ("namespaces", "finalize")
        );
        let r = res("GET", "/api/v1/namespaces", &[]);
        assert_eq!((r.verb.as_str(), r.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn a_name_field_selector_names_the_object() {
        let r = res(
            "GET",
            "/api/v1/namespaces/d/configmaps",
            &[("fieldSelector", "metadata.name=c1")],
        );
        assert_eq!(r.name, "c1");
        let r = res(
            "GET",
            "/api/v1/namespaces/d/configmaps",
            &[("fieldSelector", "a=b,metadata.name==c2")],
        );
        assert_eq!(r.name, "c2");
        let r = res(
            "GET",
            "/api/v1/namespaces/d/configmaps",
            &[("fieldSelector", "metadata.name!=c1")],
        );
        assert_eq!(r.name, "");
    }
}
