//! The patch helper: write only what a reconcile changed, in as few requests as possible.
//!
//! Modelled on Cluster API's `util/patch`: snapshot the object before the reconcile, compare
//! with the object after it, and send
//!
//! 1. one JSON merge patch of `metadata` and `spec` to the main resource (last writer wins per
//!    field, no resourceVersion), skipped when nothing there changed;
//! 2. one JSON merge patch of `status` to the status subresource, skipped when nothing there
//!    changed. When conditions changed, the request carries the `resourceVersion` of a fresh
//!    read and the conditions are merged onto that read condition by condition: a condition this
//!    controller owns always wins, one that someone else changed to another state meanwhile is a
//!    conflict, and a 409 is retried (up to [`PatchOptions::max_attempts`]).
//!
//! Upstream sends conditions in a request of their own; folding them into the status request
//! saves a write per reconcile and keeps the same conflict rules.
//!
//! ```
//! use capi_provider_sdk::patch::merge_diff;
//! use serde_json::json;
//!
//! let before = json!({"spec": {"a": 1, "b": 2}, "status": {"x": true}});
//! let after = json!({"spec": {"a": 1, "c": 3}, "status": {"x": true}});
//! assert_eq!(merge_diff(&before, &after), json!({"spec": {"b": null, "c": 3}}));
//! ```

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a patch could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The object could not be turned into JSON.
    #[error("cannot serialize the object: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The object has no name.
    #[error("the object has no name")]
    Unnamed,
    /// The API server refused a request.
    #[error("{what} failed: {source}")]
    Api {
        /// Which request failed.
        what: &'static str,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// Someone else changed a condition this controller does not own to a different state.
    #[error("condition {condition:?} was changed by someone else meanwhile")]
    ConditionConflict {
        /// The condition type.
        condition: String,
    },
    /// Every attempt met a 409 Conflict.
    #[error("still conflicting after {attempts} attempts")]
    TooManyConflicts {
        /// How many attempts were made.
        attempts: u32,
    },
}

/// How conditions are merged and conflicts retried.
#[derive(Debug, Clone)]
pub struct PatchOptions {
    /// Condition types this controller owns: its version always wins.
    pub owned_conditions: BTreeSet<String>,
    /// Every condition of ours wins, owned or not.
    pub force_overwrite_conditions: bool,
    /// Attempts for the conditions-carrying status request on 409 Conflict.
    pub max_attempts: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
}

impl Default for PatchOptions {
    fn default() -> Self {
        Self {
            owned_conditions: BTreeSet::new(),
            force_overwrite_conditions: false,
            max_attempts: 5,
            retry_delay: Duration::from_millis(50),
        }
    }
}

impl PatchOptions {
    /// Options owning the given condition types.
    pub fn owning<I: IntoIterator<Item = S>, S: Into<String>>(conditions: I) -> Self {
        Self {
            owned_conditions: conditions.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// What [`PatchHelper::patch`] sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchSummary {
    /// Whether the metadata/spec request was sent.
    pub wrote_main: bool,
    /// Whether a status request was sent (successfully).
    pub wrote_status: bool,
    /// Requests answered 409 and retried.
    pub conflicts: u32,
    /// The resourceVersions the successful writes answered with, in order: the last one is
    /// the object's version after the patch.
    pub resource_versions: Vec<String>,
}

impl PatchSummary {
    /// Requests that changed the object.
    pub fn writes(&self) -> u32 {
        u32::from(self.wrote_main) + u32::from(self.wrote_status)
    }
}

/// Where conditions live in a status, for both condition shapes.
const CONDITION_PATHS: &[&[&str]] = &[
    &["conditions"],
    &["v1beta2", "conditions"],
    &["deprecated", "v1beta1", "conditions"],
];

/// A snapshot of an object taken before a reconcile.
#[derive(Debug, Clone)]
pub struct PatchHelper {
    before: Value,
}

impl PatchHelper {
    /// Snapshots `obj`.
    pub fn new<K: Serialize>(obj: &K) -> Result<Self, PatchError> {
        Ok(Self {
            before: serde_json::to_value(obj)?,
        })
    }

    /// The snapshot.
    pub fn before(&self) -> &Value {
        &self.before
    }

    /// Writes the difference between the snapshot and `after`; sends nothing when they are equal.
    pub async fn patch<K>(
        &self,
        api: &Api<K>,
        after: &K,
        opts: &PatchOptions,
    ) -> Result<PatchSummary, PatchError>
    where
        K: kube::Resource + Clone + Serialize + DeserializeOwned + Debug,
    {
        let after_json = serde_json::to_value(after)?;
        let mut summary = PatchSummary::default();
        if after_json == self.before {
            return Ok(summary);
        }
        let name = after.meta().name.clone().ok_or(PatchError::Unnamed)?;

        let main = merge_diff(&without_status(&self.before), &without_status(&after_json));
        let mut after_status = after_json.get("status").cloned().unwrap_or(Value::Null);
        if !is_empty_diff(&main) {
            let written = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&main))
                .await
                .map_err(|source| PatchError::Api {
                    what: "metadata/spec patch",
                    source,
                })?;
            summary.wrote_main = true;
            summary
                .resource_versions
                .extend(written.meta().resource_version.clone());
            // A spec change bumped the generation: conditions computed during this reconcile
            // describe the new spec, so they observed the new generation.
            let old_generation = self.before["metadata"]["generation"].as_i64();
            if let (Some(old), Some(new)) = (old_generation, written.meta().generation)
                && new != old
            {
                bump_observed_generation(&mut after_status, old, new);
            }
        }

        let before_status = self.before.get("status").cloned().unwrap_or(Value::Null);
        let status_diff = merge_diff(
            &strip_conditions(&before_status),
            &strip_conditions(&after_status),
        );
        let condition_changes: Vec<ConditionChange> = CONDITION_PATHS
            .iter()
            .flat_map(|path| condition_diff(path, &before_status, &after_status))
            .collect();
        if condition_changes.is_empty() {
            if !is_empty_diff(&status_diff) {
                let body = serde_json::json!({ "status": status_diff });
                let written = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .map_err(|source| PatchError::Api {
                        what: "status patch",
                        source,
                    })?;
                summary.wrote_status = true;
                summary
                    .resource_versions
                    .extend(written.meta().resource_version.clone());
            }
            return Ok(summary);
        }
        self.patch_status_with_conditions(
            api,
            &name,
            status_diff,
            &condition_changes,
            opts,
            &mut summary,
        )
        .await?;
        Ok(summary)
    }

    async fn patch_status_with_conditions<K>(
        &self,
        api: &Api<K>,
        name: &str,
        status_diff: Value,
        changes: &[ConditionChange],
        opts: &PatchOptions,
        summary: &mut PatchSummary,
    ) -> Result<(), PatchError>
    where
        K: kube::Resource + Clone + Serialize + DeserializeOwned + Debug,
    {
        let attempts = opts.max_attempts.max(1);
        for attempt in 1..=attempts {
            let latest = api
                .get_status(name)
                .await
                .map_err(|source| PatchError::Api {
                    what: "read for condition merge",
                    source,
                })?;
            let latest = serde_json::to_value(&latest)?;
            let latest_status = latest.get("status").cloned().unwrap_or(Value::Null);
            let mut body_status = match status_diff.clone() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            let mut changed = !body_status.is_empty();
            for path in CONDITION_PATHS {
                let mine: Vec<&ConditionChange> =
                    changes.iter().filter(|c| c.path == *path).collect();
                if mine.is_empty() {
                    continue;
                }
                let current = conditions_at(&latest_status, path);
                let merged = apply_condition_changes(&current, &mine, opts)?;
                if merged != current {
                    set_path(&mut body_status, path, Value::Array(merged));
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
            let body = serde_json::json!({
                "metadata": { "resourceVersion": latest["metadata"]["resourceVersion"] },
                "status": Value::Object(body_status),
            });
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(written) => {
                    summary.wrote_status = true;
                    summary
                        .resource_versions
                        .extend(written.meta().resource_version.clone());
                    return Ok(());
                }
                Err(e) if is_conflict(&e) && attempt < attempts => {
                    summary.conflicts += 1;
                    tracing::debug!(object = name, attempt, "status patch conflicted, retrying");
                    tokio::time::sleep(opts.retry_delay * attempt).await;
                }
                Err(e) if is_conflict(&e) => {
                    summary.conflicts += 1;
                    return Err(PatchError::TooManyConflicts { attempts });
                }
                Err(source) => {
                    return Err(PatchError::Api {
                        what: "status patch",
                        source,
                    });
                }
            }
        }
        Err(PatchError::TooManyConflicts { attempts })
    }
}

/// Rewrites `observedGeneration: old` to `new` in every condition list of a status.
fn bump_observed_generation(status: &mut Value, old: i64, new: i64) {
    for path in CONDITION_PATHS {
        let Some(list) = path
            .iter()
            .try_fold(&mut *status, |v, p| v.get_mut(*p))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in list {
            if c.get("observedGeneration").and_then(Value::as_i64) == Some(old) {
                c["observedGeneration"] = Value::from(new);
            }
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The RFC 7386 merge patch turning `before` into `after`: changed keys with their new value,
/// removed keys as `null`, lists replaced whole. `{}` when they are equal.
pub fn merge_diff(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut out = Map::new();
            for (k, bv) in b {
                match a.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(av) if av != bv => {
                        let d = if av.is_object() && bv.is_object() {
                            merge_diff(bv, av)
                        } else {
                            av.clone()
                        };
                        out.insert(k.clone(), d);
                    }
                    Some(_) => {}
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    out.insert(k.clone(), av.clone());
                }
            }
            Value::Object(out)
        }
        // Equal non-objects (both `null`: no status before or after) need no patch.
        _ if before == after => Value::Object(Map::new()),
        _ => after.clone(),
    }
}

/// A diff that changes nothing: `{}`, or objects of nothing but empty objects (upstream skips
/// artefacts such as `{"status": {"v1beta2": {}}}` the same way).
fn is_empty_diff(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().all(|v| v.is_object() && is_empty_diff(v)),
        _ => false,
    }
}

fn without_status(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

fn strip_conditions(status: &Value) -> Value {
    let mut s = status.clone();
    for path in CONDITION_PATHS {
        remove_path(&mut s, path);
    }
    s
}

fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        match cur.get_mut(*p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(*last);
    }
}

fn set_path(root: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = root;
    for p in parents {
        let entry = cur
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert((*last).to_owned(), value);
}

fn conditions_at(status: &Value, path: &[&str]) -> Vec<Value> {
    path.iter()
        .try_fold(status, |v, p| v.get(*p))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn condition_type(c: &Value) -> Option<&str> {
    c.get("type").and_then(Value::as_str)
}

/// The state of a condition, for conflict detection: everything but `lastTransitionTime`.
fn condition_state(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("lastTransitionTime");
    }
    c
}

/// One condition a reconcile added, changed or removed.
#[derive(Debug, Clone)]
struct ConditionChange {
    path: &'static [&'static str],
    type_: String,
    before: Option<Value>,
    after: Option<Value>,
}

fn condition_diff(
    path: &'static [&'static str],
    before: &Value,
    after: &Value,
) -> Vec<ConditionChange> {
    let b = conditions_at(before, path);
    let a = conditions_at(after, path);
    let mut types: Vec<String> = b
        .iter()
        .chain(&a)
        .filter_map(|c| condition_type(c).map(str::to_owned))
        .collect();
    types.sort();
    types.dedup();
    types
        .into_iter()
        .filter_map(|t| {
            let bc = b.iter().find(|c| condition_type(c) == Some(&t)).cloned();
            let ac = a.iter().find(|c| condition_type(c) == Some(&t)).cloned();
            (bc != ac).then_some(ConditionChange {
                path,
                type_: t,
                before: bc,
                after: ac,
            })
        })
        .collect()
}

/// Applies our condition changes onto the latest conditions with upstream's three-way rules.
fn apply_condition_changes(
    latest: &[Value],
    changes: &[&ConditionChange],
    opts: &PatchOptions,
) -> Result<Vec<Value>, PatchError> {
    let mut out: Vec<Value> = latest.to_vec();
    for change in changes {
        let current = out
            .iter()
            .position(|c| condition_type(c) == Some(change.type_.as_str()));
        let current_state = current.map(|i| condition_state(&out[i]));
        let ours_wins =
            opts.force_overwrite_conditions || opts.owned_conditions.contains(&change.type_);
        let unchanged_by_others = current_state == change.before.as_ref().map(condition_state);
        let already_desired = current_state == change.after.as_ref().map(condition_state);
        if already_desired {
            continue;
        }
        if !ours_wins && !unchanged_by_others {
            return Err(PatchError::ConditionConflict {
                condition: change.type_.clone(),
            });
        }
        match (current, &change.after) {
            (Some(i), Some(new)) => out[i] = new.clone(),
            (None, Some(new)) => out.push(new.clone()),
            (Some(i), None) => {
                out.remove(i);
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(t: &str, status: &str, reason: &str) -> Value {
        json!({"type": t, "status": status, "reason": reason, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn diff_of_equal_objects_is_empty() {
        let v = json!({"a": {"b": [1, 2]}, "c": null});
        assert!(is_empty_diff(&merge_diff(&v, &v)));
        assert!(is_empty_diff(&json!({"status": {"v1beta2": {}}})));
        assert!(!is_empty_diff(&json!({"status": {"x": null}})));
        // No status before or after: nothing to write (a `{"status": null}` request was sent).
        assert!(is_empty_diff(&merge_diff(&Value::Null, &Value::Null)));
        assert_eq!(merge_diff(&Value::Null, &json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn lists_are_replaced_whole() {
        let d = merge_diff(&json!({"l": [1, 2]}), &json!({"l": [2]}));
        assert_eq!(d, json!({"l": [2]}));
    }

    #[test]
    fn diff_then_merge_gives_after() {
        let before = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let after = json!({"a": 1, "b": {"c": 5}, "f": "x"});
        let mut target = before.clone();
        json_patch::merge(&mut target, &merge_diff(&before, &after));
        assert_eq!(target, after);
    }

    #[test]
    fn owned_conditions_win_and_others_conflict() {
        let before = json!({"conditions": [cond("Ready", "False", "Waiting")]});
        let after = json!({"conditions": [cond("Ready", "True", "Ready")]});
        let changes = condition_diff(&["conditions"], &before, &after);
        let refs: Vec<&ConditionChange> = changes.iter().collect();
        let latest = vec![cond("Ready", "False", "SomeoneElse")];
        let err = apply_condition_changes(&latest, &refs, &PatchOptions::default()).unwrap_err();
        assert!(matches!(err, PatchError::ConditionConflict { .. }));
        let merged =
            apply_condition_changes(&latest, &refs, &PatchOptions::owning(["Ready"])).unwrap();
        assert_eq!(merged, vec![cond("Ready", "True", "Ready")]);
    }

    #[test]
    fn untouched_conditions_of_others_are_kept() {
        let before = json!({"conditions": []});
        let after = json!({"conditions": [cond("Paused", "False", "NotPaused")]});
        let changes = condition_diff(&["conditions"], &before, &after);
        let refs: Vec<&ConditionChange> = changes.iter().collect();
        let latest = vec![cond("Ready", "True", "Ready")];
        let merged = apply_condition_changes(&latest, &refs, &PatchOptions::default()).unwrap();
        assert_eq!(
            merged,
            vec![
                cond("Ready", "True", "Ready"),
                cond("Paused", "False", "NotPaused")
            ]
        );
    }

    #[test]
    fn removing_a_condition_removes_it_from_latest() {
        let before = json!({"conditions": [cond("Gone", "True", "X")]});
        let after = json!({"conditions": []});
        let changes = condition_diff(&["conditions"], &before, &after);
        let refs: Vec<&ConditionChange> = changes.iter().collect();
        let merged = apply_condition_changes(
            &[cond("Gone", "True", "X")],
            &refs,
            &PatchOptions::default(),
        )
        .unwrap();
        assert!(merged.is_empty());
    }
}
