//! The conditions the generated reconcilers own: `Ready` and `Paused`, written in the shape of
//! the author's contract status (see [`crate::resource::ContractStatus`]).

use capi_core::conditions::{ConditionSeverity, v1beta2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::resource::{ContractCondition, ContractStatus};

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

/// Sets `Ready` wherever the status's contract keeps it; `severity` is what a False one gets in
/// the CAPI v1beta1 shape (`Info` for waits and work in progress, `Error` for terminal failures).
pub(crate) fn set_ready<S: ContractStatus + ?Sized>(
    status: &mut S,
    ready: bool,
    reason: &str,
    message: &str,
    severity: ConditionSeverity,
    generation: Option<i64>,
) {
    status.set_condition(&ContractCondition {
        type_: "Ready",
        status: ready,
        reason,
        message,
        severity,
        observed_generation: generation,
    });
}

/// Sets `Paused`: True with the causes as message, or False with reason `NotPaused`.
pub(crate) fn set_paused<S: ContractStatus + ?Sized>(
    status: &mut S,
    message: Option<&str>,
    generation: Option<i64>,
) {
    status.set_condition(&ContractCondition {
        type_: "Paused",
        status: message.is_some(),
        reason: if message.is_some() {
            "Paused"
        } else {
            "NotPaused"
        },
        message: message.unwrap_or(""),
        severity: ConditionSeverity::Info,
        observed_generation: generation,
    });
}

/// For readers of the v1beta1 contract: `status.ready`, and the SDK's conditions copied into
/// `status.deprecated.v1beta1.conditions` in the CAPI v1beta1 shape (v1beta2 conditions have no
/// severity: False ones get `Info`).
pub(crate) fn mirror_v1beta1(
    current: &Option<Vec<Condition>>,
    deprecated: &mut Option<capi_core::contract::fields::DeprecatedStatus>,
    provisioned: bool,
    ready: &mut Option<bool>,
) {
    *ready = Some(provisioned || v1beta2::is_true(current, "Ready"));
    let v1 = deprecated
        .get_or_insert_with(Default::default)
        .v1beta1
        .get_or_insert_with(Default::default);
    for c in current
        .iter()
        .flatten()
        .filter(|c| OWNED.contains(&c.type_.as_str()))
    {
        let severity = capi_core::conditions::ConditionSeverity::Info;
        let wanted = capi_core::conditions::v1beta1::from_v1beta2(c, severity);
        let same = capi_core::conditions::v1beta1::get(&v1.conditions, &c.type_).is_some_and(|e| {
            e.status == wanted.status
                && e.reason == wanted.reason
                && e.message == wanted.message
                && e.severity == wanted.severity
        });
        if !same {
            capi_core::conditions::v1beta1::set(&mut v1.conditions, wanted);
        }
    }
}
