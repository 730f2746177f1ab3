//! Unit tests of the Kubernetes CEL libraries, each function on good and bad inputs.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use cel::{Context, Value as CelValue};

use super::{ENV, compile_expr};

/// Evaluates `expr` (with no variables), or the error as the rule error would word it.
fn eval(expr: &str) -> Result<CelValue, String> {
    let program = compile_expr(expr).map_err(|e| format!("compile: {e}"))?;
    let ctx = Context::with_env(Arc::clone(&ENV));
    program.execute(&ctx).map_err(|e| match e {
        cel::ExecutionError::FunctionError { message, .. } => message,
        other => other.to_string(),
    })
}

fn yes(expr: &str) {
    assert_eq!(eval(expr), Ok(CelValue::Bool(true)), "{expr}");
}

fn int(expr: &str) -> i64 {
    match eval(expr) {
        Ok(CelValue::Int(i)) => i,
        other => panic!("{expr}: {other:?}"),
    }
}

fn string(expr: &str) -> String {
    match eval(expr) {
        Ok(CelValue::String(s)) => s.to_string(),
        other => panic!("{expr}: {other:?}"),
    }
}

fn err(expr: &str) -> String {
    match eval(expr) {
        Err(e) => e,
        other => panic!("{expr}: expected an error, got {other:?}"),
    }
}

// --- quantity ---

#[test]
fn quantities_parse_as_apimachinery_parses_them() {
    use super::quantity::{ERR_FORMAT_WRONG, ERR_NUMERIC, ERR_SUFFIX, exact_i64, parse};
    for (s, v) in [
        ("0", 0),
        ("1", 1),
        ("-1", -1),
        ("+5", 5),
        ("1k", 1000),
        ("1.5k", 1500),
        ("1Ki", 1024),
        ("1Mi", 1 << 20),
        ("1Gi", 1 << 30),
        ("1Ti", 1 << 40),
        ("1Pi", 1 << 50),
        ("1Ei", 1 << 60),
        ("1.5Ki", 1536),
        ("1e3", 1000),
        ("1E3", 1000),
        ("2e+2", 200),
        ("1000m", 1),
        ("007", 7),
        (".5k", 500),
        ("1.", 1),
        ("12345678901234567000m", 12_345_678_901_234_567),
    ] {
        let q = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(exact_i64(&q), Some(v), "{s}");
    }
    for (s, e) in [
        ("", ERR_FORMAT_WRONG),
        ("abc", ERR_FORMAT_WRONG),
        ("1.5.5", ERR_FORMAT_WRONG),
        ("1 k", ERR_FORMAT_WRONG),
        ("1Kii", ERR_SUFFIX),
        ("1e", ERR_SUFFIX),
        ("1Ki3", ERR_SUFFIX),
        ("1x", ERR_FORMAT_WRONG),
        ("e-20", ERR_NUMERIC),
    ] {
        assert_eq!(parse(s).err(), Some(e), "{s}");
    }
    // Below a nano, values round up (away from zero); binary values are capped at 2^63-1.
    assert!(parse("1e-10").unwrap() == parse("1n").unwrap());
    assert!(parse("-1e-10").unwrap() == parse("-1n").unwrap());
    assert_eq!(exact_i64(&parse("16Ei").unwrap()), Some(i64::MAX));
}

#[test]
fn quantity_functions() {
    yes("isQuantity('1.5Gi')");
    yes("!isQuantity('1.5 Gi')");
    assert_eq!(int("quantity('-3m').sign()"), -1);
    assert_eq!(int("quantity('0').sign()"), 0);
    assert_eq!(int("quantity('2Ki').sign()"), 1);
    // isInteger follows the representation, as upstream's AsInt64 does.
    yes("quantity('1k').isInteger()");
    yes("quantity('1Ki').isInteger()");
    yes("!quantity('1000m').isInteger()");
    yes("!quantity('1.5Ki').isInteger()");
    yes("!quantity('1e100').isInteger()");
    assert_eq!(int("quantity('50Mi').asInteger()"), 50 << 20);
    assert_eq!(
        err("quantity('500m').asInteger()"),
        "cannot convert value to integer"
    );
    assert_eq!(
        eval("quantity('1.5k').asApproximateFloat()"),
        Ok(CelValue::Float(1500.0))
    );
    assert_eq!(
        eval("quantity('100m').asApproximateFloat()"),
        Ok(CelValue::Float(0.1))
    );
    yes("quantity('1k').add(quantity('500')) == quantity('1.5k')");
    yes("quantity('1k').add(24) == quantity('1024')");
    yes("quantity('1Ki').sub(quantity('24')) == quantity('1k')");
    yes("quantity('1').sub(2).sign() == -1");
    yes("quantity('1.5k').mul(2) == quantity('3k') && quantity('1k').mul(2).isInteger()");
    yes("quantity('1.5Ki').mul(-2) == quantity('-3Ki') && !quantity('1.5Ki').mul(2).isInteger()");
    yes("quantity('4Ei').mul(4) == quantity('18446744073709551616')");
    // Binary quantities are capped at 2^63-1 when parsed, as upstream caps them.
    yes("quantity('8Ei') == quantity('9223372036854775807')");
    yes("quantity('1.5Ki').add(quantity('1m')).compareTo(quantity('1536001m')) == 0");
    assert_eq!(int("quantity('1Gi').compareTo(quantity('1G'))"), 1);
    assert_eq!(int("quantity('1G').compareTo(quantity('1Gi'))"), -1);
    assert_eq!(int("quantity('1000m').compareTo(quantity('1'))"), 0);
    yes("quantity('1e3').isGreaterThan(quantity('999'))");
    yes("quantity('-1e300').isLessThan(quantity('1n'))");
    yes("quantity('1') == quantity('1000m')");
    yes("quantity('1') != quantity('2')");
    assert_eq!(
        err("quantity('1.5.5')"),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(err("quantity('1Kii')"), "unable to parse quantity's suffix");
    assert!(err("quantity(1)").contains("no matching overload"));
}

// --- url ---

#[test]
fn url_functions() {
    yes("isURL('https://example.com:80/path?query=val#fragment')");
    yes("isURL('/absolute-path')");
    yes("!isURL('relative/path')");
    yes("!isURL('')");
    yes("!isURL('http://[::1')");
    assert_eq!(string("url('https://example.com/').getScheme()"), "https");
    assert_eq!(string("url('HTTPS://example.com/').getScheme()"), "https");
    assert_eq!(
        string("url('https://example.com:80/').getHost()"),
        "example.com:80"
    );
    assert_eq!(string("url('https://[::1]:80/').getHost()"), "[::1]:80");
    assert_eq!(string("url('https://[::1]:80/').getHostname()"), "::1");
    assert_eq!(
        string("url('https://example.com:80/').getHostname()"),
        "example.com"
    );
    assert_eq!(string("url('https://example.com:80/').getPort()"), "80");
    assert_eq!(string("url('https://example.com/').getPort()"), "");
    assert_eq!(string("url('/a/b').getHost()"), "");
    assert_eq!(
        string("url('https://example.com/a%20b/c').getEscapedPath()"),
        "/a%20b/c"
    );
    assert_eq!(
        string("url('https://example.com/a b').getEscapedPath()"),
        "/a%20b"
    );
    assert_eq!(
        string("url('https://example.com/path#frag').getEscapedPath()"),
        "/path"
    );
    yes(
        "url('https://example.com/?k=a&k=b&j=c+d#f').getQuery() == {'k': ['a', 'b'], 'j': ['c d']}",
    );
    yes("url('https://example.com/').getQuery() == {}");
    yes("url('https://example.com/a') == url('https://example.com/a')");
    assert_eq!(
        err("url('relative')"),
        "URL parse error during conversion from string: parse \"relative\": invalid URI for request"
    );
    assert_eq!(
        err("url('https://exa mple.com/')"),
        "URL parse error during conversion from string: parse \"https://exa mple.com/\": invalid character \" \" in host name"
    );
    assert_eq!(
        err("url('http://example.com:8a/')"),
        "URL parse error during conversion from string: parse \"http://example.com:8a/\": invalid port \":8a\" after host"
    );
}

// --- ip and cidr ---

#[test]
fn ip_functions() {
    yes("isIP('192.168.0.1')");
    yes("isIP('::1')");
    yes("!isIP('192.168.0.01')");
    yes("!isIP('fe80::1%eth0')");
    yes("!isIP('::ffff:1.2.3.4')");
    yes("!isIP('1.2.3')");
    assert_eq!(int("ip('192.168.0.1').family()"), 4);
    assert_eq!(int("ip('2001:db8::1').family()"), 6);
    yes("ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified()");
    yes("!ip('127.0.0.1').isUnspecified()");
    yes("ip('127.0.0.9').isLoopback() && ip('::1').isLoopback() && !ip('10.0.0.1').isLoopback()");
    yes("ip('224.0.0.251').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()");
    yes("ip('ff12::1').isLinkLocalMulticast() && !ip('224.0.1.1').isLinkLocalMulticast()");
    yes("ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()");
    yes("!ip('fec0::1').isLinkLocalUnicast()");
    yes("ip('10.0.0.1').isGlobalUnicast() && ip('2001:db8::1').isGlobalUnicast()");
    yes("!ip('255.255.255.255').isGlobalUnicast() && !ip('ff00::1').isGlobalUnicast()");
    yes("!ip('169.254.0.1').isGlobalUnicast() && !ip('0.0.0.0').isGlobalUnicast()");
    yes("ip('127.0.0.1') == ip('127.0.0.1') && ip('::1') != ip('127.0.0.1')");
    assert_eq!(string("string(ip('2001:0db8:0:0:0:0:0:1'))"), "2001:db8::1");
    yes("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')");
    assert_eq!(
        err("ip('192.168.0.01')"),
        "IP Address \"192.168.0.01\" parse error during conversion from string: ParseAddr(\"192.168.0.01\"): IPv4 field has octet with leading zero"
    );
    assert_eq!(
        err("ip('::ffff:1.2.3.4')"),
        "IPv4-mapped IPv6 address \"::ffff:1.2.3.4\" is not allowed"
    );
    assert_eq!(
        err("ip('fe80::1%eth0')"),
        "IP address \"fe80::1%eth0\" with zone value is not allowed"
    );
    assert_eq!(
        err("ip('1.2.3')"),
        "IP Address \"1.2.3\" parse error during conversion from string: ParseAddr(\"1.2.3\"): IPv4 address too short"
    );
    assert_eq!(
        err("ip('foo')"),
        "IP Address \"foo\" parse error during conversion from string: ParseAddr(\"foo\"): unable to parse IP"
    );
}

#[test]
fn cidr_functions() {
    yes("isCIDR('10.0.0.0/8') && isCIDR('2001:db8::/32') && isCIDR('192.168.0.1/24')");
    yes("!isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.0/08')");
    yes("!isCIDR('::ffff:1.2.3.4/120')");
    yes("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))");
    yes("!cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))");
    yes("cidr('192.168.0.0/24').containsIP('192.168.0.1')");
    yes("!cidr('192.168.0.0/24').containsIP('::1')");
    yes("cidr('2001:db8::/32').containsIP('2001:db8::1')");
    yes("cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/25'))");
    yes("!cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/23'))");
    yes("cidr('192.168.0.0/24').containsCIDR('192.168.0.0/25')");
    // Upstream does not mask the contained CIDR's address (`netip.PrefixFrom`).
    yes("!cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')");
    yes("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')");
    yes("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')");
    yes("cidr('2001:db8:1::/32').masked() == cidr('2001:db8::/32')");
    assert_eq!(int("cidr('2001:db8::/32').prefixLength()"), 32);
    assert_eq!(string("string(cidr('192.168.0.0/24'))"), "192.168.0.0/24");
    assert_eq!(
        err("cidr('192.168.0.0/')"),
        "network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix(\"192.168.0.0/\"): bad bits after slash: \"\""
    );
    assert_eq!(
        err("cidr('10.0.0.0/33')"),
        "network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix(\"10.0.0.0/33\"): prefix length out of range"
    );
    assert_eq!(
        err("cidr('10.0.0.0')"),
        "network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix(\"10.0.0.0\"): no '/'"
    );
}

// --- semver ---

#[test]
fn semver_functions() {
    yes("isSemver('1.2.3') && isSemver('1.2.3-rc.1+build.5')");
    yes("!isSemver('1.2') && !isSemver('v1.2.3') && !isSemver('01.2.3')");
    yes("isSemver('v1.2', true) && isSemver('01.02.03', true) && !isSemver('1-rc', true)");
    assert_eq!(int("semver('1.2.3').major()"), 1);
    assert_eq!(int("semver('1.2.3').minor()"), 2);
    assert_eq!(int("semver('1.2.3').patch()"), 3);
    assert_eq!(int("semver('v1.2', true).minor()"), 2);
    assert_eq!(int("semver('1.2.3').compareTo(semver('1.2.3'))"), 0);
    assert_eq!(int("semver('1.2.3').compareTo(semver('2.0.0'))"), -1);
    assert_eq!(int("semver('1.2.3').compareTo(semver('0.1.2'))"), 1);
    yes("semver('1.0.0-alpha').isLessThan(semver('1.0.0-alpha.1'))");
    yes("semver('1.0.0-alpha.1').isLessThan(semver('1.0.0-alpha.beta'))");
    yes("semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))");
    yes("semver('1.0.0-2').isLessThan(semver('1.0.0-10'))");
    yes("semver('1.10.0').isGreaterThan(semver('1.9.9'))");
    yes("semver('1.0.0+a') == semver('1.0.0+b')");
    assert_eq!(err("semver('1.2')"), "No Major.Minor.Patch elements found");
    assert_eq!(
        err("semver('01.2.3')"),
        "Major number must not contain leading zeroes \"01\""
    );
    assert_eq!(
        err("semver('1.x.3')"),
        "Invalid character(s) found in minor number \"x\""
    );
    assert_eq!(
        err("semver('1.2.3-01')"),
        "Numeric PreRelease version must not contain leading zeroes \"01\""
    );
    assert_eq!(err("semver('')"), "Version string empty");
    assert_eq!(
        err("semver('1.2', true).major() == 1 && semver('1-rc', true).major() == 1"),
        "short version cannot contain PreRelease/Build meta data"
    );
}

// --- format ---

#[test]
fn format_functions() {
    yes("!format.dns1123Label().validate('my-name').hasValue()");
    yes(
        "format.dns1123Label().validate('My_Name').value() == [\"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')\"]",
    );
    yes("format.dns1123Label().validate('a.b').value() == ['must not contain dots']");
    yes("!format.dns1123Subdomain().validate('apiextensions.k8s.io').hasValue()");
    yes("format.dns1123Subdomain().validate('-x').hasValue()");
    yes("!format.dns1035Label().validate('abc-123').hasValue()");
    yes("format.dns1035Label().validate('1abc').hasValue()");
    yes("!format.qualifiedName().validate('example.com/MyName').hasValue()");
    yes("format.qualifiedName().validate('/MyName').value() == ['prefix part must be non-empty']");
    yes("format.qualifiedName().validate('a/b/c').value().size() == 1");
    yes("!format.dns1123LabelPrefix().validate('my-label-prefix-').hasValue()");
    yes("!format.dns1123SubdomainPrefix().validate('mysubdomain.prefix.-').hasValue()");
    yes("!format.dns1035LabelPrefix().validate('my-label-prefix-').hasValue()");
    yes(
        "!format.labelValue().validate('').hasValue() && !format.labelValue().validate('my_value').hasValue()",
    );
    yes("format.labelValue().validate('-x').hasValue()");
    yes("!format.uri().validate('http://example.com').hasValue()");
    yes(
        "format.uri().validate('example').value() == ['parse \"example\": invalid URI for request']",
    );
    yes("!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()");
    yes("format.uuid().validate('123').value() == ['does not match the UUID format']");
    yes("!format.byte().validate('aGVsbG8=').hasValue()");
    yes("format.byte().validate('!!').value() == ['invalid base64']");
    yes("!format.date().validate('2021-01-01').hasValue()");
    yes("format.date().validate('2021-13-01').value() == ['invalid date']");
    yes("!format.datetime().validate('2021-01-01T00:00:00Z').hasValue()");
    yes("format.datetime().validate('yesterday').value() == ['invalid datetime']");
    yes("format.named('dns1123Label').hasValue() && !format.named('nope').hasValue()");
    yes("!format.named('labelValue').value().validate('ok').hasValue()");
}

// --- regex ---

#[test]
fn regex_functions() {
    assert_eq!(string("'abc 123'.find('[0-9]+')"), "123");
    assert_eq!(string("'abc'.find('[0-9]+')"), "");
    yes("'123 abc 456'.findAll('[0-9]+') == ['123', '456']");
    yes("'123 abc 456'.findAll('[0-9]+', 1) == ['123']");
    yes("'123 abc 456'.findAll('[0-9]+', 0) == []");
    yes("'123 abc 456'.findAll('[0-9]+', -1) == ['123', '456']");
    assert!(err("'abc'.find('[')").starts_with("Illegal regex: "));
}

// --- lists (and function errors worded as cel-go words them) ---

#[test]
fn list_function_errors_are_the_bare_message() {
    assert_eq!(err("[].min()"), "min called on empty list");
}

#[test]
fn library_types_have_upstream_names() {
    yes("type(ip('1.2.3.4')) == net.IP && type(cidr('1.2.3.0/24')) == net.CIDR");
    yes("type(quantity('1')) == kubernetes.Quantity && type(url('/a')) == kubernetes.URL");
    yes("type(semver('1.0.0')) == kubernetes.Semver");
    yes("type(format.uuid()) == kubernetes.NamedFormat");
    // cel-go refuses these when it type-checks the rule; here they fail when they run.
    assert!(err("ip(1)").contains("no matching overload"));
    assert!(err("quantity('1').add('1')").contains("no matching overload"));
}
