//! Label and field selectors with kube-apiserver's syntax and semantics.

use std::collections::BTreeSet;

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `k=v`, `k==v`.
    Equals(String, String),
    /// `k!=v` (also matches objects without `k`).
    NotEquals(String, String),
    /// `k in (a,b)`.
    In(String, BTreeSet<String>),
    /// `k notin (a,b)` (also matches objects without `k`).
    NotIn(String, BTreeSet<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

fn valid_key(k: &str) -> bool {
    let name = k.rsplit('/').next().unwrap_or(k);
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && k.matches('/').count() <= 1
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

impl LabelSelector {
    /// Parses `labelSelector=` syntax; the error text is what the server answers with a 400.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '', expected: identifier (in {s:?})"
                ));
            }
            let set = |rest: &str| -> Result<BTreeSet<String>, String> {
                let open = rest.trim().strip_prefix('(').ok_or_else(|| {
                    "unable to parse requirement: found '', expected: '('".to_owned()
                })?;
                let inner = open.strip_suffix(')').ok_or_else(|| {
                    "unable to parse requirement: found '', expected: ',' or ')'".to_owned()
                })?;
                let vals: BTreeSet<String> = inner
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                if vals.iter().any(|v| !valid_value(v)) {
                    return Err(format!("invalid label value in {p:?}"));
                }
                Ok(vals)
            };
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::DoesNotExist(k.trim().to_owned())
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = p.split_once("==") {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = p.split_once('=') {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                Requirement::NotIn(k.trim().to_owned(), set(rest)?)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                Requirement::In(k.trim().to_owned(), set(rest)?)
            } else {
                Requirement::Exists(p.to_owned())
            };
            let (key, value) = match &req {
                Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => (k, Some(v)),
                Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::DoesNotExist(k) => (k, None),
            };
            if !valid_key(key) {
                return Err(format!(
                    "unable to parse requirement: invalid label key {key:?}"
                ));
            }
            if value.is_some_and(|v| !valid_value(v)) {
                return Err(format!(
                    "unable to parse requirement: invalid label value {:?}",
                    value.unwrap_or(&String::new())
                ));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` (an object's `metadata.labels`) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses and checks the fields against those the resource supports: `supported` pairs
    /// each label a client may write with the label of the stored object it reads (see
    /// [`crate::server::resources::Resource::field_selectors`]); the selector keeps the latter.
    pub fn parse(s: &str, supported: &[(&str, &str)]) -> Result<Self, String> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(out));
        }
        for part in s.split(',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            let Some(&(_, stored)) = supported.iter().find(|(label, _)| *label == field) else {
                return Err(format!("field label not supported: {field}"));
            };
            out.push((stored.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(out))
    }

    /// Whether the (stored) object satisfies every requirement. A label is the path of the
    /// field it reads, but for Events' `source` (see [`super::events::selectable_field`]).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let text = super::events::selectable_field(obj, path).unwrap_or_else(|| {
                match path.split('.').try_fold(obj, |v, k| v.get(k)) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                }
            });
            (text == *value) == *equal
        })
    }

    /// The `metadata.name` this selector pins, if any.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn full_syntax() {
        let s = LabelSelector::parse("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        let l = json!({"a": "1", "b": "2", "d": "x", "f": ""});
        assert!(s.matches(Some(&l)));
        let l2 = json!({"a": "1", "b": "2", "d": "x", "f": "", "g": "1"});
        assert!(!s.matches(Some(&l2)));
        assert!(LabelSelector::parse("a in (x").is_err());
        assert!(LabelSelector::parse("bad key!=1").is_err());
        assert!(LabelSelector::parse("").unwrap().matches(None));
    }

    #[test]
    fn negative_requirements_match_missing_keys() {
        assert!(LabelSelector::parse("a!=1").unwrap().matches(None));
        assert!(
            LabelSelector::parse("a notin (1)")
                .unwrap()
                .matches(Some(&json!({})))
        );
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse(
            "metadata.name=x,metadata.namespace!=y",
            &[
                ("metadata.name", "metadata.name"),
                ("metadata.namespace", "metadata.namespace"),
            ],
        )
        .unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "x", "namespace": "z"}})));
        assert_eq!(f.name(), Some("x"));
        assert_eq!(
            FieldSelector::parse("spec.foo=1", &[("metadata.name", "metadata.name")]).unwrap_err(),
            "field label not supported: spec.foo"
        );
    }

    #[test]
    fn a_label_of_another_api_reads_the_stored_field() {
        let f = FieldSelector::parse(
            "regarding.name=m1",
            &[("regarding.name", "involvedObject.name")],
        )
        .unwrap();
        assert!(f.matches(&json!({"involvedObject": {"name": "m1"}})));
        assert!(!f.matches(&json!({"regarding": {"name": "m1"}})));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(&s, &[("metadata.name", "metadata.name")]);
        }
    }
}
