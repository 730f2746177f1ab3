//! PLACEHOLDER until the conditions module lands.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
/// CAPI v1beta1 condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1Beta1Condition {
    /// type
    #[serde(rename = "type")]
    pub type_: String,
    /// status
    pub status: String,
    /// severity
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// ltt
    pub last_transition_time: Time,
    /// reason
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// message
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
