//! OpenAPI value validation as kube-openapi's `validate.SchemaValidator` does it for CRDs, with
//! the errors mapped to field errors as apiextensions-apiserver's `kubeOpenAPIResultToFieldErrors`
//! maps them, and with validation ratcheting (`CRDValidationRatcheting`, on by default).
//!
//! Per node the checks run in kube-openapi's order: type, `allOf`/`anyOf`/`oneOf`/`not`, string
//! (`maxLength`, `minLength`, `pattern`: the first failure only), `format`, number (`multipleOf`,
//! `minimum`, `maximum`), array (items, `minItems`, `maxItems`), `enum`, object
//! (`minProperties`, `maxProperties`, map values, properties, `required`). Upstream walks
//! properties in Go map order (unspecified); this walks them sorted by name.
//!
//! Ratcheting: on an update, a node whose value equals its correlated old value is not
//! validated (upstream validates it and downgrades every error below it to a warning, which is
//! not sent to clients). Old values correlate through object properties, map values and the
//! items of `x-kubernetes-list-type: map` lists (by their keys); atomic and set list items do
//! not correlate, but an unchanged list as a whole still ratchets.

use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrorType};
use super::node::Node;
use crate::gofmt;

/// Where errors are reported.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    /// The field path the validated value sits at (`""` for the object, `"status"` for the
    /// status subresource, which upstream validates with the status schema alone).
    pub prefix: &'a str,
}

impl Ctx<'_> {
    /// The reported field of an error at kube-openapi path `path`.
    fn field(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, true) => "<nil>".into(),
            (true, false) => path.to_owned(),
            (false, true) => self.prefix.to_owned(),
            (false, false) => format!("{}.{path}", self.prefix),
        }
    }
}

/// Errors found, and how much was looked at (kube-openapi's `MatchCount`, used to pick which
/// failed `anyOf`/`oneOf` alternative to report).
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub errors: Vec<FieldError>,
    visits: usize,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// go-openapi's `swag.IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_992.0; // 1 << 53
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    let g = f.trunc();
    if f == g {
        return true;
    }
    let diff = (f - g).abs();
    if g == 0.0 {
        return diff < 1e-9 * f64::MIN_POSITIVE;
    }
    diff / (f.abs() + g.abs()).min(f64::MAX) < 1e-9
}

/// Whether `data` matches enum member `e` as kube-openapi's `basicCommonValidator` decides:
/// Go's `reflect.DeepEqual` after converting the value to the member's Go type. Enum members are
/// decoded from the CRD as `float64` for numbers, values as `int64` when integral; an integer
/// converts to a string as a rune (a Go quirk kept here).
fn enum_matches(data: &Value, e: &Value) -> bool {
    match (data, e) {
        (Value::Number(d), Value::Number(m)) => d.as_f64() == m.as_f64(),
        (Value::Number(d), Value::String(m)) => d
            .as_i64()
            .map(|i| {
                u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}')
            })
            .is_some_and(|c| m.chars().eq(std::iter::once(c))),
        (Value::Null, _) => false,
        _ => deep_equal(data, e),
    }
}

/// Go's `reflect.DeepEqual` between a decoded value and a decoded enum member: nested integers
/// (`int64`) never equal nested enum numbers (`float64`).
fn deep_equal(data: &Value, e: &Value) -> bool {
    match (data, e) {
        (Value::Number(d), Value::Number(m)) => !d.is_i64() && d.as_f64() == m.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| deep_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| deep_equal(x, y)))
        }
        _ => data == e,
    }
}

fn supported_values(values: &[Value]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => gofmt::quote(s),
            other => gofmt::quote(&other.to_string()),
        })
        .collect();
    format!("supported values: {}", quoted.join(", "))
}

/// The old item correlated with `item` in a `x-kubernetes-list-type: map` list: the one with the
/// same key values.
pub(super) fn correlate_map_item<'o>(
    node: &Node,
    item: &Value,
    old: Option<&'o Value>,
) -> Option<&'o Value> {
    if node.list_type.as_deref() != Some("map") || node.list_map_keys.is_empty() {
        return None;
    }
    let key = |v: &Value| -> Vec<Option<Value>> {
        node.list_map_keys
            .iter()
            .map(|k| v.get(k).cloned())
            .collect()
    };
    let wanted = key(item);
    old?.as_array()?.iter().find(|o| key(o) == wanted)
}

/// Validates `v` at kube-openapi path `path` against `node`, appending to `out`.
pub(super) fn validate(
    node: &Node,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    ctx: Ctx<'_>,
    out: &mut Outcome,
) {
    out.visits += 1;
    if old.is_some_and(|o| o == v) {
        return;
    }
    let types = node.types();
    if v.is_null() {
        if !types.is_empty() && !node.nullable {
            out.errors.push(FieldError::new(
                ctx.field(path),
                FieldErrorType::TypeInvalid,
                Value::from("null"),
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    types.join(",")
                ),
            ));
        }
        check_enum(node, v, path, ctx, out);
        return;
    }
    check_type(node, &types, v, path, ctx, out);
    check_composites(node, v, old, path, root, ctx, out);
    if let Value::String(s) = v {
        check_string(node, s, path, ctx, out);
        if let Some((name, format)) = &node.format
            && !format.accepts(s)
        {
            out.errors.push(FieldError::new(
                ctx.field(path),
                FieldErrorType::TypeInvalid,
                v.clone(),
                format!("{path} in body must be of type {name}: {}", gofmt::quote(s)),
            ));
        }
    }
    if let Value::Number(n) = v {
        check_number(node, n, path, ctx, out);
    }
    if let Value::Array(items) = v {
        if let Some(item_node) = &node.items {
            for (i, item) in items.iter().enumerate() {
                let old_item = correlate_map_item(node, item, old);
                let p = format!("{path}[{i}]");
                validate(item_node, item, old_item, &p, false, ctx, out);
            }
        }
        let bounds = (node.min_items, node.max_items);
        check_size(bounds, items.len(), "items", path, ctx, out);
    }
    check_enum(node, v, path, ctx, out);
    if let Value::Object(m) = v {
        check_object(node, m, old, path, root, ctx, out);
    }
}

fn check_type(node: &Node, types: &[&str], v: &Value, path: &str, ctx: Ctx<'_>, out: &mut Outcome) {
    if types.is_empty() {
        return;
    }
    let numeric = types.contains(&"number") || types.contains(&"integer");
    // kube-openapi skips the type check of a formatted non-numeric schema for strings and arrays.
    if !numeric && node.format.is_some() && matches!(v, Value::String(_) | Value::Array(_)) {
        return;
    }
    let actual = type_name(v);
    let float_int =
        actual == "number" && v.as_f64().is_some_and(is_json_integer) && types.contains(&"integer");
    let int_float = actual == "integer" && types.contains(&"number");
    if !(types.contains(&actual) || float_int || int_float) {
        out.errors.push(FieldError::new(
            ctx.field(path),
            FieldErrorType::TypeInvalid,
            Value::from(actual),
            format!(
                "{path} in body must be of type {}: \"{actual}\"",
                types.join(",")
            ),
        ));
    }
}

fn composite_error(ctx: Ctx<'_>, detail: String) -> FieldError {
    // Not a kube-openapi `Validation` error: reported at the validator's root path with "".
    let field = if ctx.prefix.is_empty() {
        "<nil>".to_owned()
    } else {
        ctx.prefix.to_owned()
    };
    FieldError::new(field, FieldErrorType::Invalid, Value::from(""), detail)
}

fn check_composites(
    node: &Node,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    ctx: Ctx<'_>,
    out: &mut Outcome,
) {
    let run = |alt: &Node| {
        let mut o = Outcome::default();
        validate(alt, v, old, path, root, ctx, &mut o);
        o
    };
    let quoted = gofmt::quote(path);
    if !node.any_of.is_empty() {
        let mut best: Option<Outcome> = None;
        let mut succeeded = false;
        for alt in &node.any_of {
            let r = run(alt);
            if r.errors.is_empty() {
                succeeded = true;
                best = None;
                break;
            }
            if best.as_ref().is_none_or(|b| r.visits > b.visits) {
                best = Some(r);
            }
        }
        if !succeeded {
            out.errors.push(composite_error(
                ctx,
                format!("{quoted} must validate at least one schema (anyOf)"),
            ));
        }
        if let Some(b) = best {
            out.visits += b.visits;
            out.errors.extend(b.errors);
        }
    }
    if !node.one_of.is_empty() {
        let mut best: Option<Outcome> = None;
        let mut validated = 0usize;
        for alt in &node.one_of {
            let r = run(alt);
            if r.errors.is_empty() {
                validated += 1;
                best = None;
                continue;
            }
            if validated == 0 && best.as_ref().is_none_or(|b| r.visits > b.visits) {
                best = Some(r);
            }
        }
        if validated != 1 {
            let extra = if validated == 0 {
                "Found none valid".to_owned()
            } else {
                format!("Found {validated} valid alternatives")
            };
            out.errors.push(composite_error(
                ctx,
                format!("{quoted} must validate one and only one schema (oneOf). {extra}"),
            ));
            if let Some(b) = best {
                out.errors.extend(b.errors);
            }
        }
    }
    if !node.all_of.is_empty() {
        let mut validated = 0usize;
        for alt in &node.all_of {
            let r = run(alt);
            if r.errors.is_empty() {
                validated += 1;
            }
            out.errors.extend(r.errors);
        }
        if validated != node.all_of.len() {
            let extra = if validated == 0 {
                ". None validated"
            } else {
                ""
            };
            out.errors.push(composite_error(
                ctx,
                format!("{quoted} must validate all the schemas (allOf){extra}"),
            ));
        }
    }
    if let Some(not) = &node.not
        && run(not).errors.is_empty()
    {
        out.errors.push(composite_error(
            ctx,
            format!("{quoted} must not validate the schema (not)"),
        ));
    }
}

fn check_string(node: &Node, s: &str, path: &str, ctx: Ctx<'_>, out: &mut Outcome) {
    // Go counts runes (`utf8.RuneCountInString`), as `chars()` does.
    let len = s.chars().count() as i64;
    let invalid = |detail: String| {
        FieldError::new(
            ctx.field(path),
            FieldErrorType::Invalid,
            Value::from(s),
            detail,
        )
    };
    if let Some(max) = node.max_length
        && len > max
    {
        out.errors.push(FieldError::too_long(ctx.field(path), max));
    } else if let Some(min) = node.min_length
        && len < min
    {
        out.errors.push(invalid(format!(
            "{path} in body should be at least {min} chars long"
        )));
    } else if let Some(p) = &node.pattern {
        match &p.compiled {
            Ok(re) if !re.is_match(s) => out.errors.push(invalid(format!(
                "{path} in body should match '{}'",
                p.source
            ))),
            Ok(_) => {}
            Err(e) => out.errors.push(invalid(format!(
                "{path} in body should match '{}, but pattern is invalid: {e}'",
                p.source
            ))),
        }
    }
}

fn check_number(node: &Node, n: &serde_json::Number, path: &str, ctx: Ctx<'_>, out: &mut Outcome) {
    let invalid = |detail: String| {
        FieldError::new(
            ctx.field(path),
            FieldErrorType::Invalid,
            Value::Number(n.clone()),
            detail,
        )
    };
    // kube-openapi compares integers natively, with the bound truncated to int64.
    let int = n.as_i64();
    let data = n.as_f64().unwrap_or(f64::NAN);
    if let Some(factor) = node.multiple_of {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "Go's int64(float64) truncates too"
        )]
        let int_factor = factor as i64;
        if factor < 0.0 {
            // CRD validation rejects this schema; kube-openapi's wording is kept anyway.
            let shown = match int {
                Some(_) => Value::from(int_factor),
                None => Value::from(factor),
            };
            out.errors.push(FieldError::new(
                ctx.field(path),
                FieldErrorType::Invalid,
                shown.clone(),
                format!(
                    "factor MultipleOf declared for {path} must be positive: {}",
                    gofmt::error_value(&shown)
                ),
            ));
        } else if let Some(i) = int
            && int_factor != 0
        {
            if i.wrapping_rem(int_factor) != 0 {
                out.errors.push(invalid(format!(
                    "{path} in body should be a multiple of {int_factor}"
                )));
            }
        } else {
            let mult = if factor < 1.0 {
                1.0 / factor * data
            } else {
                data / factor
            };
            if !is_json_integer(mult) {
                out.errors.push(invalid(format!(
                    "{path} in body should be a multiple of {}",
                    gofmt::float(factor)
                )));
            }
        }
    }
    let bound = |b: f64| -> (bool, String) {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "Go's int64(float64) truncates too"
        )]
        let ib = b as i64;
        match int {
            Some(_) => (true, ib.to_string()),
            None => (false, gofmt::float(b)),
        }
    };
    if let Some(min) = node.minimum {
        let (is_int, shown) = bound(min);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "Go's int64(float64) truncates too"
        )]
        let fails = match int {
            Some(i) if is_int => {
                if node.exclusive_minimum {
                    i <= min as i64
                } else {
                    i < min as i64
                }
            }
            _ => {
                if node.exclusive_minimum {
                    data <= min
                } else {
                    data < min
                }
            }
        };
        if fails {
            let rel = if node.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.errors
                .push(invalid(format!("{path} in body should be {rel} {shown}")));
        }
    }
    if let Some(max) = node.maximum {
        let (is_int, shown) = bound(max);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "Go's int64(float64) truncates too"
        )]
        let fails = match int {
            Some(i) if is_int => {
                if node.exclusive_maximum {
                    i >= max as i64
                } else {
                    i > max as i64
                }
            }
            _ => {
                if node.exclusive_maximum {
                    data >= max
                } else {
                    data > max
                }
            }
        };
        if fails {
            let rel = if node.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            out.errors
                .push(invalid(format!("{path} in body should be {rel} {shown}")));
        }
    }
}

/// minItems/maxItems and minProperties/maxProperties: one check, worded per `noun` where
/// kube-openapi words them apart (the maximum is apimachinery's TooMany for both).
fn check_size(
    (min, max): (Option<i64>, Option<i64>),
    size: usize,
    noun: &str,
    path: &str,
    ctx: Ctx<'_>,
    out: &mut Outcome,
) {
    if let Some(min) = min
        && (size as i64) < min
    {
        out.errors.push(FieldError::new(
            ctx.field(path),
            FieldErrorType::Invalid,
            Value::from(size),
            format!("{path} in body should have at least {min} {noun}"),
        ));
    }
    if let Some(max) = max
        && (size as i64) > max
    {
        out.errors
            .push(FieldError::too_many(ctx.field(path), size, max));
    }
}

fn check_enum(node: &Node, v: &Value, path: &str, ctx: Ctx<'_>, out: &mut Outcome) {
    if let Some(values) = &node.enum_
        && !values.is_empty()
        && !values.iter().any(|e| enum_matches(v, e))
    {
        out.errors.push(FieldError::new(
            ctx.field(path),
            FieldErrorType::NotSupported,
            v.clone(),
            supported_values(values),
        ));
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn check_object(
    node: &Node,
    m: &Map<String, Value>,
    old: Option<&Value>,
    path: &str,
    root: bool,
    ctx: Ctx<'_>,
    out: &mut Outcome,
) {
    let bounds = (node.min_properties, node.max_properties);
    check_size(bounds, m.len(), "properties", path, ctx, out);
    let old_child = |k: &str| old.and_then(|o| o.get(k));
    match (&node.properties, &node.additional) {
        (Some(props), _) => {
            for (k, child) in props {
                if let Some(cv) = m.get(k) {
                    validate(child, cv, old_child(k), &join(path, k), false, ctx, out);
                }
            }
        }
        (None, Some(values)) => {
            for (k, cv) in m {
                // kube-openapi joins map keys with a dot even at the root.
                let p = format!("{path}.{k}");
                validate(values, cv, old_child(k), &p, false, ctx, out);
            }
        }
        (None, None) => {}
    }
    for r in &node.required {
        if !(m.contains_key(r) || (root && r == "metadata")) {
            out.errors
                .push(FieldError::required(ctx.field(&join(path, r)), ""));
        }
    }
}
