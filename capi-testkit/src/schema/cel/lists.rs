//! Kubernetes' lists library (`k8s.io/apiserver/pkg/cel/library/lists.go`), but `indexOf` and
//! `lastIndexOf`: `isSorted()`, `sum()`, `min()`, `max()`.

use cel::{Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, ret};

pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    use cel::common::types::LIST_TYPE;
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    Ok(())
}

/// The elements of the receiver list of a member overload.
fn list_arg(function: &str, args: &Args<'_, '_>) -> Result<Vec<CelValue>, ExecutionError> {
    let Some(first) = args.first() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    match CelValue::try_from(first.as_ref())? {
        CelValue::List(l) => Ok(l.as_ref().clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("no such overload: {}.{function}()", other.type_of()),
        )),
    }
}

fn is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list_arg("isSorted", &args)?;
    ret(CelValue::Bool(items.windows(2).all(|w| {
        matches!(
            w[0].partial_cmp(&w[1]),
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        )
    })))
}

fn sum<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let items = list_arg("sum", &args)?;
    let overflow = || ExecutionError::function_error("sum", "integer overflow");
    let mut acc = match items.first() {
        None | Some(CelValue::Int(_)) => CelValue::Int(0),
        Some(CelValue::UInt(_)) => CelValue::UInt(0),
        Some(CelValue::Float(_)) => CelValue::Float(0.0),
        Some(CelValue::Duration(_)) => CelValue::Duration(chrono::Duration::zero()),
        Some(other) => {
            return Err(ExecutionError::function_error(
                "sum",
                format!("no such overload: list({}).sum()", other.type_of()),
            ));
        }
    };
    for item in items {
        acc = match (acc, item) {
            (CelValue::Int(a), CelValue::Int(b)) => {
                CelValue::Int(a.checked_add(b).ok_or_else(overflow)?)
            }
            (CelValue::UInt(a), CelValue::UInt(b)) => {
                CelValue::UInt(a.checked_add(b).ok_or_else(overflow)?)
            }
            (CelValue::Float(a), CelValue::Float(b)) => CelValue::Float(a + b),
            (CelValue::Duration(a), CelValue::Duration(b)) => {
                CelValue::Duration(a.checked_add(&b).ok_or_else(overflow)?)
            }
            (_, b) => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("mixed types in list: {}", b.type_of()),
                ));
            }
        };
    }
    ret(acc)
}

/// The least (or greatest) element; an empty list is an error, as upstream's.
fn extreme<'b, 'v>(function: &str, args: &Args<'b, 'v>, want: std::cmp::Ordering) -> Ret<'b, 'v> {
    let items = list_arg(function, args)?;
    let mut best: Option<CelValue> = None;
    for item in items {
        best = Some(match best {
            None => item,
            Some(b) => match item.partial_cmp(&b) {
                Some(o) if o == want => item,
                Some(_) => b,
                None => {
                    return Err(ExecutionError::function_error(
                        function,
                        format!("{} and {} cannot be compared", item.type_of(), b.type_of()),
                    ));
                }
            },
        });
    }
    match best {
        Some(b) => ret(b),
        None => Err(ExecutionError::function_error(
            function,
            format!("{function}(list) called on an empty list"),
        )),
    }
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme("min", &args, std::cmp::Ordering::Less)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme("max", &args, std::cmp::Ordering::Greater)
}
