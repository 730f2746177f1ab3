//! cel-go's strings extension as kube-apiserver 1.36 configures it (`ext.Strings(ext.StringsVersion(2))`
//! in `k8s.io/apiserver/pkg/cel/environment/base.go`): on a string `charAt`, `indexOf`,
//! `lastIndexOf`, `lowerAscii`, `upperAscii`, `replace`, `split`, `substring`, `trim` and
//! `format`, on a list of strings `join`, and `strings.quote`.
//!
//! The `cel` crate's own strings extension follows the latest cel-go instead, which differs from
//! version 2 where Kubernetes can see it: it has `reverse()` (version 3), formats with the
//! version 4 `format` (unquoted list items, `%d` on doubles), and treats offsets past the end of
//! the string in `indexOf`/`lastIndexOf` as errors. This module is version 2 at the cel-go
//! Kubernetes 1.36 vendors:
//!
//! - indices count code points; `indexOf(s, i)` and `lastIndexOf(s, i)` fail on a negative `i`
//!   (`index out of range: -1`), find nothing (`-1`) at an `i` at or past the end, and return `i`
//!   itself for an empty `s`;
//! - `format` is the version 1 formatter: `%s` of a list or map prints its items as CEL literals
//!   (`["a", 1.500000, duration("1s")]`), `%d` takes only integers, `%f` and `%e` go through
//!   golang.org/x/text's `en-US` printer (`1,234.500000`, `2.718280 × 10⁰⁰`, `∞`);
//! - `join` fails on a non-string item with `join: invalid input: <item>`.

use std::sync::Arc;

use cel::common::types::{CelType, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::Val;
use cel::objects::Key;
use cel::{Env, ExecutionError, Value as CelValue};

use super::support::{Args, Ret, fail, int_arg, ret, str_arg};
use crate::gofmt;

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let s = || STRING_TYPE;
    let i = || INT_TYPE;
    env.add_member_overload("charAt", "string_char_at_int", s(), vec![i()], char_at)?;
    env.add_member_overload(
        "indexOf",
        "string_index_of_string",
        s(),
        vec![s()],
        index_of,
    )?;
    env.add_member_overload(
        "indexOf",
        "string_index_of_string_int",
        s(),
        vec![s(), i()],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "string_last_index_of_string",
        s(),
        vec![s()],
        last_index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "string_last_index_of_string_int",
        s(),
        vec![s(), i()],
        last_index_of,
    )?;
    env.add_member_overload("lowerAscii", "string_lower_ascii", s(), vec![], lower_ascii)?;
    env.add_member_overload("upperAscii", "string_upper_ascii", s(), vec![], upper_ascii)?;
    env.add_member_overload(
        "replace",
        "string_replace_string_string",
        s(),
        vec![s(), s()],
        replace,
    )?;
    env.add_member_overload(
        "replace",
        "string_replace_string_string_int",
        s(),
        vec![s(), s(), i()],
        replace,
    )?;
    env.add_member_overload("split", "string_split_string", s(), vec![s()], split)?;
    env.add_member_overload(
        "split",
        "string_split_string_int",
        s(),
        vec![s(), i()],
        split,
    )?;
    env.add_member_overload(
        "substring",
        "string_substring_int",
        s(),
        vec![i()],
        substring,
    )?;
    env.add_member_overload(
        "substring",
        "string_substring_int_int",
        s(),
        vec![i(), i()],
        substring,
    )?;
    env.add_member_overload("trim", "string_trim", s(), vec![], trim)?;
    env.add_member_overload("join", "list_join", LIST_TYPE, vec![], join)?;
    env.add_member_overload("join", "list_join_string", LIST_TYPE, vec![s()], join)?;
    env.add_member_overload("format", "string_format", s(), vec![LIST_TYPE], format)?;
    env.add_overload("strings.quote", "strings_quote", vec![s()], quote)?;
    Ok(())
}

fn string(s: impl Into<String>) -> CelValue {
    CelValue::String(Arc::new(s.into()))
}

fn out_of_range(function: &str, i: i64) -> ExecutionError {
    fail(function, format!("index out of range: {i}"))
}

/// `i` as an index into `len` code points, if it is one (`0..=len`).
fn index(i: i64, len: usize) -> Option<usize> {
    usize::try_from(i).ok().filter(|&i| i <= len)
}

fn char_at<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("charAt", &args, 0)?;
    let i = int_arg("charAt", &args, 1)?;
    let runes: Vec<char> = s.chars().collect();
    let at = index(i, runes.len()).ok_or_else(|| out_of_range("charAt", i))?;
    ret(string(
        runes.get(at).map(char::to_string).unwrap_or_default(),
    ))
}

/// cel-go's `indexOfOffset`, in code points.
pub(super) fn index_of_offset(s: &str, sub: &str, offset: i64) -> Result<i64, String> {
    if sub.is_empty() {
        return Ok(offset);
    }
    if offset < 0 {
        return Err(format!("index out of range: {offset}"));
    }
    let runes: Vec<char> = s.chars().collect();
    let subs: Vec<char> = sub.chars().collect();
    let Some(start) = usize::try_from(offset).ok().filter(|&o| o < runes.len()) else {
        return Ok(-1);
    };
    if subs.len() > runes.len() {
        return Ok(-1);
    }
    Ok((start..=runes.len() - subs.len())
        .find(|&i| runes[i..i + subs.len()] == subs[..])
        .map_or(-1, |i| i as i64))
}

/// cel-go's `lastIndexOfOffset`, in code points.
pub(super) fn last_index_of_offset(s: &str, sub: &str, offset: i64) -> Result<i64, String> {
    if sub.is_empty() {
        return Ok(offset);
    }
    if offset < 0 {
        return Err(format!("index out of range: {offset}"));
    }
    let runes: Vec<char> = s.chars().collect();
    let subs: Vec<char> = sub.chars().collect();
    let Some(mut start) = usize::try_from(offset).ok().filter(|&o| o < runes.len()) else {
        return Ok(-1);
    };
    if subs.len() > runes.len() {
        return Ok(-1);
    }
    start = start.min(runes.len() - subs.len());
    Ok((0..=start)
        .rev()
        .find(|&i| runes[i..i + subs.len()] == subs[..])
        .map_or(-1, |i| i as i64))
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("indexOf", &args, 0)?;
    let sub = str_arg("indexOf", &args, 1)?;
    let offset = if args.len() > 2 {
        int_arg("indexOf", &args, 2)?
    } else {
        0
    };
    let i = index_of_offset(s, sub, offset).map_err(|e| fail("indexOf", e))?;
    ret(CelValue::Int(i))
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("lastIndexOf", &args, 0)?;
    let sub = str_arg("lastIndexOf", &args, 1)?;
    let i = if args.len() > 2 {
        last_index_of_offset(s, sub, int_arg("lastIndexOf", &args, 2)?)
    } else if sub.is_empty() {
        Ok(s.chars().count() as i64)
    } else {
        // cel-go searches from `len - 1`: on an empty string that is `-1`, out of range.
        last_index_of_offset(s, sub, s.chars().count() as i64 - 1)
    }
    .map_err(|e| fail("lastIndexOf", e))?;
    ret(CelValue::Int(i))
}

fn lower_ascii<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(
        str_arg("lowerAscii", &args, 0)?.to_ascii_lowercase(),
    ))
}

fn upper_ascii<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(
        str_arg("upperAscii", &args, 0)?.to_ascii_uppercase(),
    ))
}

/// Go's `strings.Replace(s, old, new, n)`: all occurrences for a negative `n`.
pub(super) fn go_replace(s: &str, old: &str, new: &str, n: i64) -> String {
    match usize::try_from(n) {
        Ok(n) => s.replacen(old, new, n),
        Err(_) => s.replace(old, new),
    }
}

fn replace<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("replace", &args, 0)?;
    let old = str_arg("replace", &args, 1)?;
    let new = str_arg("replace", &args, 2)?;
    let n = if args.len() > 3 {
        int_arg("replace", &args, 3)?
    } else {
        -1
    };
    ret(string(go_replace(s, old, new, n)))
}

/// Go's `strings.SplitN(s, sep, n)`: no parts for `n == 0`, all for a negative `n`, at most `n`
/// otherwise (the last holding the rest); an empty `sep` splits between code points.
pub(super) fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let limit = usize::try_from(n).ok();
    if sep.is_empty() {
        let chars: Vec<&str> = s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
        let n = limit.map_or(chars.len(), |n| n.min(chars.len()));
        if n == 0 {
            return Vec::new();
        }
        let mut parts: Vec<String> = chars[..n - 1].iter().map(|c| (*c).to_owned()).collect();
        parts.push(chars[n - 1..].concat());
        return parts;
    }
    match limit {
        Some(n) => s.splitn(n, sep).map(str::to_owned).collect(),
        None => s.split(sep).map(str::to_owned).collect(),
    }
}

fn split<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("split", &args, 0)?;
    let sep = str_arg("split", &args, 1)?;
    let n = if args.len() > 2 {
        int_arg("split", &args, 2)?
    } else {
        -1
    };
    ret(CelValue::List(Arc::new(
        go_split(s, sep, n).into_iter().map(string).collect(),
    )))
}

/// cel-go's `substr` and `substrRange`, in code points.
pub(super) fn substring_of(s: &str, start: i64, end: Option<i64>) -> Result<String, String> {
    let runes: Vec<char> = s.chars().collect();
    let len = runes.len();
    let end_i = end.unwrap_or(len as i64);
    if end.is_some() && start > end_i {
        return Err(format!(
            "invalid substring range. start: {start}, end: {end_i}"
        ));
    }
    let from = index(start, len).ok_or_else(|| format!("index out of range: {start}"))?;
    let to = index(end_i, len).ok_or_else(|| format!("index out of range: {end_i}"))?;
    Ok(runes[from..to].iter().collect())
}

fn substring<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("substring", &args, 0)?;
    let start = int_arg("substring", &args, 1)?;
    let end = if args.len() > 2 {
        Some(int_arg("substring", &args, 2)?)
    } else {
        None
    };
    ret(string(
        substring_of(s, start, end).map_err(|e| fail("substring", e))?,
    ))
}

/// Go's `strings.TrimSpace`: Unicode white space, which is Rust's too.
fn trim<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(str_arg("trim", &args, 0)?.trim()))
}

/// Go's `%v` of a CEL value, as `join` prints an item that is not a string.
fn go_v(v: &CelValue) -> String {
    match v {
        CelValue::Int(i) => i.to_string(),
        CelValue::UInt(u) => u.to_string(),
        CelValue::Float(f) => gofmt::float(*f),
        CelValue::Bool(b) => b.to_string(),
        CelValue::String(s) => s.to_string(),
        CelValue::Null => "NULL_VALUE".to_owned(),
        CelValue::List(l) => format!("[{}]", l.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        other => other.type_of().to_string(),
    }
}

fn join<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let sep = if args.len() > 1 {
        str_arg("join", &args, 1)?
    } else {
        ""
    };
    let Some(list) = args.first() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    let CelValue::List(items) = CelValue::try_from(list.as_ref())? else {
        return Err(fail("join", "no such overload"));
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match item {
            CelValue::String(s) => out.push_str(s),
            other => {
                return Err(fail(
                    "join",
                    format!("join: invalid input: {}", go_v(other)),
                ));
            }
        }
    }
    ret(string(out))
}

/// cel-go's `strings.quote`: double-quoted, with CEL's escapes.
pub(super) fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(quote_str(str_arg("strings.quote", &args, 0)?)))
}

// --- format (cel-go's version 1 formatter, ext/formatting.go) ---

/// One format argument: a CEL value, or a type (which has no `cel::Value`).
enum Arg {
    Value(CelValue),
    Type(String),
    /// A value of another type, by type name.
    Other(String),
}

impl Arg {
    fn of(v: &dyn Val) -> Self {
        if let Some(t) = v.downcast_ref::<CelType>() {
            return Arg::Type(t.name().to_owned());
        }
        match CelValue::try_from(v) {
            Ok(CelValue::Opaque(_) | CelValue::Struct(_) | CelValue::Function(..)) | Err(_) => {
                Arg::Other(v.get_type().name().to_owned())
            }
            Ok(value) => Arg::Value(value),
        }
    }

    /// The type name cel-go prints in a formatting error.
    fn type_name(&self) -> String {
        match self {
            Arg::Value(v) => cel_type_name(v).to_owned(),
            Arg::Type(_) => "type".to_owned(),
            Arg::Other(name) => name.clone(),
        }
    }
}

/// cel-go's `TypeName()` of a value's type.
fn cel_type_name(v: &CelValue) -> &'static str {
    match v {
        CelValue::List(_) => "list",
        CelValue::Map(_) => "map",
        CelValue::Int(_) => "int",
        CelValue::UInt(_) => "uint",
        CelValue::Float(_) => "double",
        CelValue::String(_) => "string",
        CelValue::Bytes(_) => "bytes",
        CelValue::Bool(_) => "bool",
        CelValue::Duration(_) => "google.protobuf.Duration",
        CelValue::Timestamp(_) => "google.protobuf.Timestamp",
        CelValue::Null => "null_type",
        CelValue::Function(..) => "function",
        CelValue::Opaque(_) => "opaque",
        CelValue::Struct(_) => "struct",
    }
}

/// `ConvertToType(StringType)` of a timestamp: RFC 3339 with nanoseconds, trailing zeros
/// dropped, in UTC.
fn timestamp_string(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    let utc = t.with_timezone(&chrono::Utc);
    let mut out = utc.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = chrono::Timelike::nanosecond(&utc) % 1_000_000_000;
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// `ConvertToType(StringType)` of a duration: seconds, shortest fixed-point, then `s`.
fn duration_string(d: &chrono::Duration) -> String {
    let secs = d.num_seconds() as f64 + f64::from(d.subsec_nanos()) / 1e9;
    format!("{}s", secs)
}

/// The `%s` clause (`FormatString`).
fn format_string(arg: &Arg) -> Result<String, String> {
    match arg {
        Arg::Type(name) => Ok(name.clone()),
        Arg::Other(name) => Err(format!(
            "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given {name}"
        )),
        Arg::Value(v) => match v {
            CelValue::List(items) => format_list(items),
            CelValue::Map(m) => format_map(m),
            CelValue::Int(i) => Ok(i.to_string()),
            CelValue::UInt(u) => Ok(u.to_string()),
            CelValue::Float(f) => Ok(gofmt::float(*f)),
            CelValue::Bool(b) => Ok(b.to_string()),
            CelValue::String(s) => Ok(s.to_string()),
            CelValue::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            CelValue::Timestamp(t) => Ok(timestamp_string(t)),
            CelValue::Duration(d) => Ok(duration_string(d)),
            CelValue::Null => Ok("null".to_owned()),
            other => Err(format!(
                "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given {}",
                cel_type_name(other)
            )),
        },
    }
}

/// Go's `%q` of bytes converted to a string: invalid UTF-8 as `\x` escapes.
fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        let q = gofmt::quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

/// A list item or map value as a CEL literal (`clauseForType`, then `quoteForCEL`).
fn literal(v: &CelValue) -> Result<String, String> {
    match v {
        CelValue::Int(i) => Ok(i.to_string()),
        CelValue::UInt(u) => Ok(u.to_string()),
        CelValue::String(s) => Ok(gofmt::quote(s)),
        CelValue::Bytes(b) => Ok(format!("b{}", quote_bytes(b))),
        CelValue::Bool(b) => Ok(b.to_string()),
        CelValue::Null => Ok("null".to_owned()),
        CelValue::Timestamp(t) => Ok(format!("timestamp(\"{}\")", timestamp_string(t))),
        CelValue::Duration(d) => Ok(format!("duration(\"{}\")", duration_string(d))),
        CelValue::List(items) => format_list(items),
        CelValue::Map(m) => format_map(m),
        CelValue::Float(f) => {
            let s = go_fixed(*f, 6);
            Ok(if f.is_finite() { s } else { format!("\"{s}\"") })
        }
        other => Err(format!(
            "no formatting function for {}",
            cel_type_name(other)
        )),
    }
}

fn format_list(items: &[CelValue]) -> Result<String, String> {
    let parts = items.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", parts.join(", ")))
}

fn format_map(m: &cel::objects::Map) -> Result<String, String> {
    let mut entries = Vec::with_capacity(m.map.len());
    for (k, v) in m.map.iter() {
        let key = match k {
            Key::String(s) => gofmt::quote(s),
            Key::Bool(b) => b.to_string(),
            Key::Int(i) => i.to_string(),
            Key::Uint(u) => u.to_string(),
        };
        entries.push((key, literal(v)?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    Ok(format!("{{{}}}", parts.join(", ")))
}

/// Go's `fmt.Sprintf("%.<p>f", f)`.
fn go_fixed(f: f64, precision: usize) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{f:.precision$}")
    }
}

/// The most digits after the point `%f` and `%e` print, so that a huge precision cannot exhaust
/// memory (Go's printer has no such bound).
const MAX_PRECISION: usize = 1000;

/// A double for `%f` and `%e`: a double, or the strings `NaN`, `Infinity` and `-Infinity`.
fn float_arg(arg: &Arg, clause: &str) -> Result<f64, String> {
    match arg {
        Arg::Value(CelValue::Float(f)) => Ok(*f),
        Arg::Value(CelValue::String(s)) if s.as_str() == "NaN" => Ok(f64::NAN),
        Arg::Value(CelValue::String(s)) if s.as_str() == "Infinity" => Ok(f64::INFINITY),
        Arg::Value(CelValue::String(s)) if s.as_str() == "-Infinity" => Ok(f64::NEG_INFINITY),
        other => Err(format!(
            "{clause} clause can only be used on doubles, was given {}",
            other.type_name()
        )),
    }
}

/// golang.org/x/text's `en-US` rendering of a non-finite double.
fn non_finite(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("∞")
    } else if f == f64::NEG_INFINITY {
        Some("-∞")
    } else {
        None
    }
}

/// `%.<p>f` through golang.org/x/text's `en-US` printer: digits grouped by thousands.
pub(super) fn fixed_en_us(f: f64, precision: usize) -> String {
    if let Some(s) = non_finite(f) {
        return s.to_owned();
    }
    let plain = format!("{:.*}", precision.min(MAX_PRECISION), f.abs());
    let (int, frac) = match plain.split_once('.') {
        Some((i, fr)) => (i, Some(fr)),
        None => (plain.as_str(), None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let negative = f < 0.0;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&grouped);
    if let Some(fr) = frac {
        out.push('.');
        out.push_str(fr);
    }
    out
}

/// Superscript digits and minus, as golang.org/x/text prints an exponent.
fn superscript(exp: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut out = String::new();
    if exp < 0 {
        out.push('⁻');
    }
    for d in format!("{:02}", exp.unsigned_abs()).bytes() {
        out.push(DIGITS[usize::from(d - b'0')]);
    }
    out
}

/// `%e` through golang.org/x/text's `en-US` printer: cel-go passes the precision as a width
/// (`%<p>e`), so the mantissa always has 6 decimals; the exponent is `\u{202f}×\u{202f}10` and
/// superscript digits (`2.718280 × 10⁰⁰`).
pub(super) fn scientific_en_us(f: f64) -> String {
    if let Some(s) = non_finite(f) {
        return s.to_owned();
    }
    let sci = format!("{:.6e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mantissa}\u{202f}×\u{202f}10{}", superscript(exp))
}

/// Go's `%b`, `%o`, `%x` of a signed integer: the sign, then the magnitude's digits.
fn signed_radix(i: i64, digits: impl Fn(u64) -> String) -> String {
    if i < 0 {
        format!("-{}", digits(i.unsigned_abs()))
    } else {
        digits(i.unsigned_abs())
    }
}

fn hex_bytes(b: &[u8], upper: bool) -> String {
    b.iter()
        .map(|x| {
            if upper {
                format!("{x:02X}")
            } else {
                format!("{x:02x}")
            }
        })
        .collect()
}

/// One formatting clause.
#[derive(Clone, Copy)]
enum Clause {
    String,
    Decimal,
    Fixed(Option<usize>),
    Scientific,
    Binary,
    Hex(bool),
    Octal,
}

impl Clause {
    fn apply(self, arg: &Arg) -> Result<String, String> {
        let given = || arg.type_name();
        match self {
            Clause::String => format_string(arg),
            Clause::Decimal => match arg {
                Arg::Value(CelValue::Int(i)) => Ok(i.to_string()),
                Arg::Value(CelValue::UInt(u)) => Ok(u.to_string()),
                _ => Err(format!(
                    "decimal clause can only be used on integers, was given {}",
                    given()
                )),
            },
            Clause::Fixed(p) => Ok(fixed_en_us(float_arg(arg, "fixed-point")?, p.unwrap_or(6))),
            Clause::Scientific => Ok(scientific_en_us(float_arg(arg, "scientific")?)),
            Clause::Binary => match arg {
                Arg::Value(CelValue::Int(i)) => Ok(signed_radix(*i, |u| format!("{u:b}"))),
                Arg::Value(CelValue::UInt(u)) => Ok(format!("{u:b}")),
                Arg::Value(CelValue::Bool(b)) => Ok(if *b { "1" } else { "0" }.to_owned()),
                _ => Err(format!(
                    "only integers and bools can be formatted as binary, was given {}",
                    given()
                )),
            },
            Clause::Hex(upper) => match arg {
                Arg::Value(CelValue::Int(i)) => Ok(signed_radix(*i, |u| {
                    if upper {
                        format!("{u:X}")
                    } else {
                        format!("{u:x}")
                    }
                })),
                Arg::Value(CelValue::UInt(u)) => Ok(if upper {
                    format!("{u:X}")
                } else {
                    format!("{u:x}")
                }),
                Arg::Value(CelValue::String(s)) => Ok(hex_bytes(s.as_bytes(), upper)),
                Arg::Value(CelValue::Bytes(b)) => Ok(hex_bytes(b, upper)),
                _ => Err(format!(
                    "only integers, byte buffers, and strings can be formatted as hex, was given {}",
                    given()
                )),
            },
            Clause::Octal => match arg {
                Arg::Value(CelValue::Int(i)) => Ok(signed_radix(*i, |u| format!("{u:o}"))),
                Arg::Value(CelValue::UInt(u)) => Ok(format!("{u:o}")),
                _ => Err(format!(
                    "octal clause can only be used on integers, was given {}",
                    given()
                )),
            },
        }
    }
}

/// cel-go's `parseFormattingClause` on the bytes after a `%`: the clause and the bytes read.
fn parse_clause(rest: &[u8]) -> Result<(Clause, usize), String> {
    let mut i = 0;
    let mut precision = None;
    if rest.first() == Some(&b'.') {
        i = 1;
        let digits_from = i;
        loop {
            let Some(b) = rest.get(i) else {
                return Err(
                    "error while parsing precision: could not find end of precision specifier"
                        .to_owned(),
                );
            };
            if !b.is_ascii_digit() {
                break;
            }
            i += 1;
        }
        let digits = String::from_utf8_lossy(&rest[digits_from..i]).into_owned();
        precision = Some(go_atoi(&digits).map_err(|e| {
            format!(
                "error while parsing precision: error while converting precision to integer: {e}"
            )
        })?);
    }
    let Some(&r) = rest.get(i) else {
        // Go indexes past the end here and panics; cel-go's callers never reach it.
        return Err("unexpected end of string".to_owned());
    };
    let clause = match r {
        b's' => Clause::String,
        b'd' => Clause::Decimal,
        b'f' => Clause::Fixed(precision),
        b'e' => Clause::Scientific,
        b'b' => Clause::Binary,
        b'x' => Clause::Hex(false),
        b'X' => Clause::Hex(true),
        b'o' => Clause::Octal,
        other => {
            return Err(format!(
                "unrecognized formatting clause \"{}\"",
                char::from(other)
            ));
        }
    };
    Ok((clause, i + 1))
}

/// Go's `strconv.Atoi` on ASCII digits: its error wording included.
fn go_atoi(digits: &str) -> Result<usize, String> {
    if digits.is_empty() {
        return Err("strconv.Atoi: parsing \"\": invalid syntax".to_owned());
    }
    match digits.parse::<i64>() {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Err(_) => Err(format!(
            "strconv.Atoi: parsing {}: value out of range",
            gofmt::quote(digits)
        )),
    }
}

/// cel-go's `parseFormatString`.
fn format_with(fmt: &str, args: &[Arg]) -> Result<String, String> {
    let bytes = fmt.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let (mut i, mut arg_index) = (0usize, 0usize);
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'%') {
            out.push(b'%');
            i += 2;
            continue;
        }
        let Some(arg) = args.get(arg_index) else {
            return Err(format!("index {arg_index} out of range"));
        };
        if i + 1 >= bytes.len() {
            return Err("unexpected end of string".to_owned());
        }
        let (clause, read) = parse_clause(&bytes[i + 1..])
            .map_err(|e| format!("could not parse formatting clause: {e}"))?;
        let value = clause
            .apply(arg)
            .map_err(|e| format!("error during formatting: {e}"))?;
        out.extend_from_slice(value.as_bytes());
        i += 1 + read;
        arg_index += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn format<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let fmt = str_arg("format", &args, 0)?;
    let Some(list) = args.get(1) else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let items: Vec<Arg> = match list.as_ref().as_iterable() {
        Some(it) => {
            let mut items = Vec::new();
            let mut iter = it.iter();
            while let Some(item) = iter.next() {
                items.push(Arg::of(item));
            }
            items
        }
        None => return Err(fail("format", "no such overload")),
    };
    ret(string(
        format_with(fmt, &items).map_err(|e| fail("format", e))?,
    ))
}

#[cfg(test)]
pub(super) fn format_values(fmt: &str, values: Vec<CelValue>) -> Result<String, String> {
    let args: Vec<Arg> = values.into_iter().map(Arg::Value).collect();
    format_with(fmt, &args)
}
