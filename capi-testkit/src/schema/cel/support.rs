//! What the CEL libraries share: the shape of an overload, argument extraction, and the `Val`
//! implementation of the libraries' own (opaque) types.

use cel::common::types::{CelBool, CelInt, CelString};
use cel::common::value::{CowVal, StaticVal};
use cel::{ExecutionError, Value as CelValue};

/// The arguments of an overload (a member overload's receiver first).
pub(super) type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
/// What an overload returns.
pub(super) type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// A built-in value as an overload's result.
pub(super) fn ret<'b, 'v>(v: CelValue) -> Ret<'b, 'v> {
    let boxed: Box<dyn cel::common::value::Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

/// A value of one of the libraries' types as an overload's result.
pub(super) fn owned<'b, 'v, T: StaticVal>(v: T) -> Ret<'b, 'v> {
    Ok(CowVal::owned(v))
}

/// An error of `function`, printed by the rule's evaluation error as `message` alone, as cel-go
/// prints a library function's error.
pub(super) fn fail(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

/// The type name of argument `i`, for an overload error.
fn type_name(args: &Args<'_, '_>, i: usize) -> String {
    args.get(i).map_or_else(
        || "<missing>".to_owned(),
        |a| a.get_type().name().to_owned(),
    )
}

fn mismatch(function: &str, args: &Args<'_, '_>, i: usize) -> ExecutionError {
    ExecutionError::no_such_overload(
        function,
        (0..args.len().max(i + 1))
            .map(|j| type_name(args, j))
            .collect(),
    )
}

/// Argument `i` as a value of one of the libraries' types.
pub(super) fn arg<'a, T: StaticVal>(
    function: &str,
    args: &'a Args<'_, '_>,
    i: usize,
) -> Result<&'a T, ExecutionError> {
    args.get(i)
        .and_then(|a| a.downcast_ref::<T>())
        .ok_or_else(|| mismatch(function, args, i))
}

/// Argument `i` as a string.
pub(super) fn str_arg<'a>(
    function: &str,
    args: &'a Args<'_, '_>,
    i: usize,
) -> Result<&'a str, ExecutionError> {
    args.get(i)
        .and_then(|a| a.downcast_ref::<CelString>())
        .map(CelString::inner)
        .ok_or_else(|| mismatch(function, args, i))
}

/// Argument `i` as an int.
pub(super) fn int_arg(
    function: &str,
    args: &Args<'_, '_>,
    i: usize,
) -> Result<i64, ExecutionError> {
    args.get(i)
        .and_then(|a| a.downcast_ref::<CelInt>())
        .map(|v| *v.inner())
        .ok_or_else(|| mismatch(function, args, i))
}

/// Argument `i` as a bool.
pub(super) fn bool_arg(
    function: &str,
    args: &Args<'_, '_>,
    i: usize,
) -> Result<bool, ExecutionError> {
    args.get(i)
        .and_then(|a| a.downcast_ref::<CelBool>())
        .map(|v| *v.inner())
        .ok_or_else(|| mismatch(function, args, i))
}

/// Implements `Val` (and `StaticVal`) for a library type with a `static` CEL type, equal by
/// `PartialEq`.
macro_rules! opaque_val {
    ($t:ty, $cel_type:path) => {
        impl ::cel::common::value::Val for $t {
            fn get_type(&self) -> &::cel::common::types::Type {
                &$cel_type
            }
            fn cel_type() -> &'static ::cel::common::types::Type {
                &$cel_type
            }
            fn equals(&self, other: &dyn ::cel::common::value::Val) -> bool {
                other.downcast_ref::<$t>().is_some_and(|o| o == self)
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn ::cel::common::value::Val + 'v> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn ::std::any::Any> {
                Some(self)
            }
        }
        impl ::cel::common::value::StaticVal for $t {}
    };
}
pub(super) use opaque_val;

/// An overload's implementation.
pub(super) type Func = cel::common::functions::Function;
