//! CEL validation rules (`x-kubernetes-validations`), as apiextensions-apiserver's
//! `pkg/apiserver/schema/cel` evaluates them, with the `cel` crate as the interpreter.
//!
//! Rules are compiled once, when a CRD version's schema is compiled ([`attach`]): a rule (or a
//! `messageExpression`) that does not parse is a compile error, reported on the CRD write, worded
//! as upstream words it (`compilation failed: ERROR: <input>:1:9: ...`). The `cel` crate has no
//! type checker: [`check`] type-checks each rule against the schema's declared types as cel-go's
//! checker does (`undefined field 'x'`, `found no matching overload for '_+_' applied to
//! '(int, string)'`, `cel expression must evaluate to a bool`), refusing only what it is certain
//! of; what it cannot type (`dyn`) surfaces at evaluation, as `... evaluating rule: ...` errors.
//!
//! The environment has the standard library and macros, the strings extension and the
//! Kubernetes libraries of `k8s.io/apiserver/pkg/cel/library`: lists (`isSorted`, `sum`, `min`,
//! `max`), regex (`find`, `findAll`), quantity, URL, IP and CIDR, semver and format, each in a
//! module of its own. A library function's error fails the rule as cel-go words it
//! (`<message> evaluating rule: <rule>`).
//!
//! Evaluation ([`validate`]) binds `self` to the value at the rule's node (and `oldSelf` to the
//! correlated old value for transition rules), converted by the schema as upstream's
//! `UnstructuredToVal` does: objects with `properties` become maps keyed by the escaped property
//! names, `additionalProperties` maps keep their keys, `integer` is `int`, `number` is `double`,
//! and strings with format `duration`, `date`, `date-time` and `byte` become durations,
//! timestamps and bytes.
//!
//! Cost: `cel` has no runtime cost tracking, so each evaluation is estimated before it runs, as
//! the expression's size times `(values in self + 1)` to the power of the comprehension nesting
//! depth (a bound on the work of a CEL program, which has no unbounded loops). An estimate above
//! [`PER_CALL_LIMIT`] fails the rule with upstream's `call cost exceeds limit` error; the estimates
//! of one object's rules share [`RUNTIME_BUDGET`], after which validation stops with upstream's
//! `running out of cost budget` error.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::objects::{Key, Map, OptionalValue};
use cel::{Context, Env, ExecutionError, Program, Value as CelValue};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use serde_json::Value;

mod check;
mod format;
mod lists;
mod lists_ext;
mod net;
mod optional;
mod quantity;
mod regex;
mod semver;
mod sets;
mod strings;
mod support;
mod twovar;
mod url;

#[cfg(test)]
mod libs_tests;
#[cfg(test)]
mod tests;

use super::field_error::{FieldError, FieldErrorType};
use super::node::Node;
use super::values::correlate_map_item;
use super::{formats, join};
use crate::gofmt;

/// Upstream's `PerCallLimit`: the most an evaluation of one rule may cost.
pub const PER_CALL_LIMIT: u64 = 1_000_000;

/// Upstream's `RuntimeCELCostBudget`: the most all rules of one object may cost together.
pub const RUNTIME_BUDGET: u64 = 10_000_000;

/// The deepest bracket nesting a rule may have: the parser is recursive, so deeper rules are
/// refused at compile time instead of overflowing the stack.
const MAX_NESTING: usize = 64;

/// The CEL environment: the standard library, its macros, the strings extension, and the
/// Kubernetes libraries: lists (`isSorted`, `sum`, `min`, `max`), regex (`find`, `findAll`),
/// quantity, URL, IP and CIDR, semver and format.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    type Library = fn(&mut Env) -> Result<(), cel::DeclarationError>;
    let libraries: [(&str, Library); 12] = [
        ("strings", strings::library),
        ("optional types", optional::library),
        ("two-variable comprehensions", twovar::library),
        ("sets", sets::library),
        ("lists extension", lists_ext::library),
        ("lists", lists::library),
        ("regex", regex::library),
        ("quantity", quantity::library),
        ("url", url::library),
        ("ip and cidr", net::library),
        ("semver", semver::library),
        ("format", format::library),
    ];
    for (name, library) in libraries {
        if let Err(e) = env.add_extension(library) {
            tracing::error!(error = %e, library = name, "a CEL library could not be registered");
        }
    }
    Arc::new(env)
});

/// One compiled rule.
pub(super) struct Rule {
    /// The rule as written.
    source: String,
    program: Program,
    /// `message`, trimmed, if given.
    message: Option<String>,
    message_expression: Option<Program>,
    reason: Option<FieldErrorType>,
    /// `fieldPath`, normalized as upstream prints it (`spec.x[key]`), relative to the node.
    field_path: Option<String>,
    optional_old_self: bool,
    /// Whether the rule reads `oldSelf`.
    transition: bool,
    /// The expression's node count (message expression included).
    size: u64,
    /// The deepest nesting of comprehensions (message expression included).
    depth: u32,
}

/// The compiled rules of one schema node, shared between clones of the schema.
#[derive(Clone, Default)]
pub(super) struct Rules(Arc<Vec<Rule>>);

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|r| &r.source))
            .finish()
    }
}

/// One problem with a CRD's rules, as a 422 cause of the CRD write. `field` is relative to the
/// version's `openAPIV3Schema` (e.g. `properties[spec].x-kubernetes-validations[0].rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The field below `openAPIV3Schema`.
    pub field: String,
    /// The `StatusCause` reason, e.g. `FieldValueInvalid`.
    pub reason: &'static str,
    /// The `StatusCause` message.
    pub message: String,
}

/// Go's `%#v` of an internal `apiextensions.ValidationRule`, as upstream prints the rule in its
/// compile errors (pointers are printed without their address).
fn sharp_v_rule(r: &ValidationRule) -> String {
    let ptr = |set: bool, ty: &str| {
        if set {
            format!("(*{ty})(0x0)")
        } else {
            format!("(*{ty})(nil)")
        }
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{}, FieldPath:{}, OptionalOldSelf:{}}}",
        gofmt::quote(&r.rule),
        gofmt::quote(r.message.as_deref().unwrap_or_default()),
        gofmt::quote(r.message_expression.as_deref().unwrap_or_default()),
        ptr(r.reason.is_some(), "apiextensions.FieldValueErrorReason"),
        gofmt::quote(r.field_path.as_deref().unwrap_or_default()),
        ptr(r.optional_old_self.is_some(), "bool"),
    )
}

/// The deepest bracket nesting of `src`, outside string literals (roughly: quotes toggle).
fn nesting(src: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None::<char>);
    let mut escaped = false;
    for c in src.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Compiles one expression, refusing ones nested too deeply for the recursive parser.
fn compile_expr(src: &str) -> Result<Program, String> {
    if nesting(src) > MAX_NESTING {
        return Err(format!(
            "ERROR: <input>:1:1: expression recursion limit exceeded: {MAX_NESTING}"
        ));
    }
    match catch_unwind(|| ENV.compile(src)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("ERROR: <input>:1:1: the expression could not be parsed".to_owned()),
    }
}

/// The node count and comprehension nesting depth of an expression.
fn measure(e: &IdedExpr) -> (u64, u32) {
    let mut size = 1u64;
    let mut depth = 0u32;
    let mut add = |e: &IdedExpr| {
        let (s, d) = measure(e);
        size = size.saturating_add(s);
        depth = depth.max(d);
    };
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                add(t);
            }
            c.args.iter().for_each(&mut add);
        }
        Expr::Comprehension(c) => {
            add(&c.iter_range);
            add(&c.accu_init);
            let mut inner = 0;
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                let (s, d) = measure(part);
                size = size.saturating_add(s);
                inner = inner.max(d);
            }
            depth = depth.max(inner + 1);
        }
        Expr::List(l) => l.elements.iter().for_each(&mut add),
        Expr::Map(m) => {
            for entry in &m.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(me) => {
                        add(&me.key);
                        add(&me.value);
                    }
                    EntryExpr::StructField(sf) => add(&sf.value),
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(me) => {
                        add(&me.key);
                        add(&me.value);
                    }
                    EntryExpr::StructField(sf) => add(&sf.value),
                }
            }
        }
        Expr::Select(s) => add(&s.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    (size, depth)
}

/// `fieldPath` (`.a.b['c'][0]`) normalized as upstream's `field.Path` prints it (`a.b[c][0]`),
/// checked against the schema below `p`.
fn normalize_field_path(fp: &str, p: &JSONSchemaProps) -> Option<String> {
    let mut out = String::new();
    let mut rest = fp;
    let mut schema = Some(p);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.find(['.', '[']).unwrap_or(r.len());
            let (name, after) = r.split_at(n);
            if name.is_empty() {
                return None;
            }
            schema = schema.and_then(|s| s.properties.as_ref()?.get(name));
            schema?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
            rest = after;
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            let key = &r[..end];
            schema = schema.and_then(|s| match &s.properties {
                Some(props) => props.get(key),
                None => match &s.additional_properties {
                    Some(JSONSchemaPropsOrBool::Schema(a)) => Some(a.as_ref()),
                    _ => None,
                },
            });
            schema?;
            out.push('[');
            out.push_str(key);
            out.push(']');
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let idx = &r[..end];
            if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            schema = schema.and_then(|s| match &s.items {
                Some(JSONSchemaPropsOrArray::Schema(i)) => Some(i.as_ref()),
                _ => None,
            });
            schema?;
            out.push('[');
            out.push_str(idx);
            out.push(']');
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(out)
}

/// Compiles the rules of `p` (the schema of `node`) and of every schema below it into `node`,
/// reporting the rules that do not compile. `path` is the field path below `openAPIV3Schema`.
pub(super) fn attach(
    node: &mut Node,
    p: &JSONSchemaProps,
    path: &str,
    errors: &mut Vec<RuleError>,
) {
    let p_schema = p;
    let self_type = check::self_type_name();
    let mut rules = Vec::new();
    for (i, r) in p.x_kubernetes_validations.iter().flatten().enumerate() {
        let at = join(path, &format!("x-kubernetes-validations[{i}]"));
        let before = errors.len();
        let mut fail = |field: &str, reason: &'static str, message: String| {
            errors.push(RuleError {
                field: join(&at, field),
                reason,
                message,
            });
        };
        if r.rule.trim().is_empty() {
            fail("rule", "FieldValueRequired", "Required value".to_owned());
            continue;
        }
        let site = check::Site {
            schema: p_schema,
            resource: path.is_empty(),
            old_self: r.optional_old_self != Some(true),
            type_name: &self_type,
        };
        // The error detail upstream gives `src` (a rule, or a message expression, prefixed
        // `messageExpression `), if it does not compile.
        let checked = |src: &str, expect: check::Expect| {
            let prefix = match expect {
                check::Expect::Bool => "",
                check::Expect::String => "messageExpression ",
            };
            let p = compile_expr(src).map_err(|e| format!("{prefix}compilation failed: {e}"))?;
            match check::check(&p, src, site, expect) {
                Ok(()) => Ok(p),
                Err(check::Refusal::Issues(e)) => Err(format!("{prefix}compilation failed: {e}")),
                Err(check::Refusal::WrongType) => Err(match expect {
                    check::Expect::Bool => "cel expression must evaluate to a bool".to_owned(),
                    check::Expect::String => {
                        "messageExpression must evaluate to a string".to_owned()
                    }
                }),
            }
        };
        let program = match checked(&r.rule, check::Expect::Bool) {
            Ok(p) => Some(p),
            Err(e) => {
                fail(
                    "rule",
                    "FieldValueInvalid",
                    format!("Invalid value: {}: {e}", sharp_v_rule(r)),
                );
                None
            }
        };
        let message = r.message.as_deref().map(str::trim).map(str::to_owned);
        if let Some(m) = &r.message {
            if m.trim().is_empty() {
                fail(
                    "message",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: message must be non-empty if specified",
                        gofmt::quote(m)
                    ),
                );
            } else if m.contains(['\n', '\r']) {
                fail(
                    "message",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {}: message must not contain line breaks",
                        gofmt::quote(m)
                    ),
                );
            }
        }
        let message_expression = match r.message_expression.as_deref() {
            None => None,
            Some(me) if me.trim().is_empty() => {
                fail(
                    "messageExpression",
                    "FieldValueRequired",
                    "Required value: messageExpression must be non-empty if specified".to_owned(),
                );
                None
            }
            Some(me) => match checked(me, check::Expect::String) {
                Ok(p) => Some(p),
                Err(e) => {
                    fail(
                        "messageExpression",
                        "FieldValueInvalid",
                        format!("Invalid value: {}: {e}", sharp_v_rule(r)),
                    );
                    None
                }
            },
        };
        let reason = match r.reason.as_deref() {
            None | Some("FieldValueInvalid") => None,
            Some("FieldValueForbidden") => Some(FieldErrorType::Forbidden),
            Some("FieldValueRequired") => Some(FieldErrorType::Required),
            Some("FieldValueDuplicate") => Some(FieldErrorType::Duplicate),
            Some(other) => {
                fail(
                    "reason",
                    "FieldValueNotSupported",
                    format!(
                        "Unsupported value: {}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
                        gofmt::quote(other)
                    ),
                );
                None
            }
        };
        let field_path = match r.field_path.as_deref() {
            None | Some("") => None,
            Some(fp) => match normalize_field_path(fp, p) {
                Some(n) => Some(n),
                None => {
                    fail(
                        "fieldPath",
                        "FieldValueInvalid",
                        format!(
                            "Invalid value: {}: fieldPath must be a valid path",
                            gofmt::quote(fp)
                        ),
                    );
                    None
                }
            },
        };
        let transition = program
            .as_ref()
            .is_some_and(|p| p.references().has_variable("oldSelf"));
        if r.optional_old_self == Some(true) && program.is_some() && !transition {
            fail(
                "optionalOldSelf",
                "FieldValueForbidden",
                "Forbidden: may not be set if oldSelf is not used in rule".to_owned(),
            );
        }
        let Some(program) = program else { continue };
        if errors.len() > before {
            continue;
        }
        let (mut size, mut depth) = measure(program.expression());
        if let Some(me) = &message_expression {
            let (s, d) = measure(me.expression());
            size = size.saturating_add(s);
            depth = depth.max(d);
        }
        rules.push(Rule {
            source: r.rule.clone(),
            program,
            message,
            message_expression,
            reason,
            field_path,
            optional_old_self: r.optional_old_self == Some(true),
            transition,
            size,
            depth,
        });
    }
    node.cel_rules = Rules(Arc::new(rules));
    if let (Some(props), Some(raw)) = (node.properties.as_mut(), p.properties.as_ref()) {
        for (k, child) in props.iter_mut() {
            if let Some(rp) = raw.get(k) {
                attach(child, rp, &join(path, &format!("properties[{k}]")), errors);
            }
        }
    }
    if let (Some(items), Some(JSONSchemaPropsOrArray::Schema(rp))) =
        (node.items.as_deref_mut(), p.items.as_ref())
    {
        attach(items, rp, &join(path, "items"), errors);
    }
    if let (Some(ap), Some(JSONSchemaPropsOrBool::Schema(rp))) = (
        node.additional.as_deref_mut(),
        p.additional_properties.as_ref(),
    ) {
        attach(ap, rp, &join(path, "additionalProperties"), errors);
    }
}

/// What is left of an object's cost budget.
#[derive(Debug)]
pub(super) struct Budget {
    remaining: u64,
    exhausted: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            remaining: RUNTIME_BUDGET,
            exhausted: false,
        }
    }
}

/// CEL's reserved words, which upstream escapes as `__word__` in property names.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as CEL sees it (upstream's `Escape`), or `None` if CEL cannot access it.
fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok_first = first.is_ascii_alphabetic() || matches!(first, '_' | '.' | '-' | '/');
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !ok_first || !ok_rest {
        return None;
    }
    Some(
        name.replace("__", "__underscores__")
            .replace('.', "__dot__")
            .replace('-', "__dash__")
            .replace('/', "__slash__"),
    )
}

fn key(s: &str) -> Key {
    Key::String(Arc::new(s.to_owned()))
}

fn map(entries: HashMap<Key, CelValue>) -> CelValue {
    CelValue::Map(Map {
        map: Arc::new(entries),
    })
}

fn number(n: &serde_json::Number, integer: bool) -> CelValue {
    if integer {
        if let Some(i) = n.as_i64() {
            return CelValue::Int(i);
        }
        if let Some(u) = n.as_u64() {
            return CelValue::UInt(u);
        }
    }
    CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
}

/// A string of a format that upstream converts to another CEL type.
fn formatted(s: &str, format: Option<&str>) -> CelValue {
    let converted = match format {
        Some("duration") => formats::go_duration_nanos(s)
            .map(|n| CelValue::Duration(chrono::Duration::nanoseconds(n))),
        Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| CelValue::Timestamp(dt.and_utc().fixed_offset())),
        Some("date-time") => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(CelValue::Timestamp),
        Some("byte") => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .map(|b| CelValue::Bytes(Arc::new(b)))
        }
        _ => None,
    };
    converted.unwrap_or_else(|| CelValue::String(Arc::new(s.to_owned())))
}

/// A JSON value with no schema (preserved unknown fields): the natural CEL value.
fn dynamic(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => number(n, n.is_i64() || n.is_u64()),
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(a) => CelValue::List(Arc::new(a.iter().map(dynamic).collect())),
        Value::Object(m) => map(m.iter().map(|(k, v)| (key(k), dynamic(v))).collect()),
    }
}

/// `v` as CEL sees it at `node`. `resource` is set at the root and at embedded resources, whose
/// `metadata` only shows `name` and `generateName`.
fn to_cel(node: &Node, v: &Value, resource: bool) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            let integer = match node.type_.as_deref() {
                Some("integer") => true,
                Some("number") => false,
                _ => node.int_or_string || n.is_i64() || n.is_u64(),
            };
            number(n, integer)
        }
        Value::String(s) => {
            if node.type_.as_deref() == Some("string") {
                formatted(s, node.raw_format.as_deref())
            } else {
                CelValue::String(Arc::new(s.clone()))
            }
        }
        Value::Array(a) => CelValue::List(Arc::new(
            a.iter()
                .map(|i| match &node.items {
                    Some(items) => to_cel(items, i, items.embedded),
                    None => dynamic(i),
                })
                .collect(),
        )),
        Value::Object(m) => {
            let resource = resource || node.embedded;
            if let Some(props) = &node.properties {
                let mut out = HashMap::new();
                for (k, cv) in m {
                    let value = if resource && k == "metadata" {
                        let meta: HashMap<Key, CelValue> = ["name", "generateName"]
                            .iter()
                            .filter_map(|f| Some((key(f), dynamic(cv.get(*f)?))))
                            .collect();
                        map(meta)
                    } else if let Some(child) = props.get(k) {
                        to_cel(child, cv, false)
                    } else if resource && (k == "apiVersion" || k == "kind")
                        || node.preserve_unknown
                    {
                        dynamic(cv)
                    } else {
                        continue;
                    };
                    if let Some(name) = escape(k) {
                        out.insert(key(&name), value);
                    }
                }
                map(out)
            } else if let Some(ap) = &node.additional {
                map(m
                    .iter()
                    .map(|(k, cv)| (key(k), to_cel(ap, cv, ap.embedded)))
                    .collect())
            } else {
                dynamic(v)
            }
        }
    }
}

/// How many values `v` holds, itself included: the `n` of the cost estimate.
fn value_count(v: &Value) -> u64 {
    match v {
        Value::Array(a) => a.iter().map(value_count).fold(1, u64::saturating_add),
        Value::Object(m) => m.values().map(value_count).fold(1, u64::saturating_add),
        Value::String(s) => 1 + (s.len() as u64) / 64,
        _ => 1,
    }
}

/// `ruleErrorString`: the message if given, else the rule.
fn rule_error_string(r: &Rule) -> &str {
    r.message.as_deref().unwrap_or(r.source.trim())
}

/// How a path is printed: upstream's nil `field.Path` at the root.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_owned()
    } else {
        path.to_owned()
    }
}

/// An evaluation error of `rule`, worded as upstream words it.
fn eval_error(e: &ExecutionError, rule: &Rule) -> String {
    let what = rule_error_string(rule);
    match e {
        ExecutionError::NoSuchOverload(_) => format!(
            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {what}"
        ),
        ExecutionError::NoSuchKey(k) => format!("no such key: {k} evaluating rule: {what}"),
        ExecutionError::DivisionByZero(_) => format!("division by zero evaluating rule: {what}"),
        ExecutionError::RemainderByZero(_) => format!("modulus by zero evaluating rule: {what}"),
        ExecutionError::Overflow(..) => format!("integer overflow evaluating rule: {what}"),
        ExecutionError::FunctionError { message, .. } => {
            format!("{message} evaluating rule: {what}")
        }
        other => format!("{other} evaluating rule: {what}"),
    }
}

/// The outcome of one rule on one value.
enum Outcome {
    Pass,
    Fail,
    Error(String),
}

/// Evaluates `rule` and words a failure.
#[allow(clippy::too_many_arguments)]
fn check_rule(
    rule: &Rule,
    node: &Node,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    resource: bool,
    budget: &mut Budget,
    out: &mut Vec<FieldError>,
) {
    if rule.transition && old.is_none() && !rule.optional_old_self {
        return;
    }
    let type_ = Value::String(node.type_.clone().unwrap_or_default());
    let invalid = |detail: String| {
        FieldError::new(shown(path), FieldErrorType::Invalid, type_.clone(), detail)
    };
    let mut n = value_count(v);
    if rule.transition {
        n = n.saturating_add(old.map_or(0, value_count));
    }
    let cost = rule
        .size
        .saturating_mul(n.saturating_add(1).saturating_pow(rule.depth));
    if cost > PER_CALL_LIMIT {
        out.push(invalid(format!(
            "call cost exceeds limit for rule: {}",
            rule_error_string(rule)
        )));
        return;
    }
    if cost > budget.remaining {
        budget.exhausted = true;
        out.push(invalid(
            "validation failed due to running out of cost budget, no further validation rules will be run"
                .to_owned(),
        ));
        return;
    }
    budget.remaining -= cost;
    let this = to_cel(node, v, resource);
    let old_cel = if rule.transition {
        let o = old.map(|o| to_cel(node, o, resource));
        Some(if rule.optional_old_self {
            CelValue::Opaque(Arc::new(match o {
                Some(o) => OptionalValue::of(o),
                None => OptionalValue::none(),
            }))
        } else {
            match o {
                Some(o) => o,
                None => return,
            }
        })
    } else {
        None
    };
    let outcome = match execute(&rule.program, &this, old_cel.as_ref()) {
        Ok(CelValue::Bool(true)) => Outcome::Pass,
        Ok(CelValue::Bool(false)) => Outcome::Fail,
        Ok(other) => Outcome::Error(format!(
            "rule evaluated to {:?}, not a bool, evaluating rule: {}",
            other.type_of().to_string(),
            rule_error_string(rule)
        )),
        Err(Ran::Typed(e)) => Outcome::Error(eval_error(&e, rule)),
        Err(Ran::Other(e)) => {
            Outcome::Error(format!("{e} evaluating rule: {}", rule_error_string(rule)))
        }
    };
    match outcome {
        Outcome::Pass => {}
        Outcome::Error(detail) => out.push(invalid(detail)),
        Outcome::Fail => {
            // Ratcheting: a rule that does not read oldSelf may keep failing on a value that the
            // update leaves as it was (upstream demotes the error to a warning).
            if !rule.transition && old.is_some_and(|o| o == v) {
                tracing::debug!(rule = %rule.source, path, "CEL rule error ratcheted");
                return;
            }
            let field = match &rule.field_path {
                Some(fp) => shown(&join(path, fp)),
                None => shown(path),
            };
            let default = rule
                .message
                .clone()
                .unwrap_or_else(|| format!("failed rule: {}", rule.source.trim()));
            let detail = match &rule.message_expression {
                None => default,
                Some(me) => match execute(me, &this, old_cel.as_ref()) {
                    Ok(CelValue::String(s)) => {
                        let s = s.trim();
                        if s.is_empty() {
                            out.push(invalid(
                                "messageExpression should evaluate to a non-empty string"
                                    .to_owned(),
                            ));
                            return;
                        }
                        if s.contains(['\n', '\r']) {
                            out.push(invalid(
                                "messageExpression should not contain line breaks".to_owned(),
                            ));
                            return;
                        }
                        s.to_owned()
                    }
                    Ok(other) => {
                        tracing::debug!(value = ?other, "messageExpression did not evaluate to a string");
                        default
                    }
                    Err(e) => {
                        tracing::debug!(error = ?e, "messageExpression evaluation failed");
                        default
                    }
                },
            };
            let err = match rule.reason {
                Some(FieldErrorType::Forbidden) => FieldError {
                    field,
                    kind: FieldErrorType::Forbidden,
                    bad_value: None,
                    detail,
                },
                Some(FieldErrorType::Required) => FieldError::required(field, detail),
                Some(FieldErrorType::Duplicate) => {
                    FieldError::new(field, FieldErrorType::Duplicate, type_, "")
                }
                _ => FieldError::new(field, FieldErrorType::Invalid, type_, detail),
            };
            out.push(err);
        }
    }
}

/// Why an evaluation did not produce a value.
#[derive(Debug)]
enum Ran {
    Typed(ExecutionError),
    Other(String),
}

/// Runs `program` with `self` (and `oldSelf`) bound; a panic of the interpreter is an error.
fn execute(program: &Program, this: &CelValue, old: Option<&CelValue>) -> Result<CelValue, Ran> {
    let mut ctx = Context::with_env(Arc::clone(&ENV));
    let boxed = |v: &CelValue| -> Result<Box<dyn cel::common::value::Val>, Ran> {
        v.clone().try_into().map_err(Ran::Typed)
    };
    ctx.add_variable_as_val("self", boxed(this)?);
    if let Some(o) = old {
        ctx.add_variable_as_val("oldSelf", boxed(o)?);
    }
    match catch_unwind(AssertUnwindSafe(|| program.execute(&ctx))) {
        Ok(r) => r.map_err(Ran::Typed),
        Err(_) => Err(Ran::Other(
            "internal error: the CEL interpreter panicked".to_owned(),
        )),
    }
}

/// Evaluates the rules at `node` and below on `v` (correlated with `old` on updates), appending
/// failures to `out` in upstream's order: a node's rules, then its properties (in schema order),
/// map values, list items.
#[allow(clippy::too_many_arguments)]
pub(super) fn validate(
    node: &Node,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    resource: bool,
    budget: &mut Budget,
    out: &mut Vec<FieldError>,
) {
    if !node.has_cel || budget.exhausted {
        return;
    }
    for rule in node.cel_rules.0.iter() {
        check_rule(rule, node, v, old, path, resource, budget, out);
        if budget.exhausted {
            return;
        }
    }
    match v {
        Value::Object(m) => {
            if let Some(props) = &node.properties {
                for (k, child) in props {
                    if let Some(cv) = m.get(k) {
                        let oc = old.and_then(|o| o.get(k));
                        validate(child, cv, oc, &join(path, k), child.embedded, budget, out);
                    }
                }
            } else if let Some(ap) = &node.additional {
                for (k, cv) in m {
                    let oc = old.and_then(|o| o.get(k));
                    validate(
                        ap,
                        cv,
                        oc,
                        &format!("{path}[{k}]"),
                        ap.embedded,
                        budget,
                        out,
                    );
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = &node.items {
                for (i, item) in a.iter().enumerate() {
                    let oi = correlate_map_item(node, item, old);
                    validate(
                        items,
                        item,
                        oi,
                        &format!("{path}[{i}]"),
                        items.embedded,
                        budget,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}
