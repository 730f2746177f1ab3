//! cel-go's sets extension (`ext.Sets()`, enabled by kube-apiserver since 1.29):
//! `sets.contains(list, list)`, `sets.equivalent(list, list)` and `sets.intersects(list, list)`.
//!
//! Membership is CEL equality, numbers compared across types (`sets.contains([1], [1.0])` is
//! true), and duplicates do not count (`sets.equivalent([1, 1], [1])` is true).

use cel::common::types::LIST_TYPE;
use cel::common::value::Val;
use cel::{Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, ret};

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let l = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload("sets.contains", "list_sets_contains_list", l(), contains)?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        l(),
        equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        l(),
        intersects,
    )?;
    Ok(())
}

/// The items of argument `i`, a list.
fn items<'a>(
    function: &str,
    args: &'a Args<'_, '_>,
    i: usize,
) -> Result<Vec<&'a dyn Val>, ExecutionError> {
    let list = args
        .get(i)
        .ok_or_else(|| ExecutionError::invalid_argument_count(2, args.len()))?;
    let iterable = list.as_ref().as_iterable().ok_or_else(|| {
        ExecutionError::no_such_overload(
            function,
            args.iter()
                .map(|a| a.get_type().name().to_owned())
                .collect(),
        )
    })?;
    let mut out = Vec::new();
    let mut it = iterable.iter();
    while let Some(item) = it.next() {
        out.push(item);
    }
    Ok(out)
}

/// Whether every item of `sub` is in `list`.
fn all_in(list: &[&dyn Val], sub: &[&dyn Val]) -> bool {
    sub.iter().all(|s| list.iter().any(|l| l.equals(*s)))
}

fn contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let list = items("sets.contains", &args, 0)?;
    let sub = items("sets.contains", &args, 1)?;
    ret(CelValue::Bool(all_in(&list, &sub)))
}

fn equivalent<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = items("sets.equivalent", &args, 0)?;
    let b = items("sets.equivalent", &args, 1)?;
    ret(CelValue::Bool(all_in(&a, &b) && all_in(&b, &a)))
}

fn intersects<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = items("sets.intersects", &args, 0)?;
    let b = items("sets.intersects", &args, 1)?;
    ret(CelValue::Bool(
        b.iter().any(|x| a.iter().any(|y| y.equals(*x))),
    ))
}
