//! The string `format`s kube-apiserver validates in CRD schemas.
//!
//! apiextensions-apiserver keeps only the formats of its `supportedVersionedFormats` list (after
//! removing dashes, so `date-time` is `datetime`) and strips every other format before building
//! the kube-openapi validator; the checks are kube-openapi's `strfmt.Default` registry, which
//! mostly delegates to govalidator and Go's `net`, `net/mail`, `net/url` and `time` packages.
//! The checks here follow those functions; `email` and `uri` are close approximations of
//! `net/mail.ParseAddress` and `net/url.ParseRequestURI`.

use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

/// A format kube-apiserver validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    BsonObjectId,
    Uri,
    Email,
    Hostname,
    Ipv4,
    Ipv6,
    Cidr,
    Mac,
    Uuid,
    Uuid3,
    Uuid4,
    Uuid5,
    Isbn,
    Isbn10,
    Isbn13,
    CreditCard,
    Ssn,
    HexColor,
    RgbColor,
    Byte,
    Password,
    Date,
    Duration,
    DateTime,
}

/// A constant pattern (they all compile; a failure would only make the format reject everything).
type Re = LazyLock<Option<Regex>>;

fn re(p: &str) -> Option<Regex> {
    Regex::new(p).ok()
}

fn matches(r: &Re, s: &str) -> bool {
    r.as_ref().is_some_and(|r| r.is_match(s))
}

static HOSTNAME: Re = LazyLock::new(|| {
    re(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z0-9\p{S}\p{L}])(-?[a-zA-Z0-9\p{S}\p{L}]){1,62})$",
    )
});
static UUID: Re =
    LazyLock::new(|| re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"));
static UUID3: Re = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
});
static UUID4: Re = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static UUID5: Re = LazyLock::new(|| {
    re(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
});
static CREDIT_CARD: Re = LazyLock::new(|| {
    re(
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$",
    )
});
static SSN: Re = LazyLock::new(|| re(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"));
static HEX_COLOR: Re = LazyLock::new(|| re(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"));
static RGB_COLOR: Re = LazyLock::new(|| {
    let c = r"(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])";
    re(&format!(r"^rgb\(\s*{c}\s*,\s*{c}\s*,\s*{c}\s*\)$"))
});
static BASE64: Re = LazyLock::new(|| {
    re(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$")
});
static DATE_TIME: Re = LazyLock::new(|| {
    re(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
});
static SCALA_DURATION: Re = LazyLock::new(|| re(r"^\s*(?:\d+\s*[A-Za-zµ]+\s*)+$"));
static SCALA_DURATION_PART: Re = LazyLock::new(|| re(r"((\d+)\s*([A-Za-zµ]+))"));

impl Format {
    /// The format kube-apiserver validates for a schema's `format`, if any.
    pub(crate) fn supported(format: &str) -> Option<Self> {
        Some(match format.replace('-', "").as_str() {
            "bsonobjectid" => Self::BsonObjectId,
            "uri" => Self::Uri,
            "email" => Self::Email,
            "hostname" => Self::Hostname,
            "ipv4" => Self::Ipv4,
            "ipv6" => Self::Ipv6,
            "cidr" => Self::Cidr,
            "mac" => Self::Mac,
            "uuid" => Self::Uuid,
            "uuid3" => Self::Uuid3,
            "uuid4" => Self::Uuid4,
            "uuid5" => Self::Uuid5,
            "isbn" => Self::Isbn,
            "isbn10" => Self::Isbn10,
            "isbn13" => Self::Isbn13,
            "creditcard" => Self::CreditCard,
            "ssn" => Self::Ssn,
            "hexcolor" => Self::HexColor,
            "rgbcolor" => Self::RgbColor,
            "byte" => Self::Byte,
            "password" => Self::Password,
            "date" => Self::Date,
            "duration" => Self::Duration,
            "datetime" => Self::DateTime,
            _ => return None,
        })
    }

    /// Whether `s` is valid for this format.
    pub(crate) fn accepts(self, s: &str) -> bool {
        match self {
            Self::BsonObjectId => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
            Self::Uri => is_request_uri(s),
            Self::Email => is_email(s),
            Self::Hostname => {
                matches(&HOSTNAME, s) && s.len() <= 255 && s.split('.').all(|p| p.len() <= 63)
            }
            Self::Ipv4 => s.parse::<IpAddr>().is_ok() && s.contains('.'),
            Self::Ipv6 => s.parse::<IpAddr>().is_ok() && s.contains(':'),
            Self::Cidr => is_cidr(s),
            Self::Mac => is_mac(s.as_bytes()),
            Self::Uuid => matches(&UUID, s),
            Self::Uuid3 => matches(&UUID3, s),
            Self::Uuid4 => matches(&UUID4, s),
            Self::Uuid5 => matches(&UUID5, s),
            Self::Isbn => is_isbn10(s) || is_isbn13(s),
            Self::Isbn10 => is_isbn10(s),
            Self::Isbn13 => is_isbn13(s),
            Self::CreditCard => is_credit_card(s),
            Self::Ssn => s.len() == 11 && matches(&SSN, s),
            Self::HexColor => matches(&HEX_COLOR, s),
            Self::RgbColor => matches(&RGB_COLOR, s),
            Self::Byte => matches(&BASE64, s),
            Self::Password => true,
            Self::Date => is_date(s),
            Self::Duration => is_duration(s),
            Self::DateTime => is_date_time(s),
        }
    }
}

/// `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// kube-openapi's `strfmt.IsDateTime`.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let Some(m) = DATE_TIME.as_ref().and_then(|r| r.captures(parts[1])) else {
        return false;
    };
    let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
    g(1) <= "23" && g(2) <= "59" && g(3) <= "59"
}

/// kube-openapi's `strfmt.ParseDuration`: Go's `time.ParseDuration`, else a Scala-like syntax.
fn is_duration(s: &str) -> bool {
    if go_parse_duration(s) {
        return true;
    }
    if !matches(&SCALA_DURATION, s) {
        return false;
    }
    const UNITS: [&[&str]; 8] = [
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    let mut ok = false;
    let Some(part) = SCALA_DURATION_PART.as_ref() else {
        return false;
    };
    for m in part.captures_iter(s) {
        let digits = m.get(2).map_or("", |x| x.as_str());
        if digits.parse::<i64>().is_err() {
            return false;
        }
        let unit = m.get(3).map_or("", |x| x.as_str()).trim().to_lowercase();
        for variants in UNITS {
            let last = variants.len() - 1;
            for (i, v) in variants.iter().enumerate() {
                if (i == last && unit.starts_with(v)) || unit.eq_ignore_ascii_case(v) {
                    ok = true;
                }
            }
        }
    }
    ok
}

/// Go's `time.ParseDuration` succeeds.
fn go_parse_duration(s: &str) -> bool {
    go_duration_nanos(s).is_some()
}

/// Go's `time.ParseDuration`: the duration in nanoseconds, or `None` if `s` is not one.
pub(super) fn go_duration_nanos(s: &str) -> Option<i64> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let value: f64 = format!("{}.{}", if int.is_empty() { "0" } else { int }, frac)
            .parse()
            .unwrap_or(f64::INFINITY);
        total += value * nanos;
        if total > 9.223_372_036_854_776e18 {
            return None;
        }
        rest = after;
    }
    let total = total.round() as i64;
    Some(if negative { -total } else { total })
}

/// `net.ParseCIDR(s)` succeeds.
fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 8 {
        return false;
    }
    let bits: u32 = prefix.parse().unwrap_or(u32::MAX);
    bits <= if ip.is_ipv4() { 32 } else { 128 }
}

/// `net.ParseMAC(s)` succeeds (6, 8 or 20 octets; `:`/`-` pairs or `.` quads).
fn is_mac(s: &[u8]) -> bool {
    fn xtoi2(s: &[u8], sep: Option<u8>) -> bool {
        if s.len() > 2 && Some(s[2]) != sep {
            return false;
        }
        s.len() >= 2 && s[0].is_ascii_hexdigit() && s[1].is_ascii_hexdigit()
    }
    if s.len() < 14 {
        return false;
    }
    if s[2] == b':' || s[2] == b'-' {
        if !(s.len() + 1).is_multiple_of(3) {
            return false;
        }
        let n = (s.len() + 1) / 3;
        if !matches!(n, 6 | 8 | 20) {
            return false;
        }
        (0..n).all(|i| xtoi2(&s[i * 3..], Some(s[2])))
    } else if s[4] == b'.' {
        if !(s.len() + 1).is_multiple_of(5) {
            return false;
        }
        let n = 2 * (s.len() + 1) / 5;
        if !matches!(n, 6 | 8 | 20) {
            return false;
        }
        (0..n / 2).all(|i| {
            let x = i * 5;
            xtoi2(&s[x..x + 2], None) && xtoi2(&s[x + 2..], Some(s[4]))
        })
    } else {
        false
    }
}

fn isbn_digits(s: &str) -> String {
    s.chars()
        .filter(|c| !(c.is_whitespace() || *c == '-'))
        .collect()
}

/// govalidator's `IsISBN10`.
fn is_isbn10(s: &str) -> bool {
    let d = isbn_digits(s);
    let b = d.as_bytes();
    let shape = b.len() == 10
        && b[..9].iter().all(u8::is_ascii_digit)
        && (b[9].is_ascii_digit() || b[9] == b'X');
    if !shape {
        return false;
    }
    let mut sum: u32 = (0..9)
        .map(|i| (i as u32 + 1) * u32::from(b[i] - b'0'))
        .sum();
    sum += 10
        * if b[9] == b'X' {
            10
        } else {
            u32::from(b[9] - b'0')
        };
    sum.is_multiple_of(11)
}

/// govalidator's `IsISBN13`.
fn is_isbn13(s: &str) -> bool {
    let d = isbn_digits(s);
    let b = d.as_bytes();
    if b.len() != 13 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = (0..12)
        .map(|i| [1, 3][i % 2] * u32::from(b[i] - b'0'))
        .sum();
    u32::from(b[12] - b'0') == (10 - sum % 10) % 10
}

/// govalidator's `IsCreditCard`: the digits match a card-number pattern and pass Luhn.
fn is_credit_card(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if !matches(&CREDIT_CARD, &digits) {
        return false;
    }
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(is_atext))
}

/// An approximation of `net/mail.ParseAddress(s)` succeeding with a non-empty address:
/// `local@domain` or `Display Name <local@domain>`.
fn is_email(s: &str) -> bool {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(i), Some(inner)) => &inner[i + 1..],
        (None, None) => s,
        _ => return false,
    };
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    let local_ok =
        is_dot_atom(local) || (local.len() >= 2 && local.starts_with('"') && local.ends_with('"'));
    let domain_ok = is_dot_atom(domain) || (domain.starts_with('[') && domain.ends_with(']'));
    local_ok && domain_ok
}

/// An approximation of `net/url.ParseRequestURI(s)` succeeding: an absolute URI or an absolute
/// path, without control characters, with a well-formed authority and `%` escapes.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if s == "*" {
        return true;
    }
    let valid_escapes = |p: &str| {
        let b = p.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        true
    };
    // Scheme: a letter, then letters, digits, `+`, `-`, `.`, up to `:`.
    let mut scheme_end = None;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') {
            if i == 0 {
                break;
            }
            continue;
        }
        if c == ':' {
            if i == 0 {
                return false; // missing protocol scheme
            }
            scheme_end = Some(i);
        }
        break;
    }
    let rest = match scheme_end {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let rest = rest.split_once('?').map_or(rest, |(p, _)| p);
    if !rest.starts_with('/') {
        // `scheme:opaque` is fine; a relative reference is not a request URI.
        return scheme_end.is_some();
    }
    let path = if scheme_end.is_some()
        && let Some(after) = rest.strip_prefix("//")
    {
        let (authority, path) = after
            .find('/')
            .map_or((after, ""), |i| (&after[..i], &after[i..]));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host_ok = if let Some(v6) = host.strip_prefix('[') {
            match v6.split_once(']') {
                Some((_, port)) => {
                    port.is_empty()
                        || port
                            .strip_prefix(':')
                            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
                }
                None => false,
            }
        } else {
            let (name, port) = host.rsplit_once(':').unwrap_or((host, ""));
            port.bytes().all(|b| b.is_ascii_digit())
                && name.chars().all(|c| {
                    !c.is_ascii() || c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=%\"<>".contains(c)
                })
                && valid_escapes(name)
        };
        if !host_ok {
            return false;
        }
        path
    } else {
        rest
    };
    valid_escapes(path)
}
