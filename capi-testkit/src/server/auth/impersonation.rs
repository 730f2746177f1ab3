//! Impersonation: `Impersonate-User` and `Impersonate-Group` headers, each checked as the verb
//! `impersonate` on `users`, `groups` or (for `system:serviceaccount:<ns>:<name>`) the
//! ServiceAccount, as upstream's `WithImpersonation` filter. `Impersonate-Uid` and
//! `Impersonate-Extra-*` are refused with 403 (this server keeps no uid or extra fields).
//!
//! Without `Impersonate-Group`, a ServiceAccount gets its fixed groups; every impersonated user
//! but `system:anonymous` is added to `system:authenticated` (unless a group given already
//! says authenticated or unauthenticated), `system:anonymous` to `system:unauthenticated`.

use axum::http::HeaderMap;

use super::Authorizer;
use super::attributes::{Attributes, ResourceAttributes};
use super::forbidden::forbidden;
use super::identity::{ANONYMOUS, AUTHENTICATED, Identity, UNAUTHENTICATED, split_service_account};
use crate::server::errors::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

fn impersonate(resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes::Resource(ResourceAttributes {
        verb: "impersonate".to_owned(),
        resource: resource.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        ..ResourceAttributes::default()
    })
}

/// Whether the request carries any impersonation header.
pub(crate) fn requested(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-"))
}

/// The identity the request acts as: `requester` itself without impersonation headers, else
/// the impersonated one if `requester` may impersonate it (403 otherwise).
pub(crate) fn acting_as(
    authorizer: &Authorizer<'_>,
    requester: Identity,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    let user = headers
        .get(USER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let groups: Vec<&str> = headers
        .get_all(GROUP)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let others = headers
        .keys()
        .any(|k| k.as_str() == UID || k.as_str().starts_with(EXTRA_PREFIX));
    if user.is_empty() && groups.is_empty() && !others {
        return Ok(requester);
    }
    if user.is_empty() {
        // Upstream answers an internal error: "requested [...] without impersonating a user".
        return Err(ApiError::internal(
            "Internal Server Error: impersonation headers without Impersonate-User",
        ));
    }
    let mut checks = Vec::new();
    let mut resolved_groups: Vec<String> = Vec::new();
    match split_service_account(user) {
        Some((ns, name)) => {
            checks.push(impersonate("serviceaccounts", ns, name));
            if groups.is_empty() {
                resolved_groups = vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        None => checks.push(impersonate("users", "", user)),
    }
    for g in &groups {
        checks.push(impersonate("groups", "", g));
        resolved_groups.push((*g).to_owned());
    }
    let impersonated = impersonated_groups(user, resolved_groups);
    if requester.name() == user && same_groups(requester.groups(), &impersonated) {
        // Acting as oneself (a kubeconfig with both a token and `as`): nothing to check.
        return Ok(requester);
    }
    for check in &checks {
        let decision = authorizer.authorize(&requester, check);
        if !decision.allowed {
            tracing::debug!(requester = requester.name(), user, "impersonation refused");
            return Err(forbidden(&requester, check, &decision.reason));
        }
    }
    if others {
        let check = impersonate("userextras", "", "");
        return Err(forbidden(
            &requester,
            &check,
            "capi-testkit does not impersonate uids or extra fields",
        ));
    }
    tracing::debug!(requester = requester.name(), user, "impersonating");
    Ok(Identity::with_exact_groups(user, impersonated))
}

/// The groups of the impersonated user: `system:authenticated` added (or
/// `system:unauthenticated` for `system:anonymous`) unless given.
fn impersonated_groups(user: &str, mut groups: Vec<String>) -> Vec<String> {
    if user == ANONYMOUS {
        if !groups.iter().any(|g| g == UNAUTHENTICATED) {
            groups.push(UNAUTHENTICATED.to_owned());
        }
    } else if !groups
        .iter()
        .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        groups.push(AUTHENTICATED.to_owned());
    }
    groups
}

fn same_groups(a: &[String], b: &[String]) -> bool {
    a.iter().all(|g| b.contains(g)) && b.iter().all(|g| a.contains(g))
}
