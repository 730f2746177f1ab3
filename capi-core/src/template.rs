//! clusterctl template variables: `${VAR}`, `${VAR:=default}` and friends.
//!
//! Cluster templates and provider components are YAML with variables that `clusterctl generate
//! cluster` and `clusterctl init` fill in (capi-contract.md, release artefacts). clusterctl
//! substitutes them with drone/envsubst; we support the forms CAPI templates use:
//!
//! | form | value |
//! | --- | --- |
//! | `${VAR}` | the variable; an error if it is unset |
//! | `${VAR:=default}` / `${VAR:-default}` | the variable, or `default` when it is unset or empty |
//! | `${VAR=default}` / `${VAR-default}` | the variable, or `default` when it is unset |
//!
//! A `$` not followed by `{` is kept as is, so shell snippets inside templates survive.
//!
//! ```
//! use std::collections::HashMap;
//! use capi_core::template::{substitute, variables};
//!
//! let text = "name: ${CLUSTER_NAME}\ndomain: ${SERVICE_DOMAIN:=\"cluster.local\"}\n";
//! let names: Vec<_> = variables(text).unwrap().into_iter().map(|v| v.name).collect();
//! assert_eq!(names, ["CLUSTER_NAME", "SERVICE_DOMAIN"]);
//!
//! let vars = HashMap::from([("CLUSTER_NAME", "demo")]);
//! let out = substitute(text, |name| vars.get(name).map(|v| v.to_string())).unwrap();
//! assert_eq!(out, "name: demo\ndomain: \"cluster.local\"\n");
//! ```

use std::collections::BTreeSet;

/// Why a template could not be read or filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `${` has no closing `}`.
    #[error("unterminated variable starting at byte {offset}")]
    Unterminated {
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// A variable name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid variable name {name:?} at byte {offset}")]
    InvalidName {
        /// The name as written.
        name: String,
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// Variables without a default that the lookup does not know, sorted and deduplicated.
    #[error("value for variables [{}] is not set", .0.join(", "))]
    Missing(Vec<String>),
}

/// How a default applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultWhen {
    /// `:=` or `:-`: when the variable is unset or empty.
    UnsetOrEmpty,
    /// `=` or `-`: only when the variable is unset.
    Unset,
}

/// One variable reference in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable name, e.g. `CLUSTER_NAME`.
    pub name: String,
    /// The default written after the operator, if any (raw text, e.g. `"cluster.local"`).
    pub default: Option<String>,
    /// When the default applies (meaningful only with a default).
    pub default_when: DefaultWhen,
    /// Byte range of the whole `${...}` reference.
    pub span: std::ops::Range<usize>,
}

impl Variable {
    /// Whether the template needs a value for this variable (it has no default).
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// Every variable reference in `text`, in order of appearance (names may repeat).
pub fn references(text: &str) -> Result<Vec<Variable>, TemplateError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'$' || bytes[i + 1] != b'{' {
            i += 1;
            continue;
        }
        let start = i;
        let close = find_close(text, i + 2).ok_or(TemplateError::Unterminated { offset: start })?;
        let inner = &text[i + 2..close];
        let (name, default, default_when) = split_operator(inner);
        if !is_valid_name(name) {
            return Err(TemplateError::InvalidName {
                name: name.to_owned(),
                offset: start,
            });
        }
        out.push(Variable {
            name: name.to_owned(),
            default: default.map(str::to_owned),
            default_when,
            span: start..close + 1,
        });
        i = close + 1;
    }
    Ok(out)
}

/// The distinct variables of `text`, first appearance first; a variable counts as having a
/// default when any of its references has one.
pub fn variables(text: &str) -> Result<Vec<Variable>, TemplateError> {
    let mut seen = BTreeSet::new();
    let refs = references(text)?;
    let mut out: Vec<Variable> = Vec::new();
    for r in refs {
        if seen.insert(r.name.clone()) {
            out.push(r);
        } else if let Some(existing) = out.iter_mut().find(|v| v.name == r.name)
            && existing.default.is_none()
        {
            existing.default = r.default;
        }
    }
    Ok(out)
}

/// Replaces every variable with `lookup(name)` or its default. Fails listing all variables that
/// have neither, so a user fixes them in one go.
pub fn substitute<F>(text: &str, lookup: F) -> Result<String, TemplateError>
where
    F: Fn(&str) -> Option<String>,
{
    let mut out = String::with_capacity(text.len());
    let mut missing = BTreeSet::new();
    let mut last = 0;
    for var in references(text)? {
        out.push_str(&text[last..var.span.start]);
        last = var.span.end;
        let value = lookup(&var.name);
        let chosen = match (value, &var.default, var.default_when) {
            (Some(v), Some(d), DefaultWhen::UnsetOrEmpty) if v.is_empty() => Some(d.clone()),
            (Some(v), _, _) => Some(v),
            (None, Some(d), _) => Some(d.clone()),
            (None, None, _) => None,
        };
        match chosen {
            Some(v) => out.push_str(&v),
            None => {
                missing.insert(var.name);
            }
        }
    }
    out.push_str(&text[last..]);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(TemplateError::Missing(missing.into_iter().collect()))
    }
}

/// Finds the `}` closing a reference whose name starts at `from`, skipping nested `{...}` in
/// defaults such as `${X:={"a": 1}}`.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, c) in text[from..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(from + offset),
            '}' => depth -= 1,
            '\n' => return None,
            _ => {}
        }
    }
    None
}

fn split_operator(inner: &str) -> (&str, Option<&str>, DefaultWhen) {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_end);
    for (op, when) in [
        (":=", DefaultWhen::UnsetOrEmpty),
        (":-", DefaultWhen::UnsetOrEmpty),
        ("=", DefaultWhen::Unset),
        ("-", DefaultWhen::Unset),
    ] {
        if let Some(default) = rest.strip_prefix(op) {
            return (name, Some(default), when);
        }
    }
    // Anything else after the name makes it invalid; report the whole text as the name.
    if rest.is_empty() {
        (name, None, DefaultWhen::Unset)
    } else {
        (inner, None, DefaultWhen::Unset)
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_apply_as_envsubst_does() {
        let t = "${A:=x} ${B=y} ${C:-z} ${D-w}";
        let empty = |_: &str| Some(String::new());
        assert_eq!(substitute(t, none).unwrap(), "x y z w");
        assert_eq!(substitute(t, empty).unwrap(), "x  z ");
    }

    #[test]
    fn json_defaults_with_braces_and_brackets() {
        let t = "cidrBlocks: ${POD_CIDR:=[\"192.168.0.0/16\"]}\nx: ${M:={\"a\": 1}}";
        assert_eq!(
            substitute(t, none).unwrap(),
            "cidrBlocks: [\"192.168.0.0/16\"]\nx: {\"a\": 1}"
        );
    }

    #[test]
    fn missing_variables_are_all_reported() {
        let err = substitute("${B} ${A} ${B} ${C:=1}", none).unwrap_err();
        assert_eq!(err, TemplateError::Missing(vec!["A".into(), "B".into()]));
        assert_eq!(err.to_string(), "value for variables [A, B] is not set");
    }

    #[test]
    fn bad_references_are_typed_errors() {
        assert_eq!(
            substitute("a ${OPEN", none),
            Err(TemplateError::Unterminated { offset: 2 })
        );
        assert!(matches!(
            substitute("${1X}", none),
            Err(TemplateError::InvalidName { .. })
        ));
        assert!(matches!(
            substitute("${A B}", none),
            Err(TemplateError::InvalidName { .. })
        ));
    }

    #[test]
    fn shell_dollars_survive() {
        let t = "run: echo $HOME $((1+2)) $";
        assert_eq!(substitute(t, none).unwrap(), t);
    }

    proptest! {
        #[test]
        fn text_without_references_is_unchanged(s in "[^$]*") {
            prop_assert_eq!(substitute(&s, none).unwrap(), s);
        }

        #[test]
        fn substituted_values_land_verbatim(name in "[A-Z_][A-Z0-9_]{0,10}", value in "[^\n]{0,20}", pre in "[a-z :]{0,10}") {
            let t = format!("{pre}${{{name}}}{pre}");
            let out = substitute(&t, |n| (n == name).then(|| value.clone())).unwrap();
            prop_assert_eq!(out, format!("{pre}{value}{pre}"));
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = substitute(&s, |_| Some("v".into()));
            let _ = variables(&s);
        }
    }
}
