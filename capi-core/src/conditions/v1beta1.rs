//! CAPI v1beta1 condition lists (with severity): set, get, mark, delete; conversion to them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::{ConditionSeverity, V1Beta1Condition, now, status};

/// The list type v1beta1 conditions live in.
pub type Conditions = Option<Vec<V1Beta1Condition>>;

/// The condition of type `type_`.
pub fn get<'a>(list: &'a Conditions, type_: &str) -> Option<&'a V1Beta1Condition> {
    list.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// Whether `type_` is present with status `True`.
pub fn is_true(list: &Conditions, type_: &str) -> bool {
    get(list, type_).is_some_and(|c| c.status == status::TRUE)
}

/// Whether `type_` is present with status `False`.
pub fn is_false(list: &Conditions, type_: &str) -> bool {
    get(list, type_).is_some_and(|c| c.status == status::FALSE)
}

fn same_state(a: &V1Beta1Condition, b: &V1Beta1Condition) -> bool {
    a.status == b.status
        && a.reason == b.reason
        && a.severity == b.severity
        && a.message == b.message
}

/// Sets `condition` as upstream's v1beta1 `conditions.Set`: `lastTransitionTime` kept unless the
/// state (status, reason, severity, message) changes; `Ready` first, then alphabetical.
pub fn set(list: &mut Conditions, mut condition: V1Beta1Condition) {
    let items = list.get_or_insert_with(Vec::new);
    match items.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if same_state(existing, &condition) {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => items.push(condition),
    }
    items.sort_by(|a, b| (a.type_ != "Ready", &a.type_).cmp(&(b.type_ != "Ready", &b.type_)));
}

/// Sets `type_` to `True`.
pub fn mark_true(list: &mut Conditions, type_: &str) {
    set(
        list,
        V1Beta1Condition {
            type_: type_.to_owned(),
            status: status::TRUE.to_owned(),
            severity: None,
            last_transition_time: now(),
            reason: None,
            message: None,
        },
    );
}

/// Sets `type_` to `False` with a reason, severity and message.
pub fn mark_false(
    list: &mut Conditions,
    type_: &str,
    reason: &str,
    severity: ConditionSeverity,
    message: &str,
) {
    set(
        list,
        V1Beta1Condition {
            type_: type_.to_owned(),
            status: status::FALSE.to_owned(),
            severity: Some(severity),
            last_transition_time: now(),
            reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
            message: Some(message.to_owned()).filter(|m| !m.is_empty()),
        },
    );
}

/// Sets `type_` to `Unknown`.
pub fn mark_unknown(list: &mut Conditions, type_: &str, reason: &str, message: &str) {
    set(
        list,
        V1Beta1Condition {
            type_: type_.to_owned(),
            status: status::UNKNOWN.to_owned(),
            severity: None,
            last_transition_time: now(),
            reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
            message: Some(message.to_owned()).filter(|m| !m.is_empty()),
        },
    );
}

/// Removes `type_`; an emptied list becomes `None`.
pub fn delete(list: &mut Conditions, type_: &str) {
    if let Some(items) = list.as_mut() {
        items.retain(|c| c.type_ != type_);
        if items.is_empty() {
            *list = None;
        }
    }
}

/// A v1beta2 condition written for v1beta1 readers: a False condition gets severity
/// `severity_if_false` (v1beta2 has no severity), empty messages are omitted.
pub fn from_v1beta2(c: &Condition, severity_if_false: ConditionSeverity) -> V1Beta1Condition {
    V1Beta1Condition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        severity: (c.status == status::FALSE).then_some(severity_if_false),
        last_transition_time: c.last_transition_time.clone(),
        reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
        message: Some(c.message.clone()).filter(|m| !m.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_first_then_alphabetical() {
        let mut list = None;
        for t in ["B", "Ready", "A"] {
            mark_true(&mut list, t);
        }
        assert_eq!(
            list.unwrap()
                .iter()
                .map(|c| c.type_.as_str())
                .collect::<Vec<_>>(),
            ["Ready", "A", "B"]
        );
    }

    #[test]
    fn transition_time_moves_with_state() {
        let mut list = None;
        mark_false(&mut list, "Ready", "A", ConditionSeverity::Warning, "m");
        let old = super::super::truncate(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        if let Some(items) = list.as_mut() {
            items[0].last_transition_time = old.clone();
        }
        mark_false(&mut list, "Ready", "A", ConditionSeverity::Warning, "m");
        assert_eq!(get(&list, "Ready").unwrap().last_transition_time, old);
        mark_false(&mut list, "Ready", "A", ConditionSeverity::Error, "m");
        assert_ne!(get(&list, "Ready").unwrap().last_transition_time, old);
    }

    #[test]
    fn shapes_convert_both_ways() {
        let mut list = None;
        mark_false(&mut list, "Ready", "", ConditionSeverity::Info, "");
        let v2 = super::super::v1beta2::from_v1beta1(get(&list, "Ready").unwrap(), Some(3));
        assert_eq!(
            (
                v2.reason.as_str(),
                v2.message.as_str(),
                v2.observed_generation
            ),
            ("NoReasonReported", "", Some(3))
        );
        let back = from_v1beta2(&v2, ConditionSeverity::Warning);
        assert_eq!(back.severity, Some(ConditionSeverity::Warning));
        assert_eq!(back.reason.as_deref(), Some("NoReasonReported"));
    }
}
