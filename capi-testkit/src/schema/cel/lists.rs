//! Kubernetes' lists library (`k8s.io/apiserver/pkg/cel/library/lists.go`): `isSorted()`, `sum()`,
//! `min()`, `max()`, `indexOf(x)` and `lastIndexOf(x)` (by CEL equality, numbers compared across
//! types; `-1` when absent).

use cel::{Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, ret};

pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    use cel::common::types::LIST_TYPE;
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_a_index_of_int",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_a_last_index_of_int",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        last_index_of,
    )?;
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
            format!("{function} called on empty list"),
        )),
    }
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme("min", &args, std::cmp::Ordering::Less)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    extreme("max", &args, std::cmp::Ordering::Greater)
}

/// The position of the first (or, `last`, the last) item equal to argument 1; `-1` if none.
fn position<'b, 'v>(function: &str, args: &Args<'b, 'v>, last: bool) -> Ret<'b, 'v> {
    let (Some(list), Some(item)) = (args.first(), args.get(1)) else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let Some(iterable) = list.as_ref().as_iterable() else {
        return Err(ExecutionError::function_error(
            function,
            format!("no such overload: {}.{function}()", list.get_type().name()),
        ));
    };
    let mut it = iterable.iter();
    let mut found = -1i64;
    let mut i = 0i64;
    while let Some(x) = it.next() {
        if x.equals(item.as_ref()) {
            found = i;
            if !last {
                break;
            }
        }
        i += 1;
    }
    ret(CelValue::Int(found))
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    position("indexOf", &args, false)
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    position("lastIndexOf", &args, true)
}
