//! The part of cel-go's type check that this crate can do without a type checker: a rule that
//! selects a field of `self` (or `oldSelf`, or of an object below them) that the schema does not
//! declare is a compile error, `undefined field 'x'`, reported at the selection.
//!
//! Only what is certain is reported, so that no rule a real kube-apiserver accepts is refused:
//! a selection is checked only when its operand's schema is known exactly, an object with
//! `properties` that does not preserve unknown fields and is not `x-kubernetes-int-or-string`,
//! below a rule node whose schema upstream can type (every schema below it has a `type`).
//! The field tested by `has()` is not checked (its operand is), nor is anything below a value
//! whose type is not known (a function's result, an index, a comprehension over something else
//! than a list of known items, the `metadata` of a resource).

use cel::Program;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use super::escape;

/// What an expression's value is known to be.
#[derive(Clone, Copy)]
struct Known<'a> {
    schema: &'a JSONSchemaProps,
    /// At the root of a resource (or of an embedded one): `apiVersion`, `kind` and `metadata`
    /// are there whatever the schema says.
    resource: bool,
}

fn known(schema: &JSONSchemaProps, resource: bool) -> Known<'_> {
    Known {
        schema,
        resource: resource || schema.x_kubernetes_embedded_resource == Some(true),
    }
}

struct Checker<'a, 'p> {
    program: &'p Program,
    /// `(offset, field)` of each undefined field.
    found: Vec<(u32, String)>,
    scope: Vec<(&'p str, Option<Known<'a>>)>,
}

impl<'a, 'p> Checker<'a, 'p> {
    fn lookup(&self, name: &str) -> Option<Known<'a>> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, k)| *k)
    }

    /// The schema of the field `field` of a value of `of`, reporting `field` if `of` certainly
    /// has no such field.
    fn select(&mut self, of: Known<'a>, field: &str, id: u64) -> Option<Known<'a>> {
        let s = of.schema;
        if s.x_kubernetes_int_or_string == Some(true)
            || s.x_kubernetes_preserve_unknown_fields == Some(true)
            || s.type_.as_deref() != Some("object")
        {
            return None;
        }
        if let Some(JSONSchemaPropsOrBool::Schema(values)) = &s.additional_properties {
            return Some(known(values, false));
        }
        if of.resource && matches!(field, "apiVersion" | "kind" | "metadata") {
            return None;
        }
        let props = s.properties.as_ref()?;
        if let Some(child) = props
            .iter()
            .find(|(name, _)| name.as_str() == field || escape(name).as_deref() == Some(field))
            .map(|(_, child)| child)
        {
            return Some(known(child, false));
        }
        if let Some((start, _)) = self.program.source_info().offset_for(id) {
            self.found.push((start, field.to_owned()));
        }
        None
    }

    /// Checks `e` and returns what its value is known to be.
    fn check(&mut self, e: &'p IdedExpr) -> Option<Known<'a>> {
        match &e.expr {
            Expr::Ident(name) => self.lookup(name),
            Expr::Select(s) => {
                let operand = self.check(&s.operand)?;
                if s.test {
                    return None;
                }
                self.select(operand, &s.field, e.id)
            }
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.check(t);
                }
                for a in &c.args {
                    self.check(a);
                }
                None
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range);
                self.check(&c.accu_init);
                let items = range.and_then(|r| {
                    if r.schema.type_.as_deref() != Some("array") {
                        return None;
                    }
                    match &r.schema.items {
                        Some(JSONSchemaPropsOrArray::Schema(i)) => Some(known(i, false)),
                        _ => None,
                    }
                });
                let depth = self.scope.len();
                match &c.iter_var2 {
                    None => self.scope.push((&c.iter_var, items)),
                    Some(second) => {
                        self.scope.push((&c.iter_var, None));
                        self.scope.push((second, items));
                    }
                }
                self.scope.push((&c.accu_var, None));
                self.check(&c.loop_cond);
                self.check(&c.loop_step);
                self.check(&c.result);
                self.scope.truncate(depth);
                None
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.check(el);
                }
                None
            }
            Expr::Map(m) => {
                self.entries(&m.entries);
                None
            }
            Expr::Struct(s) => {
                self.entries(&s.entries);
                None
            }
            Expr::Literal(_) | Expr::Unspecified => None,
        }
    }

    fn entries(&mut self, entries: &'p [cel::common::ast::IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.check(&me.key);
                    self.check(&me.value);
                }
                EntryExpr::StructField(sf) => {
                    self.check(&sf.value);
                }
            }
        }
    }
}

/// Whether upstream's `SchemaDeclType` gives `schema` a type: not if it, or a schema below it, has
/// no `type` (and is not `x-kubernetes-int-or-string`). Rules on such a node are not checked.
fn declared(schema: &JSONSchemaProps) -> bool {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return true;
    }
    match schema.type_.as_deref() {
        None => false,
        Some("array") => match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(i)) => declared(i),
            _ => false,
        },
        Some("object") => {
            if let Some(JSONSchemaPropsOrBool::Schema(a)) = &schema.additional_properties {
                return declared(a);
            }
            schema.properties.iter().flatten().all(|(_, p)| declared(p))
        }
        Some(_) => true,
    }
}

/// cel-go's `ToDisplayString` of one error at byte `offset` of `src`:
/// `ERROR: <input>:L:C: msg`, the line, and a caret under the column.
fn display(src: &str, offset: u32, msg: &str) -> String {
    let offset = (offset as usize).min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = src[line_start..].split('\n').next().unwrap_or_default();
    let column: Vec<char> = src.get(line_start..offset).unwrap_or("").chars().collect();
    let dots: String = column
        .iter()
        .map(|c| if c.len_utf8() > 1 { '\u{FF0E}' } else { '.' })
        .collect();
    format!(
        "ERROR: <input>:{line_no}:{}: {msg}\n | {}\n | {dots}^",
        column.len() + 1,
        line.replace('\t', " ")
    )
}

/// The `undefined field` errors of `program` (of source `src`) on a node of schema `schema`,
/// joined as cel-go joins a check's errors; `None` if there are none. `old_self` says whether
/// `oldSelf` is the node's old value (it is not when it is an optional).
pub(super) fn undefined_fields(
    program: &Program,
    src: &str,
    schema: &JSONSchemaProps,
    resource: bool,
    old_self: bool,
) -> Option<String> {
    if !declared(schema) {
        return None;
    }
    let node = known(schema, resource);
    let mut checker = Checker {
        program,
        found: Vec::new(),
        scope: vec![("self", Some(node))],
    };
    checker
        .scope
        .push(("oldSelf", if old_self { Some(node) } else { None }));
    checker.check(program.expression());
    let mut found = checker.found;
    if found.is_empty() {
        return None;
    }
    found.sort();
    found.dedup();
    Some(
        found
            .iter()
            .map(|(offset, field)| display(src, *offset, &format!("undefined field '{field}'")))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
