//! Provider IDs: `<cloud>://<path>`, the string that ties a Machine to its Node.
//!
//! CAPI finds a Machine's Node by exact string match of `spec.providerID` with the Node's
//! `spec.providerID`, so a [`ProviderId`] keeps the text exactly as given and only checks what
//! CAPI's former parser (`noderefutil.ProviderID`) and the CRD schema (1..512 characters)
//! require: a cloud name, `://`, and a non-empty last path segment (the instance ID).
//!
//! ```
//! use capi_core::provider_id::ProviderId;
//!
//! let id: ProviderId = "aws:///us-east-1a/i-0123456789".parse().unwrap();
//! assert_eq!(id.cloud(), "aws");
//! assert_eq!(id.id(), "i-0123456789");
//! assert_eq!(id.to_string(), "aws:///us-east-1a/i-0123456789");
//! assert_eq!(ProviderId::new("docker", "//c1-md-0").unwrap().as_str(), "docker:////c1-md-0");
//! assert!("no-scheme".parse::<ProviderId>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// The longest provider ID the CRDs accept.
pub const MAX_LEN: usize = 512;

/// Why a string is not a provider ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIdError {
    /// Empty string.
    #[error("provider ID is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("provider ID is {0} characters long, at most {MAX_LEN} are allowed")]
    TooLong(usize),
    /// No `://` separator.
    #[error("provider ID {0:?} has no \"<cloud>://\" prefix")]
    MissingScheme(String),
    /// The cloud name is empty or has characters other than letters, digits, `-`, `_`, `.`.
    #[error("provider ID {0:?} has an invalid cloud name")]
    InvalidCloud(String),
    /// Nothing after the last `/`.
    #[error("provider ID {0:?} has no instance ID after the last '/'")]
    MissingId(String),
    /// Contains whitespace.
    #[error("provider ID {0:?} contains whitespace")]
    Whitespace(String),
}

/// A validated provider ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId {
    raw: String,
    cloud_end: usize,
    id_start: usize,
}

impl ProviderId {
    /// `<cloud>://<path>`.
    pub fn new(cloud: &str, path: &str) -> Result<Self, ProviderIdError> {
        format!("{cloud}://{path}").parse()
    }

    /// The whole ID, as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The cloud name before `://`.
    pub fn cloud(&self) -> &str {
        &self.raw[..self.cloud_end]
    }

    /// The instance ID: the last path segment.
    pub fn id(&self) -> &str {
        &self.raw[self.id_start..]
    }
}

impl FromStr for ProviderId {
    type Err = ProviderIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ProviderIdError::Empty);
        }
        let len = s.chars().count();
        if len > MAX_LEN {
            return Err(ProviderIdError::TooLong(len));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(ProviderIdError::Whitespace(s.to_owned()));
        }
        let cloud_end = s
            .find("://")
            .ok_or_else(|| ProviderIdError::MissingScheme(s.to_owned()))?;
        let cloud = &s[..cloud_end];
        if cloud.is_empty()
            || !cloud
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ProviderIdError::InvalidCloud(s.to_owned()));
        }
        let id_start = s.rfind('/').map_or(s.len(), |i| i + 1);
        if id_start >= s.len() || id_start <= cloud_end + 2 {
            return Err(ProviderIdError::MissingId(s.to_owned()));
        }
        Ok(Self {
            raw: s.to_owned(),
            cloud_end,
            id_start,
        })
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl serde::Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upstream_examples_parse() {
        for (s, cloud, id) in [
            ("aws:///us-east-1a/i-0123", "aws", "i-0123"),
            (
                "docker:////c1-control-plane-abc",
                "docker",
                "c1-control-plane-abc",
            ),
            ("in-memory://m1", "in-memory", "m1"),
            (
                "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1",
                "azure",
                "vm-1",
            ),
            (
                "vsphere://42374d3d-5b51-4e6c-b1a3-9e4e2c2d4f5e",
                "vsphere",
                "42374d3d-5b51-4e6c-b1a3-9e4e2c2d4f5e",
            ),
        ] {
            let p: ProviderId = s.parse().unwrap();
            assert_eq!((p.cloud(), p.id(), p.as_str()), (cloud, id, s));
        }
    }

    #[test]
    fn invalid_ids_have_typed_errors() {
        assert_eq!("".parse::<ProviderId>(), Err(ProviderIdError::Empty));
        assert!(matches!(
            "aws:/x".parse::<ProviderId>(),
            Err(ProviderIdError::MissingScheme(_))
        ));
        assert!(matches!(
            "://x".parse::<ProviderId>(),
            Err(ProviderIdError::InvalidCloud(_))
        ));
        assert!(matches!(
            "aws:///zone/".parse::<ProviderId>(),
            Err(ProviderIdError::MissingId(_))
        ));
        assert!(matches!(
            "aws://".parse::<ProviderId>(),
            Err(ProviderIdError::MissingId(_))
        ));
        assert!(matches!(
            "a b://x".parse::<ProviderId>(),
            Err(ProviderIdError::Whitespace(_))
        ));
        assert!(matches!(
            format!("a://{}", "x".repeat(600)).parse::<ProviderId>(),
            Err(ProviderIdError::TooLong(_))
        ));
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(cloud in "[a-z][a-z0-9-]{0,10}", segs in prop::collection::vec("[a-zA-Z0-9._-]{0,8}", 0..4), id in "[a-zA-Z0-9._-]{1,12}") {
            let path = segs.iter().map(|s| format!("{s}/")).collect::<String>() + &id;
            let p = ProviderId::new(&cloud, &path).unwrap();
            prop_assert_eq!(p.cloud(), cloud.as_str());
            prop_assert_eq!(p.id(), id.as_str());
            let back: ProviderId = p.to_string().parse().unwrap();
            prop_assert_eq!(back, p);
        }

        #[test]
        fn parsing_never_panics(s in any::<String>()) {
            let _ = s.parse::<ProviderId>();
        }
    }
}
