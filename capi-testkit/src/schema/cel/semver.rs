//! Kubernetes' semver library (`k8s.io/apiserver/pkg/cel/library/semverlib.go`): `semver()`,
//! `isSemver()` (each with an optional `normalize` flag), and on a version `major()`, `minor()`,
//! `patch()`, `compareTo()`, `isLessThan()`, `isGreaterThan()`.
//!
//! Versions are parsed as `github.com/blang/semver/v4`'s `Parse` parses them, with its errors'
//! wording, and compared as its `Version.Compare` does (build metadata is ignored).

use std::cmp::Ordering;

use cel::Env;
use cel::common::types::{BOOL_TYPE, STRING_TYPE, Type};

use super::support::{Args, Ret, arg, bool_arg, fail, opaque_val, owned, ret, str_arg};
use crate::gofmt::quote;

/// `kubernetes.Semver`.
pub(super) static SEMVER_TYPE: Type = Type::new_unspecified_type("kubernetes.Semver");

/// One dot-separated part of a pre-release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pre {
    Num(u64),
    Str(String),
}

/// A parsed version (build metadata is checked, not kept: nothing reads it).
#[derive(Debug, Clone)]
pub(crate) struct Semver {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
    pub(crate) pre: Vec<Pre>,
}

impl PartialEq for Semver {
    /// `Version.Equals`: build metadata is ignored.
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

opaque_val!(Semver, SEMVER_TYPE);

fn only(s: &str, f: fn(u8) -> bool) -> bool {
    s.bytes().all(f)
}

fn num(b: u8) -> bool {
    b.is_ascii_digit()
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn leading_zero(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

/// Go's `strconv.ParseUint(s, 10, 64)` errors.
fn parse_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !only(s, num) {
        return Err(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            quote(s)
        ));
    }
    s.parse().map_err(|_| {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            quote(s)
        )
    })
}

/// `semver.Parse`.
pub(crate) fn parse(s: &str) -> Result<Semver, String> {
    if s.is_empty() {
        return Err("Version string empty".to_owned());
    }
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    if parts.len() != 3 {
        return Err("No Major.Minor.Patch elements found".to_owned());
    }
    let number = |p: &str, what: &str, cap: &str| -> Result<u64, String> {
        if !only(p, num) {
            return Err(format!(
                "Invalid character(s) found in {what} number {}",
                quote(p)
            ));
        }
        if leading_zero(p) {
            return Err(format!(
                "{cap} number must not contain leading zeroes {}",
                quote(p)
            ));
        }
        parse_uint(p)
    };
    let major = number(parts[0], "major", "Major")?;
    let minor = number(parts[1], "minor", "Minor")?;
    let mut patch_str = parts[2];
    let mut build: Vec<String> = Vec::new();
    let mut pre_parts = Vec::new();
    if let Some(i) = patch_str.find('+') {
        build = patch_str[i + 1..].split('.').map(str::to_owned).collect();
        patch_str = &patch_str[..i];
    }
    if let Some(i) = patch_str.find('-') {
        pre_parts = patch_str[i + 1..].split('.').collect();
        patch_str = &patch_str[..i];
    }
    let patch = number(patch_str, "patch", "Patch")?;
    let mut pre = Vec::new();
    for p in pre_parts {
        if p.is_empty() {
            return Err("Prerelease is empty".to_owned());
        }
        if only(p, num) {
            if leading_zero(p) {
                return Err(format!(
                    "Numeric PreRelease version must not contain leading zeroes {}",
                    quote(p)
                ));
            }
            pre.push(Pre::Num(parse_uint(p)?));
        } else if only(p, alnum) {
            pre.push(Pre::Str(p.to_owned()));
        } else {
            return Err(format!(
                "Invalid character(s) found in prerelease {}",
                quote(p)
            ));
        }
    }
    for b in &build {
        if b.is_empty() {
            return Err("Buildversion is empty".to_owned());
        }
        if !only(b, alnum) {
            return Err(format!(
                "Invalid character(s) found in build meta data {}",
                quote(b)
            ));
        }
    }
    Ok(Semver {
        major,
        minor,
        patch,
        pre,
    })
}

/// The library's `normalizeAndParse`: no `v` prefix, no leading zeros, missing minor and patch
/// numbers filled with zeros.
pub(crate) fn normalize_and_parse(s: &str) -> Result<Semver, String> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts: Vec<String> = s.splitn(3, '.').map(str::to_owned).collect();
    for p in &mut parts {
        if p.len() > 1 {
            let mut t = p.trim_start_matches('0').to_owned();
            if t.is_empty() || !t.starts_with(|c: char| c.is_ascii_digit()) {
                t.insert(0, '0');
            }
            *p = t;
        }
    }
    if parts.len() < 3 {
        if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
            return Err("short version cannot contain PreRelease/Build meta data".to_owned());
        }
        while parts.len() < 3 {
            parts.push("0".to_owned());
        }
    }
    parse(&parts.join("."))
}

impl Semver {
    /// `Version.Compare`.
    pub(crate) fn compare(&self, o: &Self) -> Ordering {
        let core = (self.major, self.minor, self.patch).cmp(&(o.major, o.minor, o.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (a, b) in self.pre.iter().zip(&o.pre) {
            let c = match (a, b) {
                (Pre::Num(x), Pre::Num(y)) => x.cmp(y),
                (Pre::Num(_), Pre::Str(_)) => Ordering::Less,
                (Pre::Str(_), Pre::Num(_)) => Ordering::Greater,
                (Pre::Str(x), Pre::Str(y)) => x.cmp(y),
            };
            if c != Ordering::Equal {
                return c;
            }
        }
        self.pre.len().cmp(&o.pre.len())
    }
}

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(SEMVER_TYPE.to_owned())?;
    let v = || SEMVER_TYPE.to_owned();
    env.add_overload("semver", "string_to_semver", vec![STRING_TYPE], semver)?;
    env.add_overload(
        "semver",
        "string_bool_to_semver",
        vec![STRING_TYPE, BOOL_TYPE],
        semver,
    )?;
    env.add_overload("isSemver", "is_semver_string", vec![STRING_TYPE], is_semver)?;
    env.add_overload(
        "isSemver",
        "is_semver_string_bool",
        vec![STRING_TYPE, BOOL_TYPE],
        is_semver,
    )?;
    env.add_member_overload("major", "semver_major", v(), vec![], major)?;
    env.add_member_overload("minor", "semver_minor", v(), vec![], minor)?;
    env.add_member_overload("patch", "semver_patch", v(), vec![], patch)?;
    env.add_member_overload("compareTo", "semver_compare_to", v(), vec![v()], compare_to)?;
    env.add_member_overload("isLessThan", "semver_is_less_than", v(), vec![v()], less)?;
    env.add_member_overload(
        "isGreaterThan",
        "semver_is_greater_than",
        v(),
        vec![v()],
        greater,
    )?;
    Ok(())
}

/// Parses argument 0, normalized if argument 1 says so.
fn parse_args(
    function: &str,
    args: &Args<'_, '_>,
) -> Result<Result<Semver, String>, cel::ExecutionError> {
    let s = str_arg(function, args, 0)?;
    let normalize = if args.len() > 1 {
        bool_arg(function, args, 1)?
    } else {
        false
    };
    Ok(if normalize {
        normalize_and_parse(s)
    } else {
        parse(s)
    })
}

fn semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    owned(parse_args("semver", &args)?.map_err(|e| fail("semver", e))?)
}

fn is_semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(parse_args("isSemver", &args)?.is_ok()))
}

fn major<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(
        arg::<Semver>("major", &args, 0)?.major as i64,
    ))
}

fn minor<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(
        arg::<Semver>("minor", &args, 0)?.minor as i64,
    ))
}

fn patch<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(
        arg::<Semver>("patch", &args, 0)?.patch as i64,
    ))
}

fn ordering(function: &str, args: &Args<'_, '_>) -> Result<Ordering, cel::ExecutionError> {
    let a = arg::<Semver>(function, args, 0)?;
    let b = arg::<Semver>(function, args, 1)?;
    Ok(a.compare(b))
}

fn compare_to<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(ordering("compareTo", &args)? as i64))
}

fn less<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        ordering("isLessThan", &args)? == Ordering::Less,
    ))
}

fn greater<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        ordering("isGreaterThan", &args)? == Ordering::Greater,
    ))
}
