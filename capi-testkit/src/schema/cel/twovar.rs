//! cel-go's two-variable comprehensions (`ext.TwoVarComprehensions()`, enabled by kube-apiserver
//! since 1.32): the receiver macros `all(k, v, p)`, `exists(k, v, p)`, `existsOne(k, v, p)`,
//! `transformList(k, v, [filter,] e)`, `transformMap(k, v, [filter,] e)` and
//! `transformMapEntry(k, v, [filter,] e)`. On a list `k` is the index and `v` the item; on a map
//! `k` is the key and `v` its value.
//!
//! The `cel` crate's interpreter binds one variable per comprehension, so each macro iterates
//! the `[k, v]` pairs of its target (the internal `@pairs()`) with one variable, and the macro's
//! expressions read `k` and `v` as that pair's items (a nested comprehension that binds the same
//! name shadows them, as in cel-go). `transformMap` and `transformMapEntry` build their map with
//! the internal `@mapInsert`, which fails on a key `transformMapEntry` produces twice with
//! cel-go's `insert failed: key <k> already exists`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue, MapExpr,
    operators,
};
use cel::common::types::{DYN_TYPE, LIST_TYPE, MAP_TYPE};
use cel::objects::{Key, Map};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{DeclarationError, Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, fail, ret};

const PAIRS: &str = "@pairs";
const MAP_INSERT: &str = "@mapInsert";
const RESULT: &str = "@result";

/// The macros' kinds.
#[derive(Clone, Copy)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

/// Registers the macros and their internal functions.
pub(super) fn library(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_member_overload(PAIRS, "list_pairs", LIST_TYPE, vec![], pairs)?;
    env.add_member_overload(PAIRS, "map_pairs", MAP_TYPE, vec![], pairs)?;
    env.add_overload(
        MAP_INSERT,
        "map_insert_key_value",
        vec![MAP_TYPE, DYN_TYPE, DYN_TYPE],
        map_insert,
    )?;
    env.add_overload(
        MAP_INSERT,
        "map_insert_map",
        vec![MAP_TYPE, MAP_TYPE],
        map_insert,
    )?;
    for (name, kind, arities) in [
        ("all", Kind::All, &[3][..]),
        ("exists", Kind::Exists, &[3][..]),
        ("existsOne", Kind::ExistsOne, &[3][..]),
        ("transformList", Kind::TransformList, &[3, 4][..]),
        ("transformMap", Kind::TransformMap, &[3, 4][..]),
        ("transformMapEntry", Kind::TransformMapEntry, &[3, 4][..]),
    ] {
        for &arity in arities {
            env.add_macro(Macro::receiver(name, arity, move |h, t, a| {
                expand(kind, h, t, a)
            }))?;
        }
    }
    Ok(())
}

fn key_of(v: &CelValue) -> Result<Key, ExecutionError> {
    match v {
        CelValue::Int(i) => Ok(Key::Int(*i)),
        CelValue::UInt(u) => Ok(Key::Uint(*u)),
        CelValue::Bool(b) => Ok(Key::Bool(*b)),
        CelValue::String(s) => Ok(Key::String(Arc::clone(s))),
        other => Err(fail(
            MAP_INSERT,
            format!("unsupported key type: {}", other.type_of()),
        )),
    }
}

fn key_value(k: &Key) -> CelValue {
    match k {
        Key::Int(i) => CelValue::Int(*i),
        Key::Uint(u) => CelValue::UInt(*u),
        Key::Bool(b) => CelValue::Bool(*b),
        Key::String(s) => CelValue::String(Arc::clone(s)),
    }
}

/// `target.@pairs()`: `[[index, item], ...]` of a list, `[[key, value], ...]` of a map.
fn pairs<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let Some(target) = args.first() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    let pair = |k: CelValue, v: CelValue| CelValue::List(Arc::new(vec![k, v]));
    let out = match CelValue::try_from(target.as_ref())? {
        CelValue::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| pair(CelValue::Int(i as i64), v.clone()))
            .collect(),
        CelValue::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| pair(key_value(k), v.clone()))
            .collect(),
        other => {
            return Err(fail(
                PAIRS,
                format!("no such overload: {}", other.type_of()),
            ));
        }
    };
    ret(CelValue::List(Arc::new(out)))
}

/// `@mapInsert(map, key, value)`, and `@mapInsert(map, entries)` for `transformMapEntry`.
fn map_insert<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let values = args
        .iter()
        .map(|a| CelValue::try_from(a.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let (CelValue::Map(base), rest) = (
        values.first().cloned().unwrap_or(CelValue::Null),
        &values[1..],
    ) else {
        return Err(fail(MAP_INSERT, "no such overload"));
    };
    let mut map: HashMap<Key, CelValue> = base.map.as_ref().clone();
    match rest {
        [k, v] => {
            map.insert(key_of(k)?, v.clone());
        }
        [CelValue::Map(entries)] => {
            for (k, v) in entries.map.iter() {
                if map.contains_key(k) {
                    return Err(fail(
                        MAP_INSERT,
                        format!("insert failed: key {} already exists", show_key(k)),
                    ));
                }
                map.insert(k.clone(), v.clone());
            }
        }
        _ => return Err(fail(MAP_INSERT, "no such overload")),
    }
    ret(CelValue::Map(Map { map: Arc::new(map) }))
}

fn show_key(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::String(s) => s.to_string(),
    }
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    h.next_expr(Expr::Ident(name.to_owned()))
}

fn call(h: &mut MacroExprHelper<'_>, f: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: f.to_owned(),
        target: None,
        args,
    }))
}

fn boolean(h: &mut MacroExprHelper<'_>, b: bool) -> IdedExpr {
    h.next_expr(Expr::Literal(LiteralValue::Boolean(b.into())))
}

/// `@it[i]`.
fn item(h: &mut MacroExprHelper<'_>, it: &str, i: i64) -> IdedExpr {
    let base = ident(h, it);
    let index = h.next_expr(Expr::Literal(LiteralValue::Int(i.into())));
    call(h, operators::INDEX, vec![base, index])
}

/// `e` with the free identifiers `k` and `v` read from the pair `it`.
fn substitute(h: &mut MacroExprHelper<'_>, e: IdedExpr, k: &str, v: &str, it: &str) -> IdedExpr {
    let IdedExpr { id, expr } = e;
    let expr = match expr {
        Expr::Ident(name) if name == k => return item(h, it, 0),
        Expr::Ident(name) if name == v => return item(h, it, 1),
        Expr::Call(c) => Expr::Call(CallExpr {
            func_name: c.func_name,
            target: c.target.map(|t| Box::new(substitute(h, *t, k, v, it))),
            args: c
                .args
                .into_iter()
                .map(|a| substitute(h, a, k, v, it))
                .collect(),
        }),
        Expr::Select(mut s) => {
            s.operand = Box::new(substitute(h, *s.operand, k, v, it));
            Expr::Select(s)
        }
        Expr::List(mut l) => {
            l.elements = l
                .elements
                .into_iter()
                .map(|e| substitute(h, e, k, v, it))
                .collect();
            Expr::List(l)
        }
        Expr::Map(mut m) => {
            m.entries = m
                .entries
                .into_iter()
                .map(|mut entry| {
                    entry.expr = match entry.expr {
                        EntryExpr::MapEntry(mut me) => {
                            me.key = substitute(h, me.key, k, v, it);
                            me.value = substitute(h, me.value, k, v, it);
                            EntryExpr::MapEntry(me)
                        }
                        EntryExpr::StructField(mut sf) => {
                            sf.value = substitute(h, sf.value, k, v, it);
                            EntryExpr::StructField(sf)
                        }
                    };
                    entry
                })
                .collect();
            Expr::Map(m)
        }
        Expr::Struct(mut s) => {
            s.entries = s
                .entries
                .into_iter()
                .map(|mut entry| {
                    entry.expr = match entry.expr {
                        EntryExpr::MapEntry(mut me) => {
                            me.key = substitute(h, me.key, k, v, it);
                            me.value = substitute(h, me.value, k, v, it);
                            EntryExpr::MapEntry(me)
                        }
                        EntryExpr::StructField(mut sf) => {
                            sf.value = substitute(h, sf.value, k, v, it);
                            EntryExpr::StructField(sf)
                        }
                    };
                    entry
                })
                .collect();
            Expr::Struct(s)
        }
        Expr::Comprehension(mut c) => {
            c.iter_range = substitute(h, c.iter_range, k, v, it);
            c.accu_init = substitute(h, c.accu_init, k, v, it);
            let bound =
                |n: &str| c.iter_var == n || c.accu_var == n || c.iter_var2.as_deref() == Some(n);
            // A name the comprehension binds shadows the macro's inside its loop.
            let k2 = if bound(k) { "" } else { k };
            let v2 = if bound(v) { "" } else { v };
            let k2 = k2.to_owned();
            let v2 = v2.to_owned();
            c.loop_cond = substitute(h, c.loop_cond, &k2, &v2, it);
            c.loop_step = substitute(h, c.loop_step, &k2, &v2, it);
            c.result = substitute(h, c.result, &k2, &v2, it);
            Expr::Comprehension(c)
        }
        other => other,
    };
    IdedExpr { id, expr }
}

fn simple_name(h: &MacroExprHelper<'_>, e: &IdedExpr) -> Result<String, ParseError> {
    match &e.expr {
        Expr::Ident(name) => Ok(name.clone()),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    }
}

fn expand(
    kind: Kind,
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    if args.len() < 3 {
        return Ok(None);
    }
    let k = simple_name(h, &args[0])?;
    let v = simple_name(h, &args[1])?;
    if k == v {
        return Err(h.new_error(args[1].id, "duplicate variable name: ".to_owned() + &v));
    }
    for name in [&k, &v] {
        if name.as_str() == RESULT || name.as_str() == "__result__" {
            return Err(h.new_error(
                args[0].id,
                format!("iteration variable overwrites accumulator variable: {name}"),
            ));
        }
    }
    let Some(range) = target.take() else {
        return Ok(None);
    };
    let it = format!("@kv{}", args[0].id);
    let mut rest: Vec<IdedExpr> = args.drain(2..).collect();
    args.clear();
    let expr = rest.pop().map(|e| substitute(h, e, &k, &v, &it));
    let filter = rest.pop().map(|e| substitute(h, e, &k, &v, &it));
    let Some(expr) = expr else {
        return Ok(None);
    };
    let iter_range = h.next_expr(Expr::Call(CallExpr {
        func_name: PAIRS.to_owned(),
        target: Some(Box::new(range)),
        args: vec![],
    }));
    let accu = |h: &mut MacroExprHelper<'_>| ident(h, RESULT);
    let (init, cond, step, result) = match kind {
        Kind::All => {
            let a = accu(h);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![a]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_AND, vec![a, expr]);
            (boolean(h, true), cond, step, accu(h))
        }
        Kind::Exists => {
            let a = accu(h);
            let not = call(h, operators::LOGICAL_NOT, vec![a]);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![not]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_OR, vec![a, expr]);
            (boolean(h, false), cond, step, accu(h))
        }
        Kind::ExistsOne => {
            let a = accu(h);
            let one = h.next_expr(Expr::Literal(LiteralValue::Int(1.into())));
            let plus = call(h, operators::ADD, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, vec![expr, plus, a]);
            let a = accu(h);
            let one = h.next_expr(Expr::Literal(LiteralValue::Int(1.into())));
            let result = call(h, operators::EQUALS, vec![a, one]);
            let init = h.next_expr(Expr::Literal(LiteralValue::Int(0.into())));
            (init, boolean(h, true), step, result)
        }
        Kind::TransformList => {
            let a = accu(h);
            let one = h.next_expr(Expr::List(ListExpr::new(vec![expr])));
            let mut step = call(h, operators::ADD, vec![a, one]);
            if let Some(f) = filter {
                let a = accu(h);
                step = call(h, operators::CONDITIONAL, vec![f, step, a]);
            }
            let init = h.next_expr(Expr::List(ListExpr::new(Vec::new())));
            (init, boolean(h, true), step, accu(h))
        }
        Kind::TransformMap | Kind::TransformMapEntry => {
            let a = accu(h);
            let mut step = if matches!(kind, Kind::TransformMap) {
                let key = item(h, &it, 0);
                call(h, MAP_INSERT, vec![a, key, expr])
            } else {
                call(h, MAP_INSERT, vec![a, expr])
            };
            if let Some(f) = filter {
                let a = accu(h);
                step = call(h, operators::CONDITIONAL, vec![f, step, a]);
            }
            let init = h.next_expr(Expr::Map(MapExpr {
                entries: Vec::new(),
            }));
            (init, boolean(h, true), step, accu(h))
        }
    };
    Ok(Some(h.next_expr(Expr::Comprehension(Box::new(
        ComprehensionExpr {
            iter_range,
            iter_var: it,
            iter_var2: None,
            accu_var: RESULT.to_owned(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        },
    )))))
}
