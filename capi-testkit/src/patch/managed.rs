//! managedFields: the entries (one per manager, operation, subresource and, for updaters,
//! apiVersion), their encoding in kube-apiserver's order, and the ownership changes of a
//! non-apply write (create, update, patch): the writer takes the fields it changed, which
//! every other manager loses, and removed fields lose their owners.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, PathElement};
use super::typed::Typed;
use super::{FieldManager, FieldSchema, PatchError, WriteScope};

/// What a manager did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields are expressed in.
    pub api_version: String,
    /// `""` for the main resource.
    pub subresource: String,
    /// When the manager last changed what it owns.
    pub time: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl Entry {
    /// Whether this entry stands for the same manager identity as upstream's manager
    /// identifier: appliers are one identity across apiVersions, updaters one per apiVersion.
    pub fn same_identity(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager as conflict messages print it.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn encode(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn decode(v: &Value) -> Result<Self, PatchError> {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let operation = match v["operation"].as_str() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => {
                return Err(PatchError::Malformed(format!(
                    "invalid managedFields operation {other:?}"
                )));
            }
        };
        Ok(Self {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            subresource: s("subresource"),
            time: v["time"].as_str().map(str::to_owned),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&json!({})))?,
        })
    }
}

/// The managedFields of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedFields {
    /// The entries, in no particular order.
    pub entries: Vec<Entry>,
}

impl ManagedFields {
    /// Decodes `metadata.managedFields` (absent: none).
    pub fn decode(v: Option<&Value>) -> Result<Self, PatchError> {
        let entries = match v {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(Entry::decode).collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(PatchError::Malformed(
                    "metadata.managedFields must be a list".into(),
                ));
            }
        };
        Ok(Self { entries })
    }

    /// The managedFields of a stored object (undecodable ones are dropped, as upstream does).
    pub fn of(obj: Option<&Value>) -> Self {
        let v = obj.and_then(|o| o["metadata"].get("managedFields"));
        Self::decode(v).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dropping undecodable managedFields");
            Self::default()
        })
    }

    /// Encodes the entries sorted as kube-apiserver sorts them (operation, time, manager,
    /// apiVersion, subresource).
    pub fn encode(&self) -> Value {
        let mut sorted: Vec<&Entry> = self.entries.iter().collect();
        sorted.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| p.time.cmp(&q.time))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Value::Array(sorted.into_iter().map(Entry::encode).collect())
    }

    /// Removes and returns the entry of this identity.
    pub fn take(&mut self, id: &Entry) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.same_identity(id))?;
        Some(self.entries.remove(i))
    }

    /// The union of every entry's fields.
    pub fn all_fields(&self) -> FieldSet {
        self.entries
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields))
    }

    /// Drops entries that own nothing.
    pub fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Writes the entries into `obj` (removing the key when there are none); when they equal
    /// `original`'s, `original_json` is written back unchanged so that a no-op stays one.
    pub fn write(&self, obj: &mut Value, original: &ManagedFields, original_json: Option<&Value>) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let unchanged = same_entries(self, original);
        match original_json {
            Some(j) if unchanged => {
                meta.insert("managedFields".into(), j.clone());
            }
            _ if self.entries.is_empty() => {
                meta.remove("managedFields");
            }
            _ => {
                meta.insert("managedFields".into(), self.encode());
            }
        }
    }
}

fn same_entries(a: &ManagedFields, b: &ManagedFields) -> bool {
    a.entries.len() == b.entries.len() && a.entries.iter().all(|e| b.entries.contains(e))
}

/// Removes the fields no manager owns: type meta and server-owned metadata
/// (`stripMetaManager`). In place, with the paths built once: every write records ownership.
fn strip_server_fields_in(set: &mut FieldSet) {
    static PATHS: std::sync::LazyLock<Vec<Vec<PathElement>>> = std::sync::LazyLock::new(|| {
        let f = |n: &str| PathElement::Field(n.into());
        let top = ["apiVersion", "kind", "metadata"].map(|t| vec![f(t)]);
        let meta = [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ]
        .map(|m| vec![f("metadata"), f(m)]);
        top.into_iter().chain(meta).collect()
    });
    for path in PATHS.iter() {
        set.remove_member(path);
    }
}

/// Keeps the paths a write in this scope may own.
pub(crate) fn in_scope(set: &FieldSet, scope: WriteScope) -> FieldSet {
    let mut out = set.clone();
    out.retain_top(|pe| matches!(pe, PathElement::Field(n) if scope.allows(n)));
    out
}

/// The fields a manager may own from a raw set: in scope, server fields stripped.
pub(crate) fn ownable(set: &FieldSet, scope: WriteScope) -> FieldSet {
    let mut out = in_scope(set, scope);
    strip_server_fields_in(&mut out);
    out
}

/// The managedFields a non-apply write starts from: the request's when it carries decodable
/// ones (`[]` or `[{}]` reset them), else the live object's (`decodeLiveOrNew`).
fn base_for_update(
    old: Option<&Value>,
    new: &Value,
    who: &FieldManager,
) -> (ManagedFields, Option<Value>) {
    let live_json = old
        .and_then(|o| o["metadata"].get("managedFields"))
        .cloned();
    let live = ManagedFields::of(old);
    if !who.subresource.is_empty() {
        return (live, live_json);
    }
    match new["metadata"].get("managedFields") {
        Some(Value::Array(a)) if a.is_empty() || (a.len() == 1 && a[0] == json!({})) => {
            (ManagedFields::default(), None)
        }
        Some(v @ Value::Array(_)) => match ManagedFields::decode(Some(v)) {
            Ok(m) if !m.entries.is_empty() => (m, Some(v.clone())),
            _ => (live, live_json),
        },
        _ => (live, live_json),
    }
}

/// Records a non-apply write in `new.metadata.managedFields`, given the object before it
/// (`None`: a create). The writer (operation `Update`) takes the fields it added or changed,
/// which other managers lose; removed fields lose their owners. A write that changes nothing
/// leaves managedFields as they were (timestamps included).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    who: &FieldManager,
    schema: &dyn FieldSchema,
) {
    let (base, base_json) = base_for_update(old, new, who);
    let typed = Typed::new(schema);
    let empty = json!({});
    let cmp = typed.compare(Some(old.unwrap_or(&empty)), Some(new));
    let changed = ownable(&cmp.added.union(&cmp.modified), who.scope);
    let removed = ownable(&cmp.removed, who.scope);
    let mut managed = base.clone();
    for e in &mut managed.entries {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    if !changed.is_empty() {
        let api_version = if who.api_version.is_empty() {
            new["apiVersion"].as_str().unwrap_or_default().to_owned()
        } else {
            who.api_version.clone()
        };
        let id = Entry {
            manager: who.manager.clone(),
            operation: Operation::Update,
            api_version,
            subresource: who.subresource.clone(),
            time: Some(who.time.clone()),
            fields: FieldSet::new(),
        };
        let mut own = managed.take(&id).unwrap_or_else(|| id.clone());
        own.fields = own.fields.union(&changed);
        own.time = id.time;
        managed.entries.push(own);
    }
    managed.drop_empty();
    managed.write(new, &base, base_json.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::ListSemantics;

    struct Meta;
    impl FieldSchema for Meta {
        fn list_semantics(&self, path: &[&str]) -> ListSemantics {
            match path {
                ["metadata", "finalizers"] => ListSemantics::Set,
                _ => ListSemantics::Atomic,
            }
        }
        fn is_named_field(&self, path: &[&str]) -> bool {
            !matches!(path, ["metadata", "labels", _])
        }
    }

    fn who(m: &str, sub: &str) -> FieldManager {
        FieldManager {
            manager: m.into(),
            api_version: "v1".into(),
            subresource: sub.into(),
            time: "2026-01-01T00:00:00Z".into(),
            scope: if sub == "status" {
                WriteScope::StatusOnly
            } else {
                WriteScope::AllButStatus
            },
        }
    }

    #[test]
    fn creates_own_everything_they_set_as_upstream() {
        let mut obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "labels": {"role": "w"}},
                             "spec": {"a": 1, "b": {"c": 2}}, "status": {"s": 1}});
        record_update(None, &mut obj, &who("python-requests", ""), &Meta);
        assert_eq!(
            obj["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {".": {}, "f:role": {}}},
                   "f:spec": {".": {}, "f:a": {}, "f:b": {".": {}, "f:c": {}}}})
        );
    }

    #[test]
    fn updates_take_changed_fields_from_others_and_noops_change_nothing() {
        let mut obj =
            json!({"apiVersion": "v1", "metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}});
        record_update(None, &mut obj, &who("one", ""), &Meta);
        let mut changed = obj.clone();
        changed["spec"]["a"] = json!(5);
        record_update(Some(&obj), &mut changed, &who("two", ""), &Meta);
        let mf = &changed["metadata"]["managedFields"];
        assert_eq!(mf[0]["fieldsV1"], json!({"f:spec": {".": {}, "f:b": {}}}));
        assert_eq!(mf[1]["manager"], "two");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:spec": {"f:a": {}}}));
        let mut again = changed.clone();
        record_update(Some(&changed), &mut again, &who("three", ""), &Meta);
        assert_eq!(again, changed);
        let mut status = changed.clone();
        status["status"] = json!({"phase": "Up"});
        record_update(Some(&changed), &mut status, &who("two", "status"), &Meta);
        let mf = status["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 3);
        assert_eq!(mf[2]["subresource"], "status");
        assert_eq!(
            mf[2]["fieldsV1"],
            json!({"f:status": {".": {}, "f:phase": {}}})
        );
    }
}
