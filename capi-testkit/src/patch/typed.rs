//! The schema-directed walks of structured-merge-diff over JSON objects: the field set of an
//! applied configuration, the comparison of two objects (added, modified, removed paths), the
//! apply merge, and the removal of a set of paths.
//!
//! Maps are granular unless `x-kubernetes-map-type: atomic`; lists are atomic unless the
//! schema says `set` (items keyed `v:`) or `map` (items keyed `k:` by the list-map keys).
//! `metadata.managedFields` is never walked.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Path, PathElement};
use super::{FieldSchema, ListSemantics};

/// The added, modified and removed paths between two objects (`typed.Comparison`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new object (including new maps and list items themselves).
    pub added: FieldSet,
    /// Leaves whose value changed.
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

/// The schema-directed walker.
pub struct Typed<'a> {
    schema: &'a dyn FieldSchema,
}

impl std::fmt::Debug for Typed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typed")
    }
}

fn refs(p: &[String]) -> Vec<&str> {
    p.iter().map(String::as_str).collect()
}

pub(crate) fn is_managed_fields(spath: &[String], key: &str) -> bool {
    key == "managedFields" && spath.len() == 1 && spath[0] == "metadata"
}

/// The path element of a list item (None: the item cannot be keyed, so the list is handled as
/// an atomic one).
fn item_element(sem: &ListSemantics, item: &Value) -> Option<PathElement> {
    match sem {
        ListSemantics::Atomic => None,
        ListSemantics::Set => Some(PathElement::Value(item.clone())),
        ListSemantics::Map(keys) => {
            let m = item.as_object()?;
            let mut pairs: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|k| m.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            if pairs.is_empty() {
                return None;
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Some(PathElement::Key(pairs))
        }
    }
}

/// The items of a list by path element, first occurrence kept, in list order.
pub(crate) fn index_items<'v>(
    sem: &ListSemantics,
    list: &'v [Value],
) -> Option<(Vec<PathElement>, HashMap<usize, &'v Value>)> {
    let mut order: Vec<PathElement> = Vec::new();
    let mut items = HashMap::new();
    for item in list {
        let pe = item_element(sem, item)?;
        if !order.contains(&pe) {
            items.insert(order.len(), item);
            order.push(pe);
        }
    }
    Some((order, items))
}

fn lookup<'v>(
    order: &[PathElement],
    items: &HashMap<usize, &'v Value>,
    pe: &PathElement,
) -> Option<&'v Value> {
    order
        .iter()
        .position(|p| p == pe)
        .and_then(|i| items.get(&i).copied())
}

impl<'a> Typed<'a> {
    /// A walker over objects of this schema.
    pub fn new(schema: &'a dyn FieldSchema) -> Self {
        Self { schema }
    }

    pub(crate) fn map_atomic(&self, spath: &[String]) -> bool {
        !spath.is_empty() && self.schema.map_is_atomic(&refs(spath))
    }

    pub(crate) fn list(&self, spath: &[String]) -> ListSemantics {
        self.schema.list_semantics(&refs(spath))
    }

    /// Whether the last element of the schema path is a declared field.
    pub fn is_named(&self, spath: &[String]) -> bool {
        self.schema.is_named_field(&refs(spath))
    }

    /// The field set of an applied configuration (`TypedValue.ToFieldSet`): every leaf, every
    /// item of a granular list, and every key of a free-form map.
    pub fn to_field_set(&self, v: &Value) -> FieldSet {
        let mut out = FieldSet::new();
        self.to_set(v, &mut Vec::new(), &mut Vec::new(), &mut out);
        out
    }

    fn to_set(&self, v: &Value, spath: &mut Vec<String>, fpath: &mut Path, out: &mut FieldSet) {
        match v {
            Value::Object(m) if !self.map_atomic(spath) => {
                for (k, cv) in m {
                    if is_managed_fields(spath, k) {
                        continue;
                    }
                    spath.push(k.clone());
                    fpath.push(PathElement::Field(k.clone()));
                    self.to_set(cv, spath, fpath, out);
                    if !self.is_named(spath) {
                        out.insert(fpath);
                    }
                    fpath.pop();
                    spath.pop();
                }
            }
            Value::Array(items) => {
                let sem = self.list(spath);
                match index_items(&sem, items) {
                    Some((order, values)) => {
                        for (i, pe) in order.into_iter().enumerate() {
                            let Some(item) = values.get(&i) else { continue };
                            fpath.push(pe);
                            self.to_set(item, spath, fpath, out);
                            out.insert(fpath);
                            fpath.pop();
                        }
                    }
                    None => out.insert(fpath),
                }
            }
            _ => out.insert(fpath),
        }
    }

    /// Compares two objects (`TypedValue.Compare`); `None` stands for an absent object.
    pub fn compare(&self, lhs: Option<&Value>, rhs: Option<&Value>) -> Comparison {
        let mut c = Comparison::default();
        self.cmp(lhs, rhs, &mut Vec::new(), &mut Vec::new(), &mut c);
        c
    }

    fn leaf(l: Option<&Value>, r: Option<&Value>, fpath: &Path, c: &mut Comparison) {
        match (l, r) {
            (None, Some(_)) => c.added.insert(fpath),
            (Some(_), None) => c.removed.insert(fpath),
            (Some(a), Some(b)) if a != b => c.modified.insert(fpath),
            _ => {}
        }
    }

    fn hook(l: Option<&Value>, r: Option<&Value>, fpath: &Path, c: &mut Comparison) {
        match (l, r) {
            (None, Some(_)) => c.added.insert(fpath),
            (Some(_), None) => c.removed.insert(fpath),
            _ => {}
        }
    }

    fn cmp(
        &self,
        l: Option<&Value>,
        r: Option<&Value>,
        spath: &mut Vec<String>,
        fpath: &mut Path,
        c: &mut Comparison,
    ) {
        let lo = l.map(|v| v.as_object());
        let ro = r.map(|v| v.as_object());
        let la = l.map(|v| v.as_array());
        let ra = r.map(|v| v.as_array());
        // Both sides maps (or absent).
        if !matches!(lo, Some(None)) && !matches!(ro, Some(None)) && (lo.is_some() || ro.is_some())
        {
            let (lm, rm) = (lo.flatten(), ro.flatten());
            let empty = lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty);
            if self.map_atomic(spath) || empty {
                return Self::leaf(l, r, fpath, c);
            }
            let mut keys: Vec<&String> = lm.into_iter().flat_map(|m| m.keys()).collect();
            for k in rm.into_iter().flat_map(|m| m.keys()) {
                if !lm.is_some_and(|m| m.contains_key(k)) {
                    keys.push(k);
                }
            }
            for k in keys {
                if is_managed_fields(spath, k) {
                    continue;
                }
                spath.push(k.clone());
                fpath.push(PathElement::Field(k.clone()));
                self.cmp(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    spath,
                    fpath,
                    c,
                );
                fpath.pop();
                spath.pop();
            }
            return Self::hook(l, r, fpath, c);
        }
        // Both sides lists (or absent).
        if !matches!(la, Some(None)) && !matches!(ra, Some(None)) && (la.is_some() || ra.is_some())
        {
            let (ll, rl) = (la.flatten(), ra.flatten());
            let empty = ll.is_none_or(Vec::is_empty) && rl.is_none_or(Vec::is_empty);
            let sem = self.list(spath);
            let lidx = index_items(&sem, ll.map_or(&[][..], Vec::as_slice));
            let ridx = index_items(&sem, rl.map_or(&[][..], Vec::as_slice));
            let (Some((lorder, litems)), Some((rorder, ritems))) = (lidx, ridx) else {
                return Self::leaf(l, r, fpath, c);
            };
            if sem == ListSemantics::Atomic || empty {
                return Self::leaf(l, r, fpath, c);
            }
            let mut all = lorder.clone();
            all.extend(rorder.iter().filter(|pe| !lorder.contains(pe)).cloned());
            for pe in all {
                let li = lookup(&lorder, &litems, &pe);
                let ri = lookup(&rorder, &ritems, &pe);
                fpath.push(pe);
                self.cmp(li, ri, spath, fpath, c);
                fpath.pop();
            }
            return Self::hook(l, r, fpath, c);
        }
        Self::leaf(l, r, fpath, c)
    }

    /// The apply merge (`TypedValue.Merge`): the configuration wins at leaves, maps merge key
    /// by key, granular lists merge item by item in structured-merge-diff's order.
    pub fn merge(&self, live: &Value, config: &Value) -> Value {
        self.merge_at(Some(live), config, &mut Vec::new())
    }

    fn merge_at(&self, l: Option<&Value>, r: &Value, spath: &mut Vec<String>) -> Value {
        let Some(l) = l else {
            return r.clone();
        };
        match (l, r) {
            (Value::Object(lm), Value::Object(rm)) if !self.map_atomic(spath) => {
                let mut out = lm.clone();
                for (k, rv) in rm {
                    spath.push(k.clone());
                    let merged = self.merge_at(lm.get(k), rv, spath);
                    spath.pop();
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            (Value::Array(ll), Value::Array(rl)) => {
                let sem = self.list(spath);
                match (index_items(&sem, ll), index_items(&sem, rl)) {
                    (Some(li), Some(ri)) if sem != ListSemantics::Atomic => {
                        Value::Array(self.merge_list(li, ri, spath))
                    }
                    _ => r.clone(),
                }
            }
            _ => r.clone(),
        }
    }

    fn merge_list(
        &self,
        (lorder, litems): (Vec<PathElement>, HashMap<usize, &Value>),
        (rorder, ritems): (Vec<PathElement>, HashMap<usize, &Value>),
        spath: &mut Vec<String>,
    ) -> Vec<Value> {
        let in_l = |pe: &PathElement| lookup(&lorder, &litems, pe);
        let in_r = |pe: &PathElement| lookup(&rorder, &ritems, pe);
        let mut shared: std::collections::VecDeque<&PathElement> =
            rorder.iter().filter(|pe| in_l(pe).is_some()).collect();
        let mut next = shared.pop_front();
        let mut out = Vec::new();
        let (mut li, mut ri) = (0, 0);
        let mut merge_item = |lv: Option<&Value>, rv: Option<&Value>, out: &mut Vec<Value>| match rv
        {
            Some(rv) => out.push(self.merge_at(lv, rv, spath)),
            None => out.extend(lv.cloned()),
        };
        while li < lorder.len() || ri < rorder.len() {
            let before = (li, ri);
            if li < lorder.len() && ri < rorder.len() {
                let pe = &lorder[li];
                if *pe == rorder[ri] {
                    merge_item(in_l(pe), in_r(pe), &mut out);
                    li += 1;
                    ri += 1;
                    next = shared.pop_front();
                    continue;
                }
                if in_r(pe).is_some() && next.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lorder.len() {
                let pe = &lorder[li];
                if in_r(pe).is_none() {
                    merge_item(in_l(pe), None, &mut out);
                    li += 1;
                    continue;
                }
            }
            if ri < rorder.len() {
                let pe = &rorder[ri];
                merge_item(in_l(pe), in_r(pe), &mut out);
                ri += 1;
                if next.is_some_and(|n| n == pe) {
                    next = shared.pop_front();
                }
            }
            if (li, ri) == before {
                // Only left items already merged remain.
                li += 1;
            }
        }
        out
    }

    /// The object without the paths of `set` (`TypedValue.RemoveItems`); a removed path takes
    /// everything below it along.
    pub fn remove_items(&self, v: &Value, set: &FieldSet) -> Value {
        self.remove_at(v, set, &mut Vec::new())
    }

    fn remove_at(&self, v: &Value, set: &FieldSet, spath: &mut Vec<String>) -> Value {
        match v {
            Value::Object(m) if !self.map_atomic(spath) => {
                let mut out = Map::new();
                for (k, cv) in m {
                    let pe = PathElement::Field(k.clone());
                    if set.has_member(&pe) {
                        continue;
                    }
                    match set.child(&pe) {
                        Some(sub) => {
                            spath.push(k.clone());
                            out.insert(k.clone(), self.remove_at(cv, sub, spath));
                            spath.pop();
                        }
                        None => {
                            out.insert(k.clone(), cv.clone());
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let sem = self.list(spath);
                if sem == ListSemantics::Atomic {
                    return v.clone();
                }
                let mut out = Vec::new();
                for item in items {
                    let Some(pe) = item_element(&sem, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.has_member(&pe) {
                        continue;
                    }
                    match set.child(&pe) {
                        Some(sub) => out.push(self.remove_at(item, sub, spath)),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Lists;
    impl FieldSchema for Lists {
        fn list_semantics(&self, path: &[&str]) -> ListSemantics {
            match path {
                ["spec", "set"] => ListSemantics::Set,
                ["spec", "items"] => ListSemantics::Map(vec!["name".into()]),
                _ => ListSemantics::Atomic,
            }
        }
        fn map_is_atomic(&self, path: &[&str]) -> bool {
            path == ["spec", "ref"]
        }
        fn is_named_field(&self, path: &[&str]) -> bool {
            !matches!(path, ["metadata", "labels", _])
        }
    }

    #[test]
    fn applied_field_sets_are_encoded_as_upstream() {
        let t = Typed::new(&Lists);
        let s = t.to_field_set(&json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"set": ["x"], "items": [{"name": "n", "v": 1}], "ref": {"name": "r"}, "atomic": [1]}}));
        assert_eq!(
            s.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}},
                   "f:spec": {"f:atomic": {}, "f:items": {"k:{\"name\":\"n\"}": {".": {}, "f:name": {}, "f:v": {}}}, "f:ref": {}, "f:set": {"v:\"x\"": {}}}})
        );
    }

    #[test]
    fn comparisons_mark_new_maps_and_changed_leaves() {
        let t = Typed::new(&Lists);
        let c = t.compare(
            Some(&json!({"spec": {"a": 1, "gone": {"x": 1}}})),
            Some(&json!({"spec": {"a": 2, "new": {"x": 1}}})),
        );
        assert_eq!(c.modified.to_fields_v1(), json!({"f:spec": {"f:a": {}}}));
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:spec": {"f:new": {".": {}, "f:x": {}}}})
        );
        assert_eq!(
            c.removed.to_fields_v1(),
            json!({"f:spec": {"f:gone": {".": {}, "f:x": {}}}})
        );
    }

    #[test]
    fn merges_keep_live_items_in_place() {
        let t = Typed::new(&Lists);
        let live = json!({"spec": {"set": ["a", "b"], "items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}], "atomic": [1, 2]}});
        let config =
            json!({"spec": {"set": ["c", "a"], "items": [{"name": "b", "w": 3}], "atomic": [3]}});
        let merged = t.merge(&live, &config);
        assert_eq!(merged["spec"]["set"], json!(["c", "a", "b"]));
        assert_eq!(
            merged["spec"]["items"],
            json!([{"name": "a", "v": 1}, {"name": "b", "v": 2, "w": 3}])
        );
        assert_eq!(merged["spec"]["atomic"], json!([3]));
        let mut drop = FieldSet::new();
        drop.insert(&[
            PathElement::Field("spec".into()),
            PathElement::Field("items".into()),
            PathElement::Key(vec![("name".into(), json!("a"))]),
        ]);
        assert_eq!(
            t.remove_items(&merged, &drop)["spec"]["items"],
            json!([{"name": "b", "v": 2, "w": 3}])
        );
    }
}
