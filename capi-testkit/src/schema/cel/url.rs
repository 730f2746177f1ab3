//! Kubernetes' URL library (`k8s.io/apiserver/pkg/cel/library/urls.go`): `url()`, `isURL()`,
//! and on a URL `getScheme()`, `getHost()`, `getHostname()`, `getPort()`, `getEscapedPath()`,
//! `getQuery()`.
//!
//! URLs are parsed as Go's `net/url` parses them: `url.ParseRequestURI` decides what is a URL
//! (absolute URLs and absolute paths), and the components come from `url.Parse`, which also
//! splits off the fragment.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Env;
use cel::common::types::{STRING_TYPE, Type};
use cel::objects::{Key, Map};

use super::support::{Args, Ret, arg, fail, opaque_val, owned, ret, str_arg};

/// `kubernetes.URL`.
pub(super) static URL_TYPE: Type = Type::new_unspecified_type("kubernetes.URL");

/// The components of a parsed URL (Go's `url.URL`), as far as the library reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Url {
    pub(crate) scheme: String,
    pub(crate) opaque: String,
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) raw_path: String,
    pub(crate) raw_query: String,
    pub(crate) fragment: String,
}

opaque_val!(Url, URL_TYPE);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    QueryComponent,
    Fragment,
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone) {
        match c {
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':'
            | b'[' | b']' | b'<' | b'>' | b'"' => return false,
            _ => {}
        }
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::QueryComponent => true,
            Mode::Fragment => false,
            Mode::Host | Mode::Zone => true,
        },
        _ => {
            if mode == Mode::Fragment {
                return !matches!(c, b'!' | b'(' | b')' | b'*');
            }
            true
        }
    }
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `unescape`, with its errors' wording.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| Some((unhex(h[0])?, unhex(h[1])?)));
                let Some((hi, lo)) = hex else {
                    let end = (i + 3).min(b.len());
                    return Err(format!(
                        "invalid URL escape {}",
                        crate::gofmt::quote(&String::from_utf8_lossy(&b[i..end]))
                    ));
                };
                if mode == Mode::Host && hi < 8 && &s[i..i + 3] != "%25" {
                    return Err(format!(
                        "invalid character {} in host name",
                        crate::gofmt::quote(&s[i..i + 3])
                    ));
                }
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(if mode == Mode::QueryComponent {
                    b' '
                } else {
                    b'+'
                });
                i += 1;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        crate::gofmt::quote(&s[i..i + 1])
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `escape` for paths.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, Mode::Path) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
    }
    out
}

/// Go's `validEncoded` for paths.
fn valid_encoded_path(s: &str) -> bool {
    s.bytes().all(|c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c, Mode::Path)
    })
}

/// Go's `getScheme`.
fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `validOptionalPort`.
fn valid_optional_port(port: &str) -> bool {
    if port.is_empty() {
        return true;
    }
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Go's `parseHost`.
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                crate::gofmt::quote(colon_port)
            ));
        }
        if let Some(zone) = host[..i].find("%25") {
            let h1 = unescape(&host[..zone], Mode::Host)?;
            let h2 = unescape(&host[zone..i], Mode::Zone)?;
            let h3 = unescape(&host[i..], Mode::Host)?;
            return Ok(h1 + &h2 + &h3);
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port {} after host",
                crate::gofmt::quote(colon_port)
            ));
        }
    }
    unescape(host, Mode::Host)
}

/// Go's `validUserinfo`.
fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// Go's `parseAuthority`: `(user, host)`.
fn parse_authority(authority: &str) -> Result<(Option<String>, String), String> {
    let Some(i) = authority.rfind('@') else {
        return Ok((None, parse_host(authority)?));
    };
    let host = parse_host(&authority[i + 1..])?;
    let userinfo = &authority[..i];
    if !valid_userinfo(userinfo) {
        return Err("net/url: invalid userinfo".to_owned());
    }
    let user = match userinfo.split_once(':') {
        None => unescape(userinfo, Mode::UserPassword)?,
        Some((u, p)) => unescape(u, Mode::UserPassword)? + ":" + &unescape(p, Mode::UserPassword)?,
    };
    Ok((Some(user), host))
}

/// Go's `url.parse`.
fn parse_inner(raw: &str, via_request: bool) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    if raw.is_empty() && via_request {
        return Err("empty url".to_owned());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".to_owned();
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest.to_owned();
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest.pop();
    } else if let Some((r, q)) = rest.clone().split_once('?') {
        rest = r.to_owned();
        url.raw_query = q.to_owned();
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest;
            return Ok(url);
        }
        if via_request {
            return Err("invalid URI for request".to_owned());
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_owned());
        }
    }
    if (!url.scheme.is_empty() || !via_request && !rest.starts_with("///"))
        && rest.starts_with("//")
    {
        let authority_and_path = rest[2..].to_owned();
        let (authority, path) = match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path.as_str(), ""),
        };
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = host;
        rest = path.to_owned();
    }
    let path = unescape(&rest, Mode::Path)?;
    url.raw_path = if escape_path(&path) == rest {
        String::new()
    } else {
        rest
    };
    url.path = path;
    Ok(url)
}

/// The `*url.Error` wording: `parse "<url>": <err>`.
fn url_error(raw: &str, err: &str) -> String {
    format!("parse {}: {err}", crate::gofmt::quote(raw))
}

/// `url.ParseRequestURI`.
pub(crate) fn parse_request_uri(raw: &str) -> Result<Url, String> {
    parse_inner(raw, true).map_err(|e| url_error(raw, &e))
}

/// `url.Parse`.
pub(crate) fn parse(raw: &str) -> Result<Url, String> {
    let (u, frag) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    let mut url = parse_inner(u, false).map_err(|e| url_error(raw, &e))?;
    if let Some(f) = frag {
        url.fragment = unescape(f, Mode::Fragment).map_err(|e| url_error(raw, &e))?;
    }
    Ok(url)
}

/// Go's `splitHostPort`.
fn split_host_port(host_port: &str) -> (&str, &str) {
    let mut host = host_port;
    let mut port = "";
    if let Some(colon) = host.rfind(':')
        && valid_optional_port(&host[colon..])
    {
        port = &host[colon + 1..];
        host = &host[..colon];
    }
    if host.starts_with('[') && host.ends_with(']') && host.len() >= 2 {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

impl Url {
    /// `URL.Hostname`.
    pub(crate) fn hostname(&self) -> &str {
        split_host_port(&self.host).0
    }

    /// `URL.Port`.
    pub(crate) fn port(&self) -> &str {
        split_host_port(&self.host).1
    }

    /// `URL.EscapedPath`.
    pub(crate) fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded_path(&self.raw_path)
            && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".to_owned();
        }
        escape_path(&self.path)
    }

    /// `URL.Query`: `url.ParseQuery`, whose malformed pairs are dropped.
    pub(crate) fn query(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for pair in self.raw_query.split('&') {
            if pair.is_empty() || pair.contains(';') {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(k), Ok(v)) = (
                unescape(k, Mode::QueryComponent),
                unescape(v, Mode::QueryComponent),
            ) else {
                continue;
            };
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some((_, values)) => values.push(v),
                None => out.push((k, vec![v])),
            }
        }
        out
    }
}

/// Registers the library.
pub(super) fn library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(URL_TYPE.to_owned())?;
    let u = || URL_TYPE.to_owned();
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", u(), vec![], get_scheme_fn)?;
    env.add_member_overload("getHost", "url_get_host", u(), vec![], get_host)?;
    env.add_member_overload("getHostname", "url_get_hostname", u(), vec![], get_hostname)?;
    env.add_member_overload("getPort", "url_get_port", u(), vec![], get_port)?;
    env.add_member_overload(
        "getEscapedPath",
        "url_get_escaped_path",
        u(),
        vec![],
        get_escaped_path,
    )?;
    env.add_member_overload("getQuery", "url_get_query", u(), vec![], get_query)?;
    Ok(())
}

fn string(s: &str) -> cel::Value {
    cel::Value::String(Arc::new(s.to_owned()))
}

fn url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("url", &args, 0)?;
    let conversion = |e: String| {
        fail(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    };
    parse_request_uri(s).map_err(conversion)?;
    owned(parse(s).map_err(conversion)?)
}

fn is_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg("isURL", &args, 0)?;
    ret(cel::Value::Bool(parse_request_uri(s).is_ok()))
}

fn get_scheme_fn<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(&arg::<Url>("getScheme", &args, 0)?.scheme))
}

fn get_host<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(&arg::<Url>("getHost", &args, 0)?.host))
}

fn get_hostname<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(arg::<Url>("getHostname", &args, 0)?.hostname()))
}

fn get_port<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(arg::<Url>("getPort", &args, 0)?.port()))
}

fn get_escaped_path<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    ret(string(
        &arg::<Url>("getEscapedPath", &args, 0)?.escaped_path(),
    ))
}

fn get_query<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let q = arg::<Url>("getQuery", &args, 0)?.query();
    let entries: HashMap<Key, cel::Value> = q
        .into_iter()
        .map(|(k, vs)| {
            (
                Key::String(Arc::new(k)),
                cel::Value::List(Arc::new(vs.iter().map(|v| string(v)).collect())),
            )
        })
        .collect();
    ret(cel::Value::Map(Map {
        map: Arc::new(entries),
    }))
}
