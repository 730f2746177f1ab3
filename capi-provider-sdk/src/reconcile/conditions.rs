//! The conditions the generated reconcilers own: `Ready` and `Paused`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::interim;

/// The condition types the SDK writes; the patch helper lets them win conflicts.
pub(crate) const OWNED: [&str; 2] = ["Ready", "Paused"];

pub(crate) fn set(
    list: &mut Option<Vec<Condition>>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    interim::set_condition(list, type_, status, reason, message, generation);
}

pub(crate) fn set_ready(
    list: &mut Option<Vec<Condition>>,
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(list, "Ready", ready, reason, message, generation);
}
