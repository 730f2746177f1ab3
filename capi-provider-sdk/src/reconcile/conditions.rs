//! The conditions the generated reconcilers own: `Ready` and `Paused`.

use capi_core::conditions::v1beta2;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

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
    if status {
        v1beta2::mark_true(list, type_, reason, message, generation);
    } else {
        v1beta2::mark_false(list, type_, reason, message, generation);
    }
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
