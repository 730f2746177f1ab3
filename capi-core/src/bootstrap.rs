//! Bootstrap data: what a bootstrap provider (kubeadm, ...) leaves for the infrastructure
//! provider in the Secret named by `Machine.spec.bootstrap.dataSecretName` (capi-contract.md 3.3).
//!
//! The secret's `value` key holds the payload; `format` (optional) says how to read it and
//! defaults to `cloud-config`. The payload is a secret: [`BootstrapData`]'s `Debug` never shows it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use capi_core::bootstrap::{BootstrapData, Format};
//! use k8s_openapi::ByteString;
//! use k8s_openapi::api::core::v1::Secret;
//!
//! let secret = Secret {
//!     data: Some(BTreeMap::from([("value".to_string(), ByteString(b"#cloud-config\n".to_vec()))])),
//!     ..Secret::default()
//! };
//! let data = BootstrapData::from_secret(&secret).unwrap();
//! assert_eq!(data.format, Format::CloudConfig);
//! assert_eq!(data.value, b"#cloud-config\n");
//! assert!(!format!("{data:?}").contains("cloud-config\\n"));
//! ```

use std::fmt;

use k8s_openapi::api::core::v1::Secret;

/// The secret key holding the payload.
pub const VALUE_KEY: &str = "value";
/// The secret key holding the format.
pub const FORMAT_KEY: &str = "format";
/// The Secret type bootstrap providers use.
pub const SECRET_TYPE: &str = "cluster.x-k8s.io/secret";

/// How to read the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// cloud-init user data (the default when `format` is absent).
    #[default]
    CloudConfig,
    /// An Ignition JSON document.
    Ignition,
}

impl Format {
    /// The value written in the secret.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloudConfig => "cloud-config",
            Self::Ignition => "ignition",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a secret does not hold usable bootstrap data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// The Machine has no `spec.bootstrap.dataSecretName` yet.
    #[error("the Machine has no bootstrap data secret name yet")]
    NoSecretName,
    /// The secret has no `value` key.
    #[error("bootstrap data secret {0:?} has no `value` key")]
    MissingValue(String),
    /// The `format` key holds something other than `cloud-config` or `ignition`.
    #[error(
        "bootstrap data secret {secret:?} has unknown format {format:?} (expected cloud-config or ignition)"
    )]
    UnknownFormat {
        /// The secret's name.
        secret: String,
        /// The format found.
        format: String,
    },
}

/// A machine's bootstrap data.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapData {
    /// The payload (user data or an Ignition document).
    pub value: Vec<u8>,
    /// How to read it.
    pub format: Format,
}

impl fmt::Debug for BootstrapData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapData")
            .field(
                "value",
                &format_args!("<redacted, {} bytes>", self.value.len()),
            )
            .field("format", &self.format)
            .finish()
    }
}

impl BootstrapData {
    /// Reads the data from the bootstrap secret (`data`, or `stringData` when a client wrote it
    /// without encoding).
    pub fn from_secret(secret: &Secret) -> Result<Self, BootstrapError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let get = |key: &str| -> Option<Vec<u8>> {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|d| d.get(key))
                        .map(|s| s.clone().into_bytes())
                })
        };
        let value = get(VALUE_KEY).ok_or_else(|| BootstrapError::MissingValue(name.clone()))?;
        let format = match get(FORMAT_KEY) {
            None => Format::CloudConfig,
            Some(f) => match f.as_slice() {
                b"cloud-config" | b"" => Format::CloudConfig,
                b"ignition" => Format::Ignition,
                other => {
                    return Err(BootstrapError::UnknownFormat {
                        secret: name,
                        format: String::from_utf8_lossy(other).into_owned(),
                    });
                }
            },
        };
        Ok(Self { value, format })
    }

    /// The payload as text, when it is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(pairs: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("m1-bootstrap".into()),
                ..Default::default()
            },
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn format_defaults_and_parses() {
        assert_eq!(
            BootstrapData::from_secret(&secret(&[("value", b"x")]))
                .unwrap()
                .format,
            Format::CloudConfig
        );
        assert_eq!(
            BootstrapData::from_secret(&secret(&[("value", b"{}"), ("format", b"ignition")]))
                .unwrap()
                .format,
            Format::Ignition
        );
        assert_eq!(
            BootstrapData::from_secret(&secret(&[("value", b"x"), ("format", b"yaml")])),
            Err(BootstrapError::UnknownFormat {
                secret: "m1-bootstrap".into(),
                format: "yaml".into()
            })
        );
        assert_eq!(
            BootstrapData::from_secret(&secret(&[])),
            Err(BootstrapError::MissingValue("m1-bootstrap".into()))
        );
    }

    #[test]
    fn debug_never_shows_the_payload() {
        let d = BootstrapData::from_secret(&secret(&[("value", b"TOKEN=s3cr3t")])).unwrap();
        assert!(!format!("{d:?}").contains("s3cr3t"));
    }
}
