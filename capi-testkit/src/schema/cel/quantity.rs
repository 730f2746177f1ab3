//! Kubernetes' quantity library (`k8s.io/apiserver/pkg/cel/library/quantity.go`): `quantity()`,
//! `isQuantity()`, and on a quantity `sign()`, `isInteger()`, `asInteger()`,
//! `asApproximateFloat()`, `add()`, `sub()`, `mul()`, `compareTo()`, `isLessThan()`,
//! `isGreaterThan()` (not yet the newer `div()` and `divInt()`).
//!
//! Quantities are parsed as apimachinery's `resource.ParseQuantity` parses them, keeping its two
//! representations apart (`int64Amount`, a 64-bit value times a power of ten, and the `inf.Dec`
//! it falls back to), because what `isInteger()` answers depends on which one a value has: like
//! upstream, `quantity('1000m').isInteger()` is false and `quantity('1k').isInteger()` true.

use std::cmp::Ordering;

use cel::Env;
use cel::common::types::{INT_TYPE, STRING_TYPE, Type};
use num_bigint::BigInt;
use num_traits::{Signed, Zero};

use super::support::{Args, Ret, arg, fail, int_arg, opaque_val, owned, ret, str_arg};

/// `kubernetes.Quantity`.
pub(super) static QUANTITY_TYPE: Type = Type::new_unspecified_type("kubernetes.Quantity");

/// `resource.ErrFormatWrong`.
pub(crate) const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// `resource.ErrNumeric`.
pub(crate) const ERR_NUMERIC: &str = "unable to parse numeric part of quantity";
/// `resource.ErrSuffix`.
pub(crate) const ERR_SUFFIX: &str = "unable to parse quantity's suffix";
/// The most decimal digits an exact value may need here (upstream has no bound but memory).
const MAX_DIGITS: i64 = 100_000;

/// A quantity's amount, as apimachinery holds it.
#[derive(Debug, Clone)]
pub(crate) enum Amount {
    /// `int64Amount`: `value * 10^scale`.
    Int { value: i64, scale: i32 },
    /// `inf.Dec`: `unscaled * 10^exp` (`exp` is minus inf.Dec's scale).
    Dec { unscaled: BigInt, exp: i64 },
}

/// A parsed quantity.
#[derive(Debug, Clone)]
pub(crate) struct Quantity(pub(crate) Amount);

impl PartialEq for Quantity {
    /// `Quantity.Equal`: equal values, whatever the representation.
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}

opaque_val!(Quantity, QUANTITY_TYPE);

fn pow10(n: u64) -> BigInt {
    num_traits::pow(BigInt::from(10u8), n as usize)
}

/// The number of decimal digits of a non-zero magnitude.
fn digits(n: &BigInt) -> i64 {
    n.magnitude().to_str_radix(10).len() as i64
}

/// The suffixes of `quantitySuffixer.interpret`: `(base, exponent, binary)`.
fn interpret(suffix: &str) -> Option<(u32, i32, bool)> {
    let binary = |e| Some((2, e, true));
    let decimal = |e| Some((10, e, false));
    match suffix {
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            // Go's `strconv.ParseInt(s[1:], 10, 64)` then `int32(...)`, which wraps.
            let digits = &s[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let parsed: i64 = digits.parse().ok()?;
            decimal(parsed as i32)
        }
        _ => None,
    }
}

/// The parts `parseQuantityString` splits a quantity into.
struct Parts<'a> {
    positive: bool,
    /// Whether the number part has a digit (the `value` inf.Dec must parse).
    has_digit: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// `parseQuantityString`.
fn split(s: &str) -> Result<Parts<'_>, &'static str> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    let sign_end = pos;
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let done = |num: &'static str| Parts {
        positive,
        has_digit: true,
        num,
        denom: "",
        suffix: "",
    };
    if pos >= end {
        return Ok(done("0"));
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let has_num_digit = pos > sign_end;
    let mut num = &s[num_start..pos];
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    let mut has_digit = has_num_digit;
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let d = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d..pos];
        has_digit |= !denom.is_empty();
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(ERR_FORMAT_WRONG);
    }
    Ok(Parts {
        positive,
        has_digit,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `resource.ParseQuantity`.
pub(crate) fn parse(s: &str) -> Result<Quantity, &'static str> {
    if s.is_empty() {
        return Err(ERR_FORMAT_WRONG);
    }
    if s == "0" {
        return Ok(Quantity(Amount::Int { value: 0, scale: 0 }));
    }
    let p = split(s)?;
    let (base, exponent, binary) = interpret(p.suffix).ok_or(ERR_SUFFIX)?;
    let (num_len, denom_len) = (p.num.len() as i32, p.denom.len() as i32);
    // The fast path, to an int64Amount.
    let (mut scale, precision, mantissa) = if binary {
        if exponent >= 0 && p.denom.is_empty() {
            (0, 15 - num_len - exponent * 3 / 10 - 1, 1i64 << exponent)
        } else {
            (0, -1, 1)
        }
    } else {
        (exponent, 18 - (num_len + denom_len), 1)
    };
    if precision >= 0 {
        scale -= denom_len;
        if scale >= -9 {
            let shifted = format!("{}{}", p.num, p.denom);
            let value: i64 = shifted.parse().map_err(|_| ERR_NUMERIC)?;
            if let Some(result) = value.checked_mul(mantissa) {
                let value = if p.positive { result } else { -result };
                return Ok(Quantity(Amount::Int { value, scale }));
            }
        }
    }
    // The inf.Dec path.
    if !p.has_digit {
        return Err(ERR_NUMERIC);
    }
    let digits_str = format!("{}{}", p.num, p.denom);
    let mut unscaled: BigInt = digits_str.parse().map_err(|_| ERR_NUMERIC)?;
    let mut exp = -(denom_len as i64);
    if base == 10 {
        exp += exponent as i64;
    } else {
        unscaled <<= exponent as usize;
    }
    // `amount.Round(amount, Nano, inf.RoundUp)` on the magnitude: to exactly nine decimals.
    if !unscaled.is_zero() {
        if exp < -9 {
            let div = pow10((-9 - exp) as u64);
            let (q, r) = (&unscaled / &div, &unscaled % &div);
            unscaled = if r.is_zero() { q } else { q + 1 };
        } else if exp > -9 {
            let up = exp + 9;
            if up.saturating_add(digits(&unscaled)) > MAX_DIGITS {
                return Err(ERR_NUMERIC);
            }
            unscaled *= pow10(up as u64);
        }
        exp = -9;
    }
    if binary && !unscaled.is_zero() {
        let max = BigInt::from(i64::MAX) * pow10((-exp) as u64);
        if unscaled > max {
            unscaled = BigInt::from(i64::MAX);
            exp = 0;
        }
    }
    if !p.positive {
        unscaled = -unscaled;
    }
    Ok(Quantity(Amount::Dec { unscaled, exp }))
}

/// `positiveScaleInt64`: `value * 10^scale` if it fits.
fn scale_up(value: i64, scale: i32) -> Option<i64> {
    let mut v = value;
    for _ in 0..scale {
        v = v.checked_mul(10)?;
    }
    Some(v)
}

impl Quantity {
    /// The exact value as `unscaled * 10^exp`.
    fn as_dec(&self) -> (BigInt, i64) {
        match &self.0 {
            Amount::Int { value, scale } => (BigInt::from(*value), *scale as i64),
            Amount::Dec { unscaled, exp } => (unscaled.clone(), *exp),
        }
    }

    /// `Quantity.Cmp`.
    pub(crate) fn cmp_value(&self, other: &Self) -> Ordering {
        let ((a, ea), (b, eb)) = (self.as_dec(), other.as_dec());
        let (sa, sb) = (a.signum(), b.signum());
        if sa != sb || a.is_zero() {
            return sa.cmp(&sb);
        }
        // Same sign, both non-zero: compare magnitudes by order, then exactly.
        let (ma, mb) = (digits(&a) + ea, digits(&b) + eb);
        let by_magnitude = if ma != mb {
            ma.cmp(&mb)
        } else {
            let e = ea.min(eb);
            let a = a.abs() * pow10((ea - e) as u64);
            let b = b.abs() * pow10((eb - e) as u64);
            a.cmp(&b)
        };
        if sa.is_negative() {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }

    /// `Quantity.Sign`.
    fn sign(&self) -> i64 {
        match &self.0 {
            Amount::Int { value, .. } => value.signum(),
            Amount::Dec { unscaled, .. } => match unscaled.sign() {
                num_bigint::Sign::Minus => -1,
                num_bigint::Sign::NoSign => 0,
                num_bigint::Sign::Plus => 1,
            },
        }
    }

    /// `Quantity.AsInt64`: only an int64Amount converts.
    pub(crate) fn as_int64(&self) -> Option<i64> {
        match &self.0 {
            Amount::Int { value, scale } => match scale.cmp(&0) {
                Ordering::Equal => Some(*value),
                Ordering::Less => None,
                Ordering::Greater => scale_up(*value, *scale),
            },
            Amount::Dec { .. } => None,
        }
    }

    /// `Quantity.AsApproximateFloat64`.
    pub(crate) fn as_approximate_float(&self) -> f64 {
        let (base, exponent) = match &self.0 {
            Amount::Int { value, scale } => (*value as f64, *scale as i64),
            Amount::Dec { unscaled, exp } => {
                (unscaled.to_string().parse().unwrap_or(f64::NAN), *exp)
            }
        };
        if exponent == 0 {
            return base;
        }
        base * go_pow10(exponent)
    }

    /// `Quantity.Add` (or `Sub` with `negate`) on a copy.
    fn add(&self, other: &Self, negate: bool) -> Result<Self, &'static str> {
        if let (
            Amount::Int {
                value: a,
                scale: sa,
            },
            Amount::Int {
                value: b,
                scale: sb,
            },
        ) = (&self.0, &other.0)
        {
            let b = if negate { b.checked_neg() } else { Some(*b) };
            if let Some(b) = b
                && let Some(sum) = int_add(*a, *sa, b, *sb)
            {
                return Ok(Self(sum));
            }
        }
        let ((a, ea), (b, eb)) = (self.as_dec(), other.as_dec());
        let b = if negate { -b } else { b };
        let e = ea.min(eb);
        if (ea - e).max(eb - e) > MAX_DIGITS {
            return Err("quantity out of range");
        }
        let sum = a * pow10((ea - e) as u64) + b * pow10((eb - e) as u64);
        Ok(Self(Amount::Dec {
            unscaled: sum,
            exp: e,
        }))
    }
}

impl Quantity {
    /// `Quantity.Mul` on a copy.
    fn mul(&self, y: i64) -> Self {
        match &self.0 {
            Amount::Int { value, scale } if value.checked_mul(y).is_some() => Self(Amount::Int {
                value: value * y,
                scale: *scale,
            }),
            _ => {
                let (u, exp) = self.as_dec();
                Self(Amount::Dec {
                    unscaled: u * y,
                    exp,
                })
            }
        }
    }
}

/// `int64Amount.Add`.
fn int_add(a: i64, sa: i32, b: i64, sb: i32) -> Option<Amount> {
    let int = |value, scale| Some(Amount::Int { value, scale });
    if b == 0 {
        return int(a, sa);
    }
    if a == 0 {
        return int(b, sb);
    }
    match sa.cmp(&sb) {
        Ordering::Equal => int(a.checked_add(b)?, sa),
        Ordering::Greater => int(scale_up(a, sa - sb)?.checked_add(b)?, sb),
        Ordering::Less => int(a.checked_add(scale_up(b, sb - sa)?)?, sa),
    }
}

/// Go's `math.Pow10`: the nearest double to `10^n`, `0` below `1e-323`, `+Inf` above `1e308`.
fn go_pow10(n: i64) -> f64 {
    if n < -323 {
        0.0
    } else if n > 308 {
        f64::INFINITY
    } else {
        format!("1e{n}").parse().unwrap_or(f64::NAN)
    }
}

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(QUANTITY_TYPE.to_owned())?;
    let q = || QUANTITY_TYPE.to_owned();
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", q(), vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_get_int", q(), vec![], as_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        q(),
        vec![],
        as_float,
    )?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    env.add_member_overload("mul", "quantity_multiply_int", q(), vec![INT_TYPE], mul)?;
    env.add_member_overload(
        "compareTo",
        "quantity_compare_to",
        q(),
        vec![q()],
        compare_to,
    )?;
    env.add_member_overload("isLessThan", "quantity_less", q(), vec![q()], is_less_than)?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_greater",
        q(),
        vec![q()],
        is_greater_than,
    )?;
    Ok(())
}

fn quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("quantity", &args, 0)?;
    owned(parse(s).map_err(|e| fail("quantity", e))?)
}

fn is_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("isQuantity", &args, 0)?;
    ret(cel::Value::Bool(parse(s).is_ok()))
}

fn sign<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(arg::<Quantity>("sign", &args, 0)?.sign()))
}

fn is_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("isInteger", &args, 0)?;
    ret(cel::Value::Bool(q.as_int64().is_some()))
}

fn as_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("asInteger", &args, 0)?;
    match q.as_int64() {
        Some(i) => ret(cel::Value::Int(i)),
        None => Err(fail("asInteger", "cannot convert value to integer")),
    }
}

fn as_float<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("asApproximateFloat", &args, 0)?;
    ret(cel::Value::Float(q.as_approximate_float()))
}

/// The operand of `add`/`sub`: a quantity, or an int as `resource.NewQuantity(i, DecimalExponent)`.
fn operand(function: &str, args: &Args<'_, '_>) -> Result<Quantity, cel::ExecutionError> {
    match arg::<Quantity>(function, args, 1) {
        Ok(q) => Ok(q.clone()),
        Err(e) => match int_arg(function, args, 1) {
            Ok(i) => Ok(Quantity(Amount::Int { value: i, scale: 0 })),
            Err(_) => Err(e),
        },
    }
}

fn add<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("add", &args, 0)?;
    let other = operand("add", &args)?;
    owned(q.add(&other, false).map_err(|e| fail("add", e))?)
}

fn sub<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("sub", &args, 0)?;
    let other = operand("sub", &args)?;
    owned(q.add(&other, true).map_err(|e| fail("sub", e))?)
}

fn mul<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Quantity>("mul", &args, 0)?;
    owned(q.mul(int_arg("mul", &args, 1)?))
}

fn ordering(function: &str, args: &Args<'_, '_>) -> Result<Ordering, cel::ExecutionError> {
    let a = arg::<Quantity>(function, args, 0)?;
    let b = arg::<Quantity>(function, args, 1)?;
    Ok(a.cmp_value(b))
}

fn compare_to<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(ordering("compareTo", &args)? as i64))
}

fn is_less_than<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        ordering("isLessThan", &args)? == Ordering::Less,
    ))
}

fn is_greater_than<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        ordering("isGreaterThan", &args)? == Ordering::Greater,
    ))
}

/// Whether `q` fits an `i64` exactly, for tests.
#[cfg(test)]
pub(crate) fn exact_i64(q: &Quantity) -> Option<i64> {
    use num_traits::ToPrimitive;
    let (u, e) = q.as_dec();
    if e >= 0 {
        (u * pow10(e as u64)).to_i64()
    } else {
        let d = pow10((-e) as u64);
        if (&u % &d).is_zero() {
            (u / d).to_i64()
        } else {
            None
        }
    }
}
