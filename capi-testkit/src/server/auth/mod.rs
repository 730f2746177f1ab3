//! Authentication and authorization: bearer tokens per identity, RBAC enforced from the
//! stored Roles, ClusterRoles and bindings, impersonation, and the self-review endpoints.
//!
//! Off by default: without enforcement every request is allowed (as
//! `--authorization-mode=AlwaysAllow`), though tokens still authenticate (an unknown one is a
//! 401) so that reviews and `kubectl auth whoami` name the right identity. With
//! [`Auth::set_enforcing`] (`TestEnv::builder().enforce_rbac(true)`, `capi-testkit serve --rbac`)
//! requests are authorized as kube-apiserver's RBAC authorizer does, and the administrator
//! (`system:masters`) may do anything.
//!
//! # Requests without credentials
//!
//! client-go (kubectl, controller-runtime) sends no credentials at all to a plain `http://`
//! server: it reads a kubeconfig's token only for TLS. So, as kube-apiserver's old insecure
//! port did, a request without credentials is the administrator by default
//! ([`Unauthenticated::Admin`]), and the kubeconfigs of other identities carry their token
//! (which kube-rs sends) *and* `as`/`as-groups` (which client-go turns into impersonation
//! headers, honoured because the requester is the administrator). Either way the request is
//! authorized as that identity. [`Unauthenticated::Anonymous`] gives upstream's secure-port
//! behaviour instead (`system:anonymous` in `system:unauthenticated`): that is what
//! [`TestEnv`](crate::env::TestEnv) and `capi-testkit serve` choose when they serve HTTPS (their
//! default), where client-go does send tokens, and their kubeconfigs then carry the token alone.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use capi_testkit::server::Server;
//! use capi_testkit::server::auth::Identity;
//!
//! let server = Server::new();
//! server.enable_rbac();
//! let token = server.auth().tokens().issue(&Identity::service_account("default", "p"));
//! assert!(!token.is_empty());
//! assert!(server.auth().is_enforcing());
//! # }
//! ```

mod attributes;
mod authn;
pub(crate) mod client;
mod forbidden;
mod identity;
mod impersonation;
mod policy;
mod rbac;
mod review_body;
mod reviews;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

pub use attributes::{Attributes, ResourceAttributes};
pub use authn::Tokens;
pub use forbidden::forbidden;
pub use identity::{ADMIN, ANONYMOUS, AUTHENTICATED, Identity, MASTERS, UNAUTHENTICATED};
pub use policy::default_policy;
pub use rbac::{Decision, PolicyRule, Rbac};

use super::store::Store;

/// Whom a request without credentials (no bearer token) acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unauthenticated {
    /// The administrator, as the insecure port of old kube-apiservers (the default: client-go
    /// sends no credentials over plain HTTP).
    #[default]
    Admin,
    /// `system:anonymous` in `system:unauthenticated`, as upstream's secure port.
    Anonymous,
}

/// The server's authentication and authorization settings.
#[derive(Debug)]
pub struct Auth {
    enforcing: AtomicBool,
    anonymous: AtomicBool,
    tokens: Tokens,
    admin_token: String,
}

impl Default for Auth {
    fn default() -> Self {
        let tokens = Tokens::default();
        let admin_token = tokens.issue(&Identity::admin());
        Self {
            enforcing: AtomicBool::new(false),
            anonymous: AtomicBool::new(false),
            tokens,
            admin_token,
        }
    }
}

impl Auth {
    /// Whether RBAC is enforced.
    pub fn is_enforcing(&self) -> bool {
        self.enforcing.load(Ordering::Relaxed)
    }

    /// Turns RBAC enforcement on or off (see [`crate::server::Server::enable_rbac`], which also
    /// creates the default ClusterRoles).
    pub fn set_enforcing(&self, on: bool) {
        self.enforcing.store(on, Ordering::Relaxed);
    }

    /// Whom requests without credentials act as.
    pub fn unauthenticated(&self) -> Unauthenticated {
        if self.anonymous.load(Ordering::Relaxed) {
            Unauthenticated::Anonymous
        } else {
            Unauthenticated::Admin
        }
    }

    /// Sets whom requests without credentials act as.
    pub fn set_unauthenticated(&self, who: Unauthenticated) {
        self.anonymous
            .store(who == Unauthenticated::Anonymous, Ordering::Relaxed);
    }

    /// The issued tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The administrator's token (what the default kubeconfig and client carry).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// The authorizer in force: everything allowed, or `system:masters` then RBAC.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authorizer<'a> {
    rbac: Option<Rbac<'a>>,
}

impl<'a> Authorizer<'a> {
    pub(crate) fn new(auth: &Auth, store: &'a Store) -> Self {
        Self {
            rbac: auth.is_enforcing().then(|| Rbac::new(store)),
        }
    }

    pub(crate) fn authorize(&self, user: &Identity, attrs: &Attributes) -> Decision {
        match &self.rbac {
            Some(rbac) if !user.is_privileged() => rbac.authorize(user, attrs),
            _ => Decision::allow(),
        }
    }

    pub(crate) fn rules_for(
        &self,
        user: &Identity,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        match &self.rbac {
            Some(rbac) => rbac.rules_for(user, namespace),
            None => (
                vec![
                    PolicyRule {
                        verbs: vec!["*".into()],
                        api_groups: vec!["*".into()],
                        resources: vec!["*".into()],
                        ..PolicyRule::default()
                    },
                    PolicyRule {
                        verbs: vec!["*".into()],
                        non_resource_urls: vec!["*".into()],
                        ..PolicyRule::default()
                    },
                ],
                Vec::new(),
            ),
        }
    }
}

/// The hook in front of every request: authentication, impersonation and authorization, then
/// the review endpoints. `Some` is the answer (401, 403, a review); `None` lets the request on.
pub(crate) fn gate(
    auth: &Auth,
    store: &Store,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Option<Response> {
    let user = match auth.tokens.authenticate(headers) {
        Ok(Some(user)) => user,
        Ok(None) => match auth.unauthenticated() {
            Unauthenticated::Admin => Identity::admin(),
            Unauthenticated::Anonymous => Identity::anonymous(),
        },
        Err(e) => return Some(e.into_response()),
    };
    if !auth.is_enforcing()
        && !reviews::may_be_review(uri.path())
        && !impersonation::requested(headers)
    {
        return None;
    }
    let authorizer = Authorizer::new(auth, store);
    let user = match impersonation::acting_as(&authorizer, user, headers) {
        Ok(u) => u,
        Err(e) => return Some(e.into_response()),
    };
    let attrs = Attributes::from_request(method.as_str(), uri.path(), params);
    let decision = authorizer.authorize(&user, &attrs);
    if !decision.allowed {
        tracing::debug!(
            user = user.name(),
            verb = attrs.verb(),
            path = uri.path(),
            "forbidden"
        );
        return Some(forbidden(&user, &attrs, &decision.reason).into_response());
    }
    reviews::serve(&authorizer, &user, &attrs, headers, body)
}

/// Creates the default ClusterRoles and bindings that are missing (see [`default_policy`]).
pub(crate) fn bootstrap(store: &Store) {
    policy::ensure_default_policy(store);
}
