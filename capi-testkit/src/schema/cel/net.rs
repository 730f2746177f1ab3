//! Kubernetes' IP and CIDR libraries (`k8s.io/apiserver/pkg/cel/library/ip.go` and `cidr.go`):
//! `ip()`, `isIP()`, `ip.isCanonical()`, `string(ip)` and on an IP `family()`,
//! `isUnspecified()`, `isLoopback()`, `isLinkLocalMulticast()`, `isLinkLocalUnicast()`,
//! `isGlobalUnicast()`; `cidr()`, `isCIDR()`, `string(cidr)` and on a CIDR `containsIP()`,
//! `containsCIDR()`, `ip()`, `masked()`, `prefixLength()`.
//!
//! Addresses are parsed as Go's `net/netip` parses them (no zones, no IPv4-mapped IPv6 addresses,
//! no leading zeros in IPv4 octets), and the predicates are netip's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use cel::Env;
use cel::common::types::{STRING_TYPE, Type};

use super::support::{Args, Ret, arg, fail, opaque_val, owned, ret, str_arg};
use crate::gofmt::quote;

/// `net.IP`.
pub(super) static IP_TYPE: Type = Type::new_unspecified_type("net.IP");
/// `net.CIDR`.
pub(super) static CIDR_TYPE: Type = Type::new_unspecified_type("net.CIDR");

/// An IP address (`apiservercel.IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ip(pub(crate) IpAddr);

/// A CIDR (`apiservercel.CIDR`): the address as written and the prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub(crate) addr: IpAddr,
    pub(crate) bits: u8,
}

opaque_val!(Ip, IP_TYPE);
opaque_val!(Cidr, CIDR_TYPE);

/// `netip.parseIPv4Fields`' checks, worded as netip words them.
fn parse_v4(input: &str, s: &str) -> Result<Ipv4Addr, String> {
    let err = |msg: &str, at: Option<&str>| match at {
        Some(at) => format!("ParseAddr({}): {msg} (at {})", quote(input), quote(at)),
        None => format!("ParseAddr({}): {msg}", quote(input)),
    };
    let b = s.as_bytes();
    let mut fields = [0u8; 4];
    let (mut val, mut pos, mut dig_len) = (0u32, 0usize, 0);
    for i in 0..b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            if dig_len == 1 && val == 0 {
                return Err(err("IPv4 field has octet with leading zero", None));
            }
            val = val * 10 + u32::from(c - b'0');
            dig_len += 1;
            if val > 255 {
                return Err(err("IPv4 field has value >255", None));
            }
        } else if c == b'.' {
            if i == 0 || i == b.len() - 1 || b[i - 1] == b'.' {
                return Err(err(
                    "IPv4 field must have at least one digit",
                    Some(&s[i..]),
                ));
            }
            if pos == 3 {
                return Err(err("IPv4 address too long", None));
            }
            fields[pos] = val as u8;
            pos += 1;
            val = 0;
            dig_len = 0;
        } else {
            return Err(err("unexpected character", Some(&s[i..])));
        }
    }
    if pos < 3 {
        return Err(err("IPv4 address too short", None));
    }
    fields[3] = val as u8;
    Ok(Ipv4Addr::from(fields))
}

/// `netip.ParseAddr`: the address and whether it had a zone.
fn netip_parse_addr(s: &str) -> Result<(IpAddr, bool), String> {
    for c in s.bytes() {
        match c {
            b'.' => return parse_v4(s, s).map(|a| (IpAddr::V4(a), false)),
            b':' => {
                let (addr, zone) = match s.split_once('%') {
                    Some((a, z)) => {
                        if z.is_empty() {
                            return Err(format!(
                                "ParseAddr({}): zone must be a non-empty string",
                                quote(s)
                            ));
                        }
                        (a, true)
                    }
                    None => (s, false),
                };
                // An embedded IPv4 part is checked as netip checks it (leading zeros...).
                if let Some(i) = addr.rfind(':')
                    && addr[i + 1..].contains('.')
                {
                    parse_v4(s, &addr[i + 1..])?;
                }
                return match addr.parse::<Ipv6Addr>() {
                    Ok(a) => Ok((IpAddr::V6(a), zone)),
                    Err(_) => Err(format!("ParseAddr({}): unable to parse IP", quote(s))),
                };
            }
            b'%' => {
                return Err(format!("ParseAddr({}): missing IPv6 address", quote(s)));
            }
            _ => {}
        }
    }
    Err(format!("ParseAddr({}): unable to parse IP", quote(s)))
}

fn is_4in6(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// The library's `parseIPAddr`.
pub(crate) fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    let (addr, zone) = netip_parse_addr(raw).map_err(|e| {
        format!(
            "IP Address {} parse error during conversion from string: {e}",
            quote(raw)
        )
    })?;
    if zone {
        return Err(format!(
            "IP address {} with zone value is not allowed",
            quote(raw)
        ));
    }
    if is_4in6(&addr) {
        return Err(format!(
            "IPv4-mapped IPv6 address {} is not allowed",
            quote(raw)
        ));
    }
    Ok(addr)
}

/// `netip.ParsePrefix`.
fn netip_parse_prefix(s: &str) -> Result<Cidr, String> {
    let err = |msg: &str| format!("netip.ParsePrefix({}): {msg}", quote(s));
    let Some(i) = s.rfind('/') else {
        return Err(err("no '/'"));
    };
    let (addr, zone) = netip_parse_addr(&s[..i]).map_err(|e| err(&e))?;
    if zone {
        return Err(err("IPv6 zones cannot be present in a prefix"));
    }
    let bits_str = &s[i + 1..];
    let bad = || err(&format!("bad bits after slash: {}", quote(bits_str)));
    if bits_str.len() > 1 && !bits_str.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return Err(bad());
    }
    let digits = bits_str.strip_prefix(['+', '-']).unwrap_or(bits_str);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let bits: i64 = bits_str.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if !(0..=max).contains(&bits) {
        return Err(err("prefix length out of range"));
    }
    Ok(Cidr {
        addr,
        bits: bits as u8,
    })
}

/// The library's `parseCIDR`.
pub(crate) fn parse_cidr(raw: &str) -> Result<Cidr, String> {
    let c = netip_parse_prefix(raw)
        .map_err(|e| format!("network address parse error during conversion from string: {e}"))?;
    if is_4in6(&c.addr) {
        return Err(format!(
            "IPv4-mapped IPv6 address {} is not allowed",
            quote(raw)
        ));
    }
    Ok(c)
}

/// `Addr.String`: dotted quad, or RFC 5952 for IPv6.
fn addr_string(a: &IpAddr) -> String {
    a.to_string()
}

fn mask(a: &IpAddr, bits: u8) -> IpAddr {
    match a {
        IpAddr::V4(v4) => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(*v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(*v6) & m))
        }
    }
}

impl Cidr {
    /// `Prefix.Contains`.
    fn contains(&self, ip: &IpAddr) -> bool {
        self.addr.is_ipv4() == ip.is_ipv4() && mask(ip, self.bits) == mask(&self.addr, self.bits)
    }
}

/// netip's `IsLinkLocalMulticast`.
fn is_link_local_multicast(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    }
}

/// netip's `IsLinkLocalUnicast`.
fn is_link_local_unicast(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// netip's `IsGlobalUnicast`.
fn is_global_unicast(a: &IpAddr) -> bool {
    if let IpAddr::V4(v4) = a
        && (v4.is_unspecified() || v4.is_broadcast())
    {
        return false;
    }
    !a.is_unspecified() && !a.is_loopback() && !a.is_multicast() && !is_link_local_unicast(a)
}

/// Registers the libraries.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(IP_TYPE.to_owned())?;
    env.add_type(CIDR_TYPE.to_owned())?;
    let ip_t = || IP_TYPE.to_owned();
    let cidr_t = || CIDR_TYPE.to_owned();
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], ip)?;
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_overload("string", "ip_to_string", vec![ip_t()], ip_to_string)?;
    env.add_member_overload("family", "ip_family", ip_t(), vec![], family)?;
    let preds: [(&str, &str, super::support::Func); 5] = [
        ("isUnspecified", "ip_is_unspecified", is_unspecified),
        ("isLoopback", "ip_is_loopback", is_loopback),
        ("isLinkLocalMulticast", "ip_is_link_local_multicast", llm),
        ("isLinkLocalUnicast", "ip_is_link_local_unicast", llu),
        ("isGlobalUnicast", "ip_is_global_unicast", gu),
    ];
    for (name, id, f) in preds {
        env.add_member_overload(name, id, ip_t(), vec![], f)?;
    }
    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], cidr)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_overload("string", "cidr_to_string", vec![cidr_t()], cidr_to_string)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        cidr_t(),
        vec![ip_t()],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        cidr_t(),
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        cidr_t(),
        vec![cidr_t()],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        cidr_t(),
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", cidr_t(), vec![], cidr_ip)?;
    env.add_member_overload("masked", "cidr_masked", cidr_t(), vec![], masked)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        cidr_t(),
        vec![],
        prefix_length,
    )?;
    Ok(())
}

fn ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("ip", &args, 0)?;
    owned(Ip(parse_ip(s).map_err(|e| fail("ip", e))?))
}

fn is_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        parse_ip(str_arg("isIP", &args, 0)?).is_ok(),
    ))
}

fn is_canonical<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("ip.isCanonical", &args, 0)?;
    let a = parse_ip(s).map_err(|e| fail("ip.isCanonical", e))?;
    ret(cel::Value::Bool(addr_string(&a) == s))
}

fn ip_to_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = arg::<Ip>("string", &args, 0)?;
    ret(cel::Value::String(Arc::new(addr_string(&a.0))))
}

fn family<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let a = arg::<Ip>("family", &args, 0)?;
    ret(cel::Value::Int(if a.0.is_ipv4() { 4 } else { 6 }))
}

fn predicate<'b, 'v>(name: &str, args: &Args<'b, 'v>, f: fn(&IpAddr) -> bool) -> Ret<'b, 'v> {
    let a = arg::<Ip>(name, args, 0)?;
    ret(cel::Value::Bool(f(&a.0)))
}

fn is_unspecified<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    predicate("isUnspecified", &args, IpAddr::is_unspecified)
}

fn is_loopback<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    predicate("isLoopback", &args, IpAddr::is_loopback)
}

fn llm<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    predicate("isLinkLocalMulticast", &args, is_link_local_multicast)
}

fn llu<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    predicate("isLinkLocalUnicast", &args, is_link_local_unicast)
}

fn gu<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    predicate("isGlobalUnicast", &args, is_global_unicast)
}

fn cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("cidr", &args, 0)?;
    let c = parse_cidr(s).map_err(|e| {
        fail(
            "cidr",
            format!("network address parse error during conversion from string: {e}"),
        )
    })?;
    owned(c)
}

fn is_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Bool(
        parse_cidr(str_arg("isCIDR", &args, 0)?).is_ok(),
    ))
}

fn cidr_to_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>("string", &args, 0)?;
    ret(cel::Value::String(Arc::new(format!(
        "{}/{}",
        addr_string(&c.addr),
        c.bits
    ))))
}

fn contains_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>("containsIP", &args, 0)?;
    let addr = match arg::<Ip>("containsIP", &args, 1) {
        Ok(a) => a.0,
        // Upstream hands the failed conversion to the IP overload, which answers
        // "no such overload".
        Err(e) => match parse_ip(str_arg("containsIP", &args, 1)?) {
            Ok(a) => a,
            Err(_) => return Err(e),
        },
    };
    ret(cel::Value::Bool(c.contains(&addr)))
}

fn contains_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>("containsCIDR", &args, 0)?;
    let other = match arg::<Cidr>("containsCIDR", &args, 1) {
        Ok(o) => o.clone(),
        Err(_) => parse_cidr(str_arg("containsCIDR", &args, 1)?).map_err(|e| {
            fail(
                "containsCIDR",
                format!("network address parse error during conversion from string: {e}"),
            )
        })?,
    };
    // Upstream compares `cidr.Prefix.Masked()` with `netip.PrefixFrom(other.Addr(), cidr.Bits())`,
    // which does not mask `other`'s address: only a CIDR written with its network address is
    // contained, as in upstream.
    let same_family = c.addr.is_ipv4() == other.addr.is_ipv4();
    let equal_masked = same_family && mask(&c.addr, c.bits) == other.addr;
    ret(cel::Value::Bool(equal_masked && c.bits <= other.bits))
}

fn cidr_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    owned(Ip(arg::<Cidr>("ip", &args, 0)?.addr))
}

fn masked<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>("masked", &args, 0)?;
    owned(Cidr {
        addr: mask(&c.addr, c.bits),
        bits: c.bits,
    })
}

fn prefix_length<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(cel::Value::Int(i64::from(
        arg::<Cidr>("prefixLength", &args, 0)?.bits,
    )))
}
