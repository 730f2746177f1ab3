//! `metav1.Condition` lists: set, get, mark, delete; conversion from the v1beta1 shape.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::{V1Beta1Condition, now, order_key, reasons, status};

/// The list type conditions live in (`status.conditions: Option<Vec<Condition>>`).
pub type Conditions = Option<Vec<Condition>>;

/// The condition of type `type_`.
pub fn get<'a>(list: &'a Conditions, type_: &str) -> Option<&'a Condition> {
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

/// Whether `type_` is absent or `Unknown`.
pub fn is_unknown(list: &Conditions, type_: &str) -> bool {
    get(list, type_).is_none_or(|c| c.status == status::UNKNOWN)
}

/// Sets `condition`, keeping the existing `lastTransitionTime` unless the status changes (a new
/// condition gets now, truncated to seconds), and sorts the list as upstream does. An empty
/// reason becomes `NoReasonReported`: the API server rejects an empty one.
pub fn set(list: &mut Conditions, mut condition: Condition) {
    if condition.reason.is_empty() {
        condition.reason = reasons::NO_REASON_REPORTED.to_owned();
    }
    let items = list.get_or_insert_with(Vec::new);
    match items.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => items.push(condition),
    }
    items.sort_by(|a, b| order_key(&a.type_).cmp(&order_key(&b.type_)));
}

fn mark(
    list: &mut Conditions,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(
        list,
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: now(),
        },
    );
}

/// Sets `type_` to `True` with `reason` and `message`, stamping `generation`.
pub fn mark_true(
    list: &mut Conditions,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    mark(list, type_, status::TRUE, reason, message, generation);
}

/// Sets `type_` to `False`.
pub fn mark_false(
    list: &mut Conditions,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    mark(list, type_, status::FALSE, reason, message, generation);
}

/// Sets `type_` to `Unknown`.
pub fn mark_unknown(
    list: &mut Conditions,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    mark(list, type_, status::UNKNOWN, reason, message, generation);
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

/// A v1beta1 condition read as a v1beta2 one, as core's `UnstructuredGetAll` does: an empty
/// reason becomes `NoReasonReported`, a missing message `""`; the severity is dropped.
pub fn from_v1beta1(c: &V1Beta1Condition, generation: Option<i64>) -> Condition {
    Condition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| reasons::NO_REASON_REPORTED.to_owned()),
        message: c.message.clone().unwrap_or_default(),
        observed_generation: generation,
        last_transition_time: c.last_transition_time.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn transition_time_moves_only_with_status() {
        let mut list = None;
        mark_false(&mut list, "Ready", "A", "", Some(1));
        let old = k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap();
        if let Some(items) = list.as_mut() {
            items[0].last_transition_time = super::super::truncate(old);
        }
        mark_false(&mut list, "Ready", "B", "msg", Some(2));
        let c = get(&list, "Ready").unwrap();
        assert_eq!(
            (
                c.reason.as_str(),
                c.message.as_str(),
                c.observed_generation,
                c.last_transition_time.0
            ),
            ("B", "msg", Some(2), old)
        );
        mark_true(&mut list, "Ready", "Ready", "", Some(2));
        assert_ne!(get(&list, "Ready").unwrap().last_transition_time.0, old);
    }

    #[test]
    fn order_is_upstreams() {
        let mut list = None;
        for t in [
            "Deleting",
            "Zeta",
            "Paused",
            "Alpha",
            "Ready",
            "Available",
            "InfrastructureReady",
        ] {
            mark_true(&mut list, t, "R", "", None);
        }
        let types: Vec<_> = list.unwrap().into_iter().map(|c| c.type_).collect();
        assert_eq!(
            types,
            [
                "Available",
                "Ready",
                "InfrastructureReady",
                "Alpha",
                "Zeta",
                "Paused",
                "Deleting"
            ]
        );
    }

    #[test]
    fn message_is_always_serialized_and_reason_never_empty() {
        let mut list = None;
        mark_false(&mut list, "Ready", "", "", None);
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json[0]["message"], "");
        assert_eq!(json[0]["reason"], "NoReasonReported");
    }

    proptest! {
        #[test]
        fn setting_twice_changes_nothing(ops in prop::collection::vec(("[A-Z][a-z]{0,6}", prop::sample::select(vec!["True", "False", "Unknown"]), "[A-Z][a-zA-Z]{0,8}"), 0..12)) {
            let mut list = None;
            for (t, s, r) in &ops {
                mark(&mut list, t, s, r, "", Some(1));
            }
            let once = list.clone();
            for (t, s, r) in &ops {
                mark(&mut list, t, s, r, "", Some(1));
            }
            // Re-applying the same sequence only re-applies the last state of each type.
            let types = |l: &Conditions| l.as_ref().map(|v| v.iter().map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone())).collect::<Vec<_>>());
            prop_assert_eq!(types(&once), types(&list));
            let sorted = list.clone().unwrap_or_default();
            let mut resorted = sorted.clone();
            resorted.sort_by(|a, b| order_key(&a.type_).cmp(&order_key(&b.type_)));
            prop_assert_eq!(sorted, resorted);
        }
    }
}
