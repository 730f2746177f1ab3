//! Who a request is from: a user name and groups, as kube-apiserver's `user.Info` (no uid or
//! extra fields).
//!
//! ```
//! use capi_testkit::server::auth::Identity;
//!
//! let sa = Identity::service_account("capi-system", "manager");
//! assert_eq!(sa.name(), "system:serviceaccount:capi-system:manager");
//! assert_eq!(
//!     sa.groups(),
//!     ["system:serviceaccounts", "system:serviceaccounts:capi-system", "system:authenticated"]
//! );
//! assert_eq!(sa.as_service_account(), Some(("capi-system", "manager")));
//! assert!(Identity::admin().is_privileged());
//! ```

/// The group every authenticated identity is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of requests without credentials.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group whose members bypass authorization (upstream's `user.SystemPrivilegedGroup`).
pub const MASTERS: &str = "system:masters";
/// The user name of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The user name of the server's administrator (the default kubeconfig and client).
pub const ADMIN: &str = "capi-testkit-admin";

const SA_PREFIX: &str = "system:serviceaccount:";

/// A user name and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    name: String,
    groups: Vec<String>,
}

impl Identity {
    /// A user in `system:authenticated` and no other group.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            groups: vec![AUTHENTICATED.to_owned()],
        }
    }

    /// A ServiceAccount: `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>` and `system:authenticated` (as its token would authenticate).
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("{SA_PREFIX}{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.to_owned(),
            ],
        }
    }

    /// The administrator: in `system:masters`, allowed everything whether RBAC is on or not.
    pub fn admin() -> Self {
        Self {
            name: ADMIN.to_owned(),
            groups: vec![MASTERS.to_owned(), AUTHENTICATED.to_owned()],
        }
    }

    /// `system:anonymous` in `system:unauthenticated`: a request without credentials.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
        }
    }

    /// A name with exactly these groups (nothing added).
    pub fn with_exact_groups(name: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            name: name.into(),
            groups,
        }
    }

    /// This identity with one more group (kept once).
    #[must_use]
    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        let group = group.into();
        if !self.groups.contains(&group) {
            self.groups.push(group);
        }
        self
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The groups.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Whether the identity is in `group`.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// In `system:masters`: authorization is skipped, as upstream's privileged-group authorizer does.
    pub fn is_privileged(&self) -> bool {
        self.has_group(MASTERS)
    }

    /// `(namespace, name)` when the user name is a ServiceAccount's.
    pub fn as_service_account(&self) -> Option<(&str, &str)> {
        split_service_account(&self.name)
    }
}

/// `system:serviceaccount:<ns>:<name>` → `(ns, name)` (upstream's `serviceaccount.SplitUsername`).
pub(crate) fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SA_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_split_only_when_well_formed() {
        assert_eq!(
            split_service_account("system:serviceaccount:a:b"),
            Some(("a", "b"))
        );
        assert_eq!(split_service_account("system:serviceaccount:a"), None);
        assert_eq!(split_service_account("system:serviceaccount::b"), None);
        assert_eq!(split_service_account("system:serviceaccount:a:b:c"), None);
        assert_eq!(split_service_account("jane"), None);
    }

    #[test]
    fn groups_are_kept_once() {
        let u = Identity::user("jane").in_group("dev").in_group("dev");
        assert_eq!(u.groups(), ["system:authenticated", "dev"]);
    }
}
