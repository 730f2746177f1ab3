//! Matching a host's labels against a ByoMachine's `metav1.LabelSelector`, as the API server
//! does: every `matchLabels` pair and every `matchExpressions` requirement must hold; an empty or
//! absent selector matches every host.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

/// A selector the provider cannot evaluate (it is the user's: a terminal error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// An operator other than `In`, `NotIn`, `Exists`, `DoesNotExist`.
    #[error("selector requirement on {key:?}: unknown operator {operator:?}")]
    UnknownOperator {
        /// The requirement's key.
        key: String,
        /// The operator given.
        operator: String,
    },
    /// `In`/`NotIn` without values, or `Exists`/`DoesNotExist` with some.
    #[error("selector requirement on {key:?}: operator {operator} {problem}")]
    Values {
        /// The requirement's key.
        key: String,
        /// The operator given.
        operator: String,
        /// What is wrong with the values.
        problem: &'static str,
    },
}

/// Checks that every requirement of `selector` is well formed.
pub fn validate(selector: Option<&LabelSelector>) -> Result<(), SelectorError> {
    for r in selector
        .and_then(|s| s.match_expressions.as_deref())
        .unwrap_or_default()
    {
        let has_values = r.values.as_ref().is_some_and(|v| !v.is_empty());
        match r.operator.as_str() {
            "In" | "NotIn" if !has_values => {
                return Err(SelectorError::Values {
                    key: r.key.clone(),
                    operator: r.operator.clone(),
                    problem: "needs values",
                });
            }
            "Exists" | "DoesNotExist" if has_values => {
                return Err(SelectorError::Values {
                    key: r.key.clone(),
                    operator: r.operator.clone(),
                    problem: "takes no values",
                });
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(SelectorError::UnknownOperator {
                    key: r.key.clone(),
                    operator: other.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `selector` (absent = everything).
///
/// ```
/// use std::collections::BTreeMap;
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
/// use capi_provider_byoh::selector::matches;
///
/// let gpu = LabelSelector { match_labels: Some(BTreeMap::from([("gpu".into(), "true".into())])), ..Default::default() };
/// let labels = BTreeMap::from([("gpu".to_string(), "true".to_string())]);
/// assert_eq!(matches(Some(&gpu), &labels), Ok(true));
/// assert_eq!(matches(Some(&gpu), &BTreeMap::new()), Ok(false));
/// assert_eq!(matches(None, &BTreeMap::new()), Ok(true));
/// ```
pub fn matches(
    selector: Option<&LabelSelector>,
    labels: &BTreeMap<String, String>,
) -> Result<bool, SelectorError> {
    validate(selector)?;
    let Some(selector) = selector else {
        return Ok(true);
    };
    // Evaluation is kube's; `validate` adds the value checks the API server makes.
    let selector =
        Selector::try_from(selector.clone()).map_err(|e| SelectorError::UnknownOperator {
            key: String::new(),
            operator: e.to_string(),
        })?;
    Ok(selector.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn expressions() {
        let labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
        let sel = |r| LabelSelector {
            match_expressions: Some(vec![r]),
            ..Default::default()
        };
        assert_eq!(
            matches(Some(&sel(req("zone", "In", &["a", "b"]))), &labels),
            Ok(true)
        );
        assert_eq!(
            matches(Some(&sel(req("zone", "NotIn", &["a"]))), &labels),
            Ok(false)
        );
        assert_eq!(
            matches(Some(&sel(req("gpu", "NotIn", &["x"]))), &labels),
            Ok(true)
        );
        assert_eq!(
            matches(Some(&sel(req("zone", "Exists", &[]))), &labels),
            Ok(true)
        );
        assert_eq!(
            matches(Some(&sel(req("zone", "DoesNotExist", &[]))), &labels),
            Ok(false)
        );
        assert!(matches(Some(&sel(req("zone", "Near", &[]))), &labels).is_err());
        assert!(matches(Some(&sel(req("zone", "In", &[]))), &labels).is_err());
        assert!(matches(Some(&sel(req("zone", "Exists", &["a"]))), &labels).is_err());
    }

    fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map("[a-c]", "[x-z]", 0..4)
    }

    proptest! {
        /// matchLabels built from a subset of a host's labels always match it; adding a pair
        /// the host lacks never does.
        #[test]
        fn subsets_match(host in labels(), extra_key in "[d-f]", extra_value in "[x-z]") {
            let subset: BTreeMap<_, _> = host.iter().step_by(2).map(|(k, v)| (k.clone(), v.clone())).collect();
            let sel = LabelSelector { match_labels: Some(subset.clone()), ..Default::default() };
            prop_assert_eq!(matches(Some(&sel), &host), Ok(true));
            let mut more = subset;
            more.insert(extra_key, extra_value);
            let sel = LabelSelector { match_labels: Some(more), ..Default::default() };
            prop_assert_eq!(matches(Some(&sel), &host), Ok(false));
        }

        /// `In` and `NotIn` with the same values are complements; so are `Exists` and
        /// `DoesNotExist`.
        #[test]
        fn complements(host in labels(), key in "[a-c]", values in proptest::collection::vec("[x-z]", 1..3)) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let one = |op: &str, vals: &[&str]| matches(Some(&LabelSelector { match_expressions: Some(vec![req(&key, op, vals)]), ..Default::default() }), &host);
            prop_assert_ne!(one("In", &values)?, one("NotIn", &values)?);
            prop_assert_ne!(one("Exists", &[])?, one("DoesNotExist", &[])?);
        }
    }
}
