//! The version 2 functions of cel-go's optional types library, which kube-apiserver enables at its
//! latest version (`cel.OptionalTypes()`) and the `cel` crate lacks: `list.first()` and
//! `list.last()` (an optional of the first or last item, `optional.none()` on an empty list), and
//! `optional.unwrap(list)` and `list.unwrapOpt()` (the values of a list of optionals, the empty
//! ones dropped; a non-optional item fails with `value <item> is not optional`).

use std::sync::Arc;

use cel::common::types::{CelOptional, LIST_TYPE};
use cel::common::value::Val;
use cel::objects::OptionalValue;
use cel::{Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, fail, ret};

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_member_overload("first", "list_first", LIST_TYPE, vec![], first)?;
    env.add_member_overload("last", "list_last", LIST_TYPE, vec![], last)?;
    env.add_overload(
        "optional.unwrap",
        "optional_unwrap",
        vec![LIST_TYPE],
        unwrap,
    )?;
    env.add_member_overload("unwrapOpt", "optional_unwrapOpt", LIST_TYPE, vec![], unwrap)?;
    Ok(())
}

/// The items of the list argument 0.
fn items<'a>(function: &str, args: &'a Args<'_, '_>) -> Result<Vec<&'a dyn Val>, ExecutionError> {
    let list = args
        .first()
        .ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))?;
    let iterable = list
        .as_ref()
        .as_iterable()
        .ok_or_else(|| fail(function, format!("no such overload: {function}")))?;
    let mut out = Vec::new();
    let mut it = iterable.iter();
    while let Some(item) = it.next() {
        out.push(item);
    }
    Ok(out)
}

fn optional(v: Option<CelValue>) -> CelValue {
    CelValue::Opaque(Arc::new(match v {
        Some(v) => OptionalValue::of(v),
        None => OptionalValue::none(),
    }))
}

fn end<'b, 'v>(function: &str, args: &Args<'b, 'v>, last: bool) -> Ret<'b, 'v> {
    let items = items(function, args)?;
    let item = if last { items.last() } else { items.first() };
    let value = item.map(|v| CelValue::try_from(*v)).transpose()?;
    ret(optional(value))
}

fn first<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    end("first", &args, false)
}

fn last<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    end("last", &args, true)
}

/// Go's `%v` of an item that is not an optional, roughly.
fn shown(v: &dyn Val) -> String {
    match CelValue::try_from(v) {
        Ok(CelValue::Int(i)) => i.to_string(),
        Ok(CelValue::UInt(u)) => u.to_string(),
        Ok(CelValue::Float(f)) => crate::gofmt::float(f),
        Ok(CelValue::Bool(b)) => b.to_string(),
        Ok(CelValue::String(s)) => s.to_string(),
        _ => v.get_type().name().to_owned(),
    }
}

fn unwrap<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut out = Vec::new();
    for item in items("optional.unwrap", &args)? {
        let Some(opt) = item.downcast_ref::<CelOptional>() else {
            return Err(fail(
                "optional.unwrap",
                format!("value {} is not optional", shown(item)),
            ));
        };
        if let Some(v) = opt.option() {
            out.push(CelValue::try_from(v)?);
        }
    }
    ret(CelValue::List(Arc::new(out)))
}
