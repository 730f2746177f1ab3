//! cel-go's lists extension as kube-apiserver 1.36 enables it (`ext.Lists(ext.ListsVersion(3))`):
//! `slice`, `flatten`, `sort`, the `sortBy` macro, `lists.range`, `reverse` and `distinct`.
//!
//! The `cel` crate's extension implements them as cel-go does, except `lists.range`, which
//! follows a later cel-go (an error on a negative size). The cel-go Kubernetes 1.36 vendors
//! returns an empty list for a negative size, and has no size bound of its own: the runtime cost
//! limit stops a range beyond [`super::PER_CALL_LIMIT`] items, as it does here, with cel-go's
//! cost error. This module registers that `lists.range` first, then the crate's extension, whose
//! own `lists.range` is then refused as a duplicate (stopping it before its `sortBy` macro,
//! which this module adds itself).

use std::sync::Arc;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue, operators,
};
use cel::common::types::INT_TYPE;
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{DeclarationError, Env, Value as CelValue};

use super::support::{Args, Ret, fail, int_arg, ret};

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload("lists.range", "lists_range", vec![INT_TYPE], range)?;
    match cel::extensions::lists(env) {
        Ok(()) => {}
        Err(DeclarationError::DuplicateOverload { function, .. }) if function == "lists.range" => {}
        Err(e) => return Err(e),
    }
    env.add_macro(Macro::receiver("sortBy", 2, sort_by))?;
    Ok(())
}

/// `lists.range(n)`: `[0, 1, ..., n - 1]`, empty for `n <= 0`.
fn range<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let n = int_arg("lists.range", &args, 0)?;
    if u64::try_from(n).is_ok_and(|n| n > super::PER_CALL_LIMIT) {
        return Err(fail(
            "lists.range",
            "operation cancelled: actual cost limit exceeded",
        ));
    }
    ret(CelValue::List(Arc::new(
        (0..n.max(0)).map(CelValue::Int).collect(),
    )))
}

/// The variable `sortBy` binds its target to.
const INPUT: &str = "@__sortBy_input__";

/// Expands `list.sortBy(e, key)` as cel-go does: `list` bound to `@__sortBy_input__`, then
/// `@__sortBy_input__.@sortByAssociatedKeys(@__sortBy_input__.map(e, key))`.
fn sort_by(
    helper: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    if args.len() != 2 {
        return Ok(None);
    }
    let Some(list) = target.take() else {
        return Ok(None);
    };
    if matches!(list.expr, Expr::Literal(_) | Expr::Map(_) | Expr::Struct(_)) {
        return Err(helper.new_error(
            list.id,
            "sortBy can only be applied to a list, identifier, comprehension, call or select expression",
        ));
    }
    let (Some(key), Some(var)) = (args.pop(), args.pop()) else {
        return Ok(None);
    };
    let Expr::Ident(var_name) = var.expr else {
        return Err(helper.new_error(var.id, "argument must be a simple name"));
    };
    fn ident(helper: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
        helper.next_expr(Expr::Ident(name.to_owned()))
    }
    // `@__sortBy_input__.map(e, key)`.
    let result = "@result";
    let keys_step = {
        let accu = ident(helper, result);
        let item = helper.next_expr(Expr::List(ListExpr::new(vec![key])));
        helper.next_expr(Expr::Call(CallExpr {
            func_name: operators::ADD.to_owned(),
            target: None,
            args: vec![accu, item],
        }))
    };
    let keys = ComprehensionExpr {
        iter_range: ident(helper, INPUT),
        iter_var: var_name,
        iter_var2: None,
        accu_var: result.to_owned(),
        accu_init: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(true.into()))),
        loop_step: keys_step,
        result: ident(helper, result),
    };
    let keys = helper.next_expr(Expr::Comprehension(Box::new(keys)));
    let sorted = Expr::Call(CallExpr {
        func_name: "@sortByAssociatedKeys".to_owned(),
        target: Some(Box::new(ident(helper, INPUT))),
        args: vec![keys],
    });
    let bind = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: INPUT.to_owned(),
        accu_init: list,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: ident(helper, INPUT),
        result: helper.next_expr(sorted),
    };
    Ok(Some(helper.next_expr(Expr::Comprehension(Box::new(bind)))))
}
