//! Sets of field paths, as structured-merge-diff's `fieldpath.Set`, and their `FieldsV1` JSON
//! encoding (`f:<field>`, `k:{...}` for associative-list items, `v:<value>` for set items,
//! `i:<index>`, and `.` for "this node itself" when it also has children).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::PatchError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElement {
    /// A field of an object (`f:name`).
    Field(String),
    /// An associative-list item, by its key fields sorted by name (`k:{"name":"x"}`).
    Key(Vec<(String, Value)>),
    /// A set item, by its value (`v:"x"`).
    Value(Value),
    /// A list position (`i:0`; never used for custom resources).
    Index(usize),
}

impl Eq for PathElement {}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// The total order of values structured-merge-diff uses (`value.Compare`): numbers, strings,
/// booleans, lists, maps, null.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|a, b| a.0.cmp(b.0));
            ys.sort_by(|a, b| a.0.cmp(b.0));
            for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
                let c = ka.cmp(kb).then_with(|| compare_values(va, vb));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        use PathElement::{Field, Index, Key, Value as V};
        let kind = |p: &PathElement| match p {
            Field(_) => 0,
            Key(_) => 1,
            V(_) => 2,
            Index(_) => 3,
        };
        match (self, other) {
            (Field(a), Field(b)) => a.cmp(b),
            (Key(a), Key(b)) => {
                for ((na, va), (nb, vb)) in a.iter().zip(b) {
                    let c = na.cmp(nb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (V(a), V(b)) => compare_values(a, b),
            (Index(a), Index(b)) => a.cmp(b),
            _ => kind(self).cmp(&kind(other)),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `value.ToString` of structured-merge-diff, used in printed paths.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(value_to_string).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

impl fmt::Display for PathElement {
    /// As kube-apiserver prints paths in conflict messages: `.spec`, `[name="x"]`, `[="v"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(n) => write!(f, ".{n}"),
            Self::Key(keys) => {
                let parts: Vec<String> = keys
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={}]", value_to_string(v)),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub(crate) fn encode(&self) -> String {
        match self {
            Self::Field(n) => format!("f:{n}"),
            Self::Key(keys) => {
                let m: Map<String, Value> = keys.iter().cloned().collect();
                format!("k:{}", Value::Object(m))
            }
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(key: &str) -> Result<Self, PatchError> {
        let bad = || PatchError::Malformed(format!("invalid managedFields key {key:?}"));
        let (prefix, rest) = key.split_at_checked(2).ok_or_else(bad)?;
        match prefix {
            "f:" => Ok(Self::Field(rest.to_owned())),
            "k:" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => {
                    let mut keys: Vec<(String, Value)> = m.into_iter().collect();
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(Self::Key(keys))
                }
                _ => Err(bad()),
            },
            "v:" => serde_json::from_str(rest)
                .map(Self::Value)
                .map_err(|_| bad()),
            "i:" => rest.parse().map(Self::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// A path from the object root.
pub type Path = Vec<PathElement>;

/// Prints a path as kube-apiserver does, e.g. `.spec.items[name="a"].value`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A node of the set: whether the path ending here is a member, and the longer paths below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: FieldSet,
}

/// A set of field paths, stored as a trie ordered as structured-merge-diff orders path elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    nodes: BTreeMap<PathElement, Node>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a path (the empty path is ignored: the root is never owned).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.nodes.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// Whether the path is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.nodes.get(first) {
            Some(n) if rest.is_empty() => n.member,
            Some(n) => n.children.has(rest),
            None => false,
        }
    }

    /// Whether the element is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.nodes.get(pe).is_some_and(|n| n.member)
    }

    /// The paths below `pe` (relative to it).
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.nodes
            .get(pe)
            .map(|n| &n.children)
            .filter(|c| !c.is_empty())
    }

    /// The set of every path in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, n) in &other.nodes {
            let e = out.nodes.entry(pe.clone()).or_default();
            e.member |= n.member;
            e.children = e.children.union(&n.children);
        }
        out
    }

    /// The set of the paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, n) in &self.nodes {
            if let Some(o) = other.nodes.get(pe) {
                let node = Node {
                    member: n.member && o.member,
                    children: n.children.intersection(&o.children),
                };
                if node.member || !node.children.is_empty() {
                    out.nodes.insert(pe.clone(), node);
                }
            }
        }
        out
    }

    /// The paths of `self` that are not in `other` (paths below a removed one stay).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, n) in &self.nodes {
            let node = match other.nodes.get(pe) {
                Some(o) => Node {
                    member: n.member && !o.member,
                    children: n.children.difference(&o.children),
                },
                None => n.clone(),
            };
            if node.member || !node.children.is_empty() {
                out.nodes.insert(pe.clone(), node);
            }
        }
        out
    }

    /// The paths of `self` that are neither in `other` nor below a path of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, n) in &self.nodes {
            let node = match other.nodes.get(pe) {
                Some(o) if o.member => continue,
                Some(o) => Node {
                    member: n.member,
                    children: n.children.recursive_difference(&o.children),
                },
                None => n.clone(),
            };
            if node.member || !node.children.is_empty() {
                out.nodes.insert(pe.clone(), node);
            }
        }
        out
    }

    /// Removes the path itself (not the paths below it).
    pub fn remove_member(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let Some(node) = self.nodes.get_mut(first) else {
            return;
        };
        if rest.is_empty() {
            node.member = false;
        } else {
            node.children.remove_member(rest);
        }
        if !node.member && node.children.is_empty() {
            self.nodes.remove(first);
        }
    }

    /// Keeps only the top-level elements `keep` accepts (with everything below them).
    pub fn retain_top(&mut self, keep: impl Fn(&PathElement) -> bool) {
        self.nodes.retain(|pe, _| keep(pe));
    }

    /// This set plus, as structured-merge-diff's `EnsureNamedFieldsAreMembers`, every declared
    /// field that has paths below it (`named` gets the schema path: field names, list items
    /// omitted).
    pub fn with_named_members(&self, named: &dyn Fn(&[String]) -> bool) -> FieldSet {
        fn walk(
            s: &FieldSet,
            spath: &mut Vec<String>,
            named: &dyn Fn(&[String]) -> bool,
        ) -> FieldSet {
            let mut out = FieldSet::new();
            for (pe, n) in &s.nodes {
                let pushed = if let PathElement::Field(name) = pe {
                    spath.push(name.clone());
                    true
                } else {
                    false
                };
                let member =
                    n.member || (pushed && !n.children.is_empty() && named(spath.as_slice()));
                let children = walk(&n.children, spath, named);
                if pushed {
                    spath.pop();
                }
                out.nodes.insert(pe.clone(), Node { member, children });
            }
            out
        }
        walk(self, &mut Vec::new(), named)
    }

    /// Every path, in structured-merge-diff's `Set.Iterate` order: the members of a level
    /// first, then the levels below.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for (pe, n) in &self.nodes {
            if n.member {
                let mut p = prefix.clone();
                p.push(pe.clone());
                out.push(p);
            }
        }
        for (pe, n) in &self.nodes {
            if !n.children.is_empty() {
                prefix.push(pe.clone());
                n.children.collect(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for (pe, n) in &self.nodes {
            let mut inner = match n.children.to_fields_v1() {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            if n.member && !inner.is_empty() {
                let mut with_self = Map::new();
                with_self.insert(".".into(), Value::Object(Map::new()));
                with_self.extend(inner);
                inner = with_self;
            }
            m.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(m)
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, PatchError> {
        let Value::Object(m) = v else {
            return Err(PatchError::Malformed("fieldsV1 must be an object".into()));
        };
        let mut out = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::decode(k)?;
            let children = FieldSet::from_fields_v1(child)?;
            let has_self = child.as_object().is_some_and(|c| c.contains_key("."));
            let member = has_self || children.is_empty();
            out.nodes.insert(pe, Node { member, children });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.into())
    }

    #[test]
    fn fields_v1_round_trips_with_self_markers() {
        let v = json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/f\"": {}}, "f:labels": {".": {}, "f:role": {}}},
                       "f:spec": {"f:items": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}, "f:x": {}}});
        let s = FieldSet::from_fields_v1(&v).unwrap();
        assert!(s.has(&[f("spec"), f("x")]));
        assert!(s.has(&[f("metadata"), f("labels")]));
        assert!(!s.has(&[f("metadata")]));
        assert_eq!(s.to_fields_v1(), v);
    }

    #[test]
    fn set_algebra_and_iteration_order_follow_upstream() {
        let mut a = FieldSet::new();
        a.insert(&[f("spec"), f("b"), f("c")]);
        a.insert(&[f("spec"), f("d")]);
        a.insert(&[f("spec"), f("a")]);
        let printed: Vec<String> = a.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(printed, [".spec.a", ".spec.d", ".spec.b.c"]);
        let mut b = FieldSet::new();
        b.insert(&[f("spec"), f("d")]);
        assert_eq!(a.intersection(&b), b);
        assert!(!a.difference(&b).has(&[f("spec"), f("d")]));
        let mut spec = FieldSet::new();
        spec.insert(&[f("spec")]);
        assert!(a.recursive_difference(&spec).is_empty());
        assert_eq!(a.difference(&spec), a);
        let key = PathElement::Key(vec![("name".into(), json!("a"))]);
        assert_eq!(
            path_string(&[f("spec"), key, PathElement::Value(json!("v"))]),
            ".spec[name=\"a\"][=\"v\"]"
        );
    }
}
