//! managedFields: the entries (one per manager, operation, subresource and, for updaters,
//! apiVersion), their encoding in kube-apiserver's order, and the ownership changes of a
//! non-apply write (create, update, patch): the writer takes the fields it changed, which
//! every other manager loses, and removed fields lose their owners.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, PathElement};
use super::typed::{Typed, index_items, is_managed_fields};
use super::{FieldManager, FieldSchema, ListSemantics, PatchError, WriteScope};

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
        self.encode_with(self.fields.to_fields_v1())
    }

    /// The entry's JSON with `fields_v1` (its fields, already encoded) as `fieldsV1`.
    fn encode_with(&self, fields_v1: Value) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fields_v1);
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

/// The top-level fields no manager owns (type meta, and `metadata` itself).
const SERVER_TOP: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The server-owned fields of `metadata` no manager owns.
const SERVER_META: [&str; 9] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Removes the fields no manager owns: type meta and server-owned metadata
/// (`stripMetaManager`). In place, with the paths built once: every write records ownership.
fn strip_server_fields_in(set: &mut FieldSet) {
    static PATHS: std::sync::LazyLock<Vec<Vec<PathElement>>> = std::sync::LazyLock::new(|| {
        let f = |n: &str| PathElement::Field(n.into());
        let top = SERVER_TOP.map(|t| vec![f(t)]);
        let meta = SERVER_META.map(|m| vec![f("metadata"), f(m)]);
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
    if old.is_none() && record_create(new, who, schema).is_some() {
        return;
    }
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

/// Where a create's walk is: which fields are server-owned depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The object's own fields.
    Root,
    /// The fields of `metadata`.
    Meta,
    /// Anything deeper (or list items).
    Below,
}

/// Something the create walk does not reproduce exactly (list items that are distinct but
/// compare equal): the general path decides.
#[derive(Debug)]
struct Fallback;

/// [`record_update`] of a create whose request carries no managedFields to start from, the
/// common case, straight from the object: a create's comparison adds every path of the
/// object, so the writer's entry owns all of them but the server-owned ones, and those are
/// encoded as `FieldsV1` in one walk, without building the comparison's field sets and the
/// differences a write against a live object needs. `None` (nothing written) when the general
/// path must decide.
fn record_create(new: &mut Value, who: &FieldManager, schema: &dyn FieldSchema) -> Option<()> {
    let starts_from_request = who.subresource.is_empty()
        && matches!(new["metadata"].get("managedFields"), Some(Value::Array(a)) if !a.is_empty());
    if starts_from_request || !new.is_object() {
        return None;
    }
    let typed = Typed::new(schema);
    let mut fields = Map::new();
    created_fields(
        &typed,
        new,
        &mut Vec::new(),
        Level::Root,
        who.scope,
        &mut fields,
    )
    .ok()?;
    let entry = (!fields.is_empty()).then(|| {
        let api_version = if who.api_version.is_empty() {
            new["apiVersion"].as_str().unwrap_or_default().to_owned()
        } else {
            who.api_version.clone()
        };
        Entry {
            manager: who.manager.clone(),
            operation: Operation::Update,
            api_version,
            subresource: who.subresource.clone(),
            time: Some(who.time.clone()),
            fields: FieldSet::new(),
        }
        .encode_with(Value::Object(fields))
    });
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        match entry {
            Some(e) => {
                meta.insert("managedFields".into(), Value::Array(vec![e]));
            }
            None => {
                meta.remove("managedFields");
            }
        }
    }
    Some(())
}

/// The `FieldsV1` of the paths below `v` that a create's writer owns, into `out`, in the order
/// of structured-merge-diff's path elements (the order [`FieldSet::to_fields_v1`] writes).
/// Mirrors [`Typed::compare`] against an absent value: maps (unless atomic or empty) and
/// granular lists (unless some item cannot be keyed) have their members below them.
fn created_fields(
    typed: &Typed<'_>,
    v: &Value,
    spath: &mut Vec<String>,
    level: Level,
    scope: WriteScope,
    out: &mut Map<String, Value>,
) -> Result<(), Fallback> {
    match v {
        Value::Object(m) if !m.is_empty() && !typed.map_atomic(spath) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            for k in keys {
                if is_managed_fields(spath, k) || (level == Level::Root && !scope.allows(k)) {
                    continue;
                }
                let (server_owned, below) = match level {
                    Level::Root => (
                        SERVER_TOP.contains(&k.as_str()),
                        if k == "metadata" {
                            Level::Meta
                        } else {
                            Level::Below
                        },
                    ),
                    Level::Meta => (SERVER_META.contains(&k.as_str()), Level::Below),
                    Level::Below => (false, Level::Below),
                };
                let Some(child) = m.get(k.as_str()) else {
                    continue;
                };
                spath.push(k.clone());
                let node = created_node(typed, child, spath, below, scope, !server_owned);
                spath.pop();
                if let Some(node) = node? {
                    out.insert(format!("f:{k}"), node);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let sem = typed.list(spath);
            if sem == ListSemantics::Atomic {
                return Ok(());
            }
            let Some((order, values)) = index_items(&sem, items) else {
                return Ok(());
            };
            let mut pairs: Vec<(PathElement, &Value)> = order
                .into_iter()
                .enumerate()
                .filter_map(|(i, pe)| values.get(&i).map(|item| (pe, *item)))
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            if pairs.windows(2).any(|w| w[0].0.cmp(&w[1].0).is_eq()) {
                return Err(Fallback);
            }
            for (pe, item) in pairs {
                if let Some(node) = created_node(typed, item, spath, Level::Below, scope, true)? {
                    out.insert(pe.encode(), node);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The `FieldsV1` node of one path of a create (`None`: neither owned nor above owned paths).
fn created_node(
    typed: &Typed<'_>,
    v: &Value,
    spath: &mut Vec<String>,
    level: Level,
    scope: WriteScope,
    member: bool,
) -> Result<Option<Value>, Fallback> {
    let mut inner = Map::new();
    if member {
        inner.insert(".".into(), Value::Object(Map::new()));
    }
    created_fields(typed, v, spath, level, scope, &mut inner)?;
    if member && inner.len() == 1 {
        // A leaf: `{}` rather than `{".": {}}`.
        inner.clear();
    } else if inner.is_empty() {
        return Ok(None);
    }
    Ok(Some(Value::Object(inner)))
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
    fn creates_record_what_the_general_comparison_records() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"b": "2", "a": "1"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "managedFields": "junk"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "managedFields": [], "labels": {"z": "1", "a": "2"}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "managedFields": [{}]}, "data": {}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "x", "namespace": "n", "uid": "u", "finalizers": ["b", "a", "b"],
                                "ownerReferences": [{"uid": "2", "name": "q"}, {"uid": "1", "kind": "K"}],
                                "annotations": {}},
                   "secrets": [{"name": "s2"}, {"name": "s1", "x": {"y": [1, 2]}}, {"name": "s2", "z": 1}],
                   "spec": {"list": [{"a": 1}], "empty": [], "nested": {"deep": {"er": null}}},
                   "status": {"phase": "Up", "conditions": [{"type": "A"}]}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"},
                   "secrets": [{"name": "s"}, {"noname": true}]}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"},
                   "status": {"conditions": [{"type": "B", "status": "True"}, {"type": "A"}]}}),
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "finalizers": [1, 1.0, "a"]}}),
            json!({"apiVersion": "v1", "kind": "X", "metadata": [{"name": "x", "managedFields": 1}], "spec": 1}),
            json!({"apiVersion": {"odd": 1}, "kind": "X", "metadata": {"name": {"odd": 1}}}),
        ];
        let schemas: [Box<dyn FieldSchema>; 3] = [
            Box::new(Meta),
            Box::new(crate::patch::BuiltinSchema::new("", "ServiceAccount")),
            Box::new(crate::patch::BuiltinSchema::new("", "Namespace")),
        ];
        for obj in &objects {
            for schema in &schemas {
                for sub in ["", "status"] {
                    for scope in [
                        WriteScope::All,
                        WriteScope::AllButStatus,
                        WriteScope::StatusOnly,
                    ] {
                        let mut w = who("creator", sub);
                        w.scope = scope;
                        let (mut fast, mut general) = (obj.clone(), obj.clone());
                        record_update(None, &mut fast, &w, &**schema);
                        // Against an empty live object: the general comparison of a create.
                        record_update(Some(&json!({})), &mut general, &w, &**schema);
                        assert_eq!(
                            fast.to_string(),
                            general.to_string(),
                            "{obj} {sub:?} {scope:?}"
                        );
                    }
                }
            }
        }
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
