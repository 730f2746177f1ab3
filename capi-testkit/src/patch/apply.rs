//! Server-side apply as structured-merge-diff's `Updater.Apply` does it:
//!
//! 1. the applied configuration is merged into the live object;
//! 2. the applier's `Apply` entry becomes the configuration's field set;
//! 3. fields the applier applied last time and no longer applies are removed, unless another
//!    manager (or the new configuration) still owns them; declared parents left owning
//!    nothing go with them;
//! 4. fields the merge adds or changes that other managers own are conflicts (409), unless
//!    `force`, which moves their ownership to the applier; removed fields lose their owners.
//!
//! Re-applying the same configuration changes nothing, managedFields timestamps included.

use serde_json::{Value, json};

use super::fieldset::{FieldSet, path_string};
use super::managed::{Entry, ManagedFields, Operation, ownable};
use super::typed::Typed;
use super::{Conflict, FieldManager, FieldSchema, PatchError};

/// Drops `null`s from maps of the configuration (they own and set nothing).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// The configuration's paths that a new apply no longer owns and no one else does: what
/// pruning removes from the merged object.
fn disowned(
    typed: &Typed<'_>,
    last: &FieldSet,
    others: &ManagedFields,
    applied: &FieldSet,
) -> FieldSet {
    let named = |p: &[String]| typed.is_named(p);
    let last = last.with_named_members(&named);
    let managed = others
        .all_fields()
        .union(applied)
        .with_named_members(&named);
    last.difference(&managed)
}

/// Server-side apply of `applied` onto `live` (`None`: the object does not exist yet).
///
/// # Errors
///
/// [`PatchError::Malformed`] when the configuration is not an object or carries
/// `metadata.managedFields`; [`PatchError::ApplyConflict`] when it changes fields other
/// managers own and `force` is false.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    who: &FieldManager,
    force: bool,
    schema: &dyn FieldSchema,
) -> Result<Value, PatchError> {
    if !applied.is_object() {
        return Err(PatchError::Malformed(
            "apply patch must be an object".into(),
        ));
    }
    if applied["metadata"].get("managedFields").is_some() {
        return Err(PatchError::Malformed(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let typed = Typed::new(schema);
    let config = strip_nulls(applied);
    let empty = json!({});
    let live_v = live.unwrap_or(&empty);
    let original = ManagedFields::of(live);
    let original_json = live.and_then(|l| l["metadata"].get("managedFields"));
    let mut managers = original.clone();

    let mut merged = typed.merge(live_v, &config);
    let api_version = if who.api_version.is_empty() {
        config["apiVersion"].as_str().unwrap_or_default().to_owned()
    } else {
        who.api_version.clone()
    };
    let id = Entry {
        manager: who.manager.clone(),
        operation: Operation::Apply,
        api_version,
        subresource: who.subresource.clone(),
        time: Some(who.time.clone()),
        fields: FieldSet::new(),
    };
    let last = managers.take(&id);
    let applied_set = ownable(&typed.to_field_set(&config), who.scope);
    if let Some(last) = &last {
        let remove = disowned(&typed, &last.fields, &managers, &applied_set);
        if !remove.is_empty() {
            merged = typed.remove_items(&merged, &remove);
        }
    }

    let cmp = typed.compare(Some(live_v), Some(&merged));
    let changed = ownable(&cmp.added.union(&cmp.modified), who.scope);
    let removed = ownable(&cmp.removed, who.scope);
    let mut conflicts: Vec<(String, Conflict)> = Vec::new();
    for e in &managers.entries {
        for p in e.fields.intersection(&changed).paths() {
            conflicts.push((
                format!("{}\u{0}{:05}", e.display(), conflicts.len()),
                Conflict {
                    manager: e.display(),
                    field: path_string(&p),
                },
            ));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.0.cmp(&b.0));
        tracing::debug!(manager = %who.manager, n = conflicts.len(), "apply conflicts");
        return Err(PatchError::ApplyConflict {
            conflicts: conflicts.into_iter().map(|(_, c)| c).collect(),
        });
    }
    for e in &mut managers.entries {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    let object_changed = strip_meta(&merged) != strip_meta(live_v);
    let time = match &last {
        Some(l) if l.fields == applied_set && !object_changed => l.time.clone(),
        _ => id.time.clone(),
    };
    managers.entries.push(Entry {
        fields: applied_set,
        time,
        ..id
    });
    managers.drop_empty();
    managers.write(&mut merged, &original, original_json);
    Ok(merged)
}

/// The object without managedFields, to tell whether an apply changed it.
fn strip_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{ListSemantics, WriteScope};

    struct Schema;
    impl FieldSchema for Schema {
        fn list_semantics(&self, path: &[&str]) -> ListSemantics {
            match path {
                ["spec", "items"] => ListSemantics::Map(vec!["name".into()]),
                ["metadata", "finalizers"] => ListSemantics::Set,
                _ => ListSemantics::Atomic,
            }
        }
        fn is_named_field(&self, path: &[&str]) -> bool {
            !matches!(path, ["metadata", "labels", _])
        }
    }

    fn who(m: &str) -> FieldManager {
        FieldManager {
            manager: m.into(),
            api_version: "v1".into(),
            subresource: String::new(),
            time: "2026-01-01T00:00:00Z".into(),
            scope: WriteScope::All,
        }
    }

    fn apply(live: Option<&Value>, cfg: Value, m: &str, force: bool) -> Result<Value, PatchError> {
        server_side_apply(live, &cfg, &who(m), force, &Schema)
    }

    #[test]
    fn conflicts_name_the_owner_and_force_takes_over() {
        let cfg = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1, "b": 1}});
        let one = apply(None, cfg, "alice", false).unwrap();
        assert_eq!(
            one["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:a": {}, "f:b": {}}})
        );
        let bob = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 2, "b": 1, "c": 3}});
        let err = apply(Some(&one), bob.clone(), "bob", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.a"
        );
        let forced = apply(Some(&one), bob, "bob", true).unwrap();
        let mf = &forced["metadata"]["managedFields"];
        assert_eq!(mf[0]["manager"], "alice");
        assert_eq!(mf[0]["fieldsV1"], json!({"f:spec": {"f:b": {}}}));
        assert_eq!(
            mf[1]["fieldsV1"],
            json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}}})
        );
        assert_eq!(forced["spec"], json!({"a": 2, "b": 1, "c": 3}));
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_shared() {
        let first = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
                           "spec": {"keep": 1, "drop": {"deep": 1}, "items": [{"name": "i", "v": 1}, {"name": "j"}]}});
        let one = apply(None, first, "alice", false).unwrap();
        let shared = apply(
            Some(&one),
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "labels": {"b": "2"}}}),
            "bob",
            false,
        )
        .unwrap();
        let second = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"},
                            "spec": {"keep": 1, "items": [{"name": "j"}]}});
        let out = apply(Some(&shared), second, "alice", false).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"], json!({"keep": 1, "items": [{"name": "j"}]}));
    }

    #[test]
    fn reapplying_is_a_noop() {
        let cfg =
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1}});
        let one = apply(None, cfg.clone(), "alice", false).unwrap();
        let mut later = who("alice");
        later.time = "2027-01-01T00:00:00Z".into();
        let two = server_side_apply(Some(&one), &cfg, &later, false, &Schema).unwrap();
        assert_eq!(one, two);
    }
}
