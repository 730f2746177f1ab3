//! The severity of a v1beta1 condition, kept losslessly.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How bad a False v1beta1 condition is. Any string the API accepts survives a round trip:
/// unknown values are kept in [`ConditionSeverity::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConditionSeverity {
    /// `Error`: the object cannot progress.
    Error,
    /// `Warning`: something is wrong but may resolve.
    Warning,
    /// `Info`: informational.
    Info,
    /// `""`: no severity (True or Unknown conditions).
    None,
    /// Anything else, as written.
    Other(String),
}

impl ConditionSeverity {
    /// The string written in JSON.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Error => "Error",
            Self::Warning => "Warning",
            Self::Info => "Info",
            Self::None => "",
            Self::Other(s) => s,
        }
    }

    /// Priority for summaries: Error before Warning before Info before the rest.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Error => 0,
            Self::Warning => 1,
            Self::Info => 2,
            _ => 3,
        }
    }
}

impl From<&str> for ConditionSeverity {
    fn from(s: &str) -> Self {
        match s {
            "Error" => Self::Error,
            "Warning" => Self::Warning,
            "Info" => Self::Info,
            "" => Self::None,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Serialize for ConditionSeverity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConditionSeverity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from(String::deserialize(d)?.as_str()))
    }
}

impl JsonSchema for ConditionSeverity {
    fn schema_name() -> Cow<'static, str> {
        "ConditionSeverity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "maxLength": 32})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_round_trips() {
        for s in ["Error", "Warning", "Info", "", "Fatal"] {
            let sev: ConditionSeverity = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(serde_json::to_value(&sev).unwrap(), serde_json::json!(s));
        }
    }
}
