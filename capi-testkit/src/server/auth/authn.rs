//! Authentication: bearer tokens the server issued, mapped to identities.
//!
//! As kube-apiserver's bearer-token authenticator chained with the anonymous one: a request
//! without an `Authorization: Bearer` header is anonymous, a known token is its identity, and an
//! unknown token fails with 401 (anonymous is not tried then). Tokens are never logged.
//!
//! ```
//! use capi_testkit::server::auth::{Identity, Tokens};
//!
//! let tokens = Tokens::default();
//! let sa = Identity::service_account("default", "p");
//! let token = tokens.issue(&sa);
//! assert_eq!(tokens.issue(&sa), token, "one token per identity");
//! assert_eq!(tokens.lookup(&token), Some(sa));
//! assert_eq!(tokens.lookup("guessed"), None);
//! ```

use std::collections::HashMap;
use std::sync::RwLock;

use axum::http::{HeaderMap, header};

use super::identity::Identity;
use crate::server::errors::ApiError;

/// The credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    /// No bearer token (no `Authorization` header, or another scheme): anonymous.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
}

impl<'a> Credential<'a> {
    /// The bearer token of the request, parsed as upstream's `bearertoken` authenticator does.
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::None;
        };
        let mut parts = value.trim().splitn(3, ' ');
        match (parts.next(), parts.next()) {
            (Some(scheme), Some(token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() =>
            {
                Self::Bearer(token)
            }
            _ => Self::None,
        }
    }
}

/// Issued tokens and whom they stand for.
#[derive(Default)]
pub struct Tokens {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    by_token: HashMap<String, Identity>,
    by_identity: HashMap<Identity, String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .table
            .read()
            .map(|t| t.by_token.len())
            .unwrap_or_default();
        f.debug_struct("Tokens").field("issued", &n).finish()
    }
}

impl Tokens {
    /// The token for `identity`, issued on first use (the same one afterwards).
    pub fn issue(&self, identity: &Identity) -> String {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = t.by_identity.get(identity) {
            return token.clone();
        }
        let token = new_token();
        t.by_token.insert(token.clone(), identity.clone());
        t.by_identity.insert(identity.clone(), token.clone());
        token
    }

    /// Whom `token` was issued to.
    pub fn lookup(&self, token: &str) -> Option<Identity> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_token
            .get(token)
            .cloned()
    }

    /// The identity of a request: `Ok(None)` without credentials, 401 for an unknown token.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        match Credential::of(headers) {
            Credential::None => Ok(None),
            Credential::Bearer(token) => match self.lookup(token) {
                Some(identity) => Ok(Some(identity)),
                None => {
                    tracing::debug!("request with an unknown bearer token: 401");
                    Err(unauthorized())
                }
            },
        }
    }
}

/// 401 as upstream writes it (`apierrors.NewUnauthorized("Unauthorized")`).
pub(crate) fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized",
        message: "Unauthorized".to_owned(),
        details: None,
    }
}

/// 32 unpredictable bytes, hex: std's `RandomState` is seeded from the OS per thread.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(64);
    for i in 0..4u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn only_bearer_tokens_are_credentials() {
        assert_eq!(Credential::of(&HeaderMap::new()), Credential::None);
        assert_eq!(Credential::of(&headers("Basic YTpi")), Credential::None);
        assert_eq!(Credential::of(&headers("Bearer")), Credential::None);
        assert_eq!(
            Credential::of(&headers("bearer abc")),
            Credential::Bearer("abc")
        );
        assert_eq!(
            Credential::of(&headers(" Bearer abc ")),
            Credential::Bearer("abc")
        );
    }

    #[test]
    fn unknown_tokens_are_401_and_missing_ones_anonymous() {
        let t = Tokens::default();
        let token = t.issue(&Identity::user("jane"));
        assert_eq!(t.authenticate(&HeaderMap::new()), Ok(None));
        assert_eq!(
            t.authenticate(&headers(&format!("Bearer {token}"))),
            Ok(Some(Identity::user("jane")))
        );
        let err = t.authenticate(&headers("Bearer nope")).err();
        assert_eq!(
            err.map(|e| e.status()),
            Some(
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
            )
        );
    }

    #[test]
    fn tokens_differ_between_identities() {
        let t = Tokens::default();
        assert_ne!(t.issue(&Identity::user("a")), t.issue(&Identity::user("b")));
        assert_eq!(new_token().len(), 64);
    }
}
