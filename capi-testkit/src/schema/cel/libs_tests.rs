//! Unit tests of the strings (version 2), sets, lists extension and Kubernetes lists `indexOf`
//! functions, results and error messages as cel-go words them.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use cel::{Context, Value as CelValue};
use proptest::prelude::*;

use super::strings::{
    fixed_en_us, format_values, go_replace, go_split, index_of_offset, last_index_of_offset,
    scientific_en_us, substring_of,
};
use super::{ENV, compile_expr};

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

fn strings(expr: &str) -> Vec<String> {
    match eval(expr) {
        Ok(CelValue::List(l)) => l
            .iter()
            .map(|v| match v {
                CelValue::String(s) => s.to_string(),
                other => panic!("{expr}: {other:?}"),
            })
            .collect(),
        other => panic!("{expr}: {other:?}"),
    }
}

// --- strings ---

#[test]
fn char_at_counts_code_points() {
    assert_eq!(string("'hello'.charAt(4)"), "o");
    assert_eq!(string("'hello'.charAt(5)"), "");
    assert_eq!(string("'©αT'.charAt(1)"), "α");
    assert_eq!(err("'hello'.charAt(6)"), "index out of range: 6");
    assert_eq!(err("'hello'.charAt(-1)"), "index out of range: -1");
}

#[test]
fn index_of_follows_cel_go() {
    assert_eq!(int("'hello mellow'.indexOf('')"), 0);
    assert_eq!(int("'hello mellow'.indexOf('ello')"), 1);
    assert_eq!(int("'hello mellow'.indexOf('jello')"), -1);
    assert_eq!(int("'hello mellow'.indexOf('', 2)"), 2);
    assert_eq!(int("'hello mellow'.indexOf('ello', 2)"), 7);
    // An offset past the end finds nothing; an empty needle returns the offset as given.
    assert_eq!(int("'hello mellow'.indexOf('ello', 20)"), -1);
    assert_eq!(int("'abc'.indexOf('', 20)"), 20);
    assert_eq!(int("'abc'.indexOf('', -1)"), -1);
    assert_eq!(int("''.indexOf('a')"), -1);
    assert_eq!(int("'ta©o©αT'.indexOf('©', 3)"), 4);
    assert_eq!(int("'ta©o©αT'.indexOf('©α', 5)"), -1);
    assert_eq!(
        err("'hello mellow'.indexOf('ello', -1)"),
        "index out of range: -1"
    );
}

#[test]
fn last_index_of_follows_cel_go() {
    assert_eq!(int("'hello mellow'.lastIndexOf('')"), 12);
    assert_eq!(int("'hello mellow'.lastIndexOf('ello')"), 7);
    assert_eq!(int("'hello mellow'.lastIndexOf('jello')"), -1);
    assert_eq!(int("'hello mellow'.lastIndexOf('ello', 6)"), 1);
    assert_eq!(int("'hello mellow'.lastIndexOf('ello', 20)"), -1);
    assert_eq!(int("'bananananana'.lastIndexOf('nana', 7)"), 6);
    assert_eq!(int("'ta©o©αT'.lastIndexOf('©', 3)"), 2);
    assert_eq!(int("'abc'.lastIndexOf('', 7)"), 7);
    assert_eq!(
        err("'hello mellow'.lastIndexOf('ello', -1)"),
        "index out of range: -1"
    );
    // cel-go searches an empty string from index -1.
    assert_eq!(err("''.lastIndexOf('@@')"), "index out of range: -1");
}

#[test]
fn ascii_case_leaves_other_letters() {
    assert_eq!(string("'TacoCÆt Xii'.lowerAscii()"), "tacocÆt xii");
    assert_eq!(string("'TacoCÆt Xii'.upperAscii()"), "TACOCÆT XII");
}

#[test]
fn replace_and_split_are_gos() {
    assert_eq!(string("'hello hello'.replace('he', 'we')"), "wello wello");
    assert_eq!(
        string("'hello hello'.replace('he', 'we', -1)"),
        "wello wello"
    );
    assert_eq!(
        string("'hello hello'.replace('he', 'we', 1)"),
        "wello hello"
    );
    assert_eq!(
        string("'hello hello'.replace('he', 'we', 0)"),
        "hello hello"
    );
    assert_eq!(
        string("'hello hello'.replace('', '_')"),
        "_h_e_l_l_o_ _h_e_l_l_o_"
    );
    assert_eq!(strings("'a b c'.split(' ')"), ["a", "b", "c"]);
    assert_eq!(strings("'a b c'.split(' ', 0)"), Vec::<String>::new());
    assert_eq!(strings("'a b c'.split(' ', 2)"), ["a", "b c"]);
    assert_eq!(strings("'a©c'.split('')"), ["a", "©", "c"]);
    assert_eq!(strings("'a©c'.split('', 2)"), ["a", "©c"]);
    assert_eq!(strings("''.split('')"), Vec::<String>::new());
    assert_eq!(strings("''.split(',')"), [""]);
}

#[test]
fn substring_checks_range_then_bounds() {
    assert_eq!(string("'tacocat'.substring(4)"), "cat");
    assert_eq!(string("'tacocat'.substring(7)"), "");
    assert_eq!(string("'ta©o©αT'.substring(2, 6)"), "©o©α");
    assert_eq!(err("'tacocat'.substring(-1)"), "index out of range: -1");
    assert_eq!(err("'tacocat'.substring(8)"), "index out of range: 8");
    assert_eq!(err("'tacocat'.substring(1, 50)"), "index out of range: 50");
    assert_eq!(err("'tacocat'.substring(49, 50)"), "index out of range: 49");
    assert_eq!(err("'tacocat'.substring(-2, -1)"), "index out of range: -2");
    assert_eq!(
        err("'tacocat'.substring(4, 3)"),
        "invalid substring range. start: 4, end: 3"
    );
}

#[test]
fn trim_join_quote() {
    assert_eq!(string("'  \\ttrim\\n    '.trim()"), "trim");
    assert_eq!(string("'\\u00a0\\u2003x\\u200b'.trim()"), "x\u{200b}");
    assert_eq!(string("['a', 'b'].join()"), "ab");
    assert_eq!(string("['a', 'b'].join('-')"), "a-b");
    assert_eq!(string("[].join('-')"), "");
    assert_eq!(err("['a', 1].join()"), "join: invalid input: 1");
    assert_eq!(
        string(r#"strings.quote('single-quote with "double quote"')"#),
        r#""single-quote with \"double quote\"""#
    );
    assert_eq!(string("strings.quote(\"two \\a\\n\")"), "\"two \\a\\n\"");
}

#[test]
fn no_strings_version_3_reverse() {
    // `reverse()` on a string is version 3, which kube-apiserver 1.36 does not enable.
    assert!(eval("'abc'.reverse()").is_err());
    assert_eq!(eval("[1, 2].reverse() == [2, 1]"), Ok(CelValue::Bool(true)));
}

#[test]
fn format_is_the_version_1_formatter() {
    let f = |e: &str| string(e);
    assert_eq!(f("'%s and %d'.format(['a', 1])"), "a and 1");
    assert_eq!(f("'%%%s%%'.format(['x'])"), "%x%");
    assert_eq!(f("'%s'.format([2.5])"), "2.5");
    assert_eq!(f("'%s'.format([1e21])"), "1e+21");
    assert_eq!(f("'%s'.format([1000000.0])"), "1e+06");
    assert_eq!(f("'%s'.format([null])"), "null");
    assert_eq!(f("'%s'.format([b'xyz'])"), "xyz");
    assert_eq!(f("'%s'.format([type('')])"), "string");
    assert_eq!(f("'%s'.format([duration('1h45m47s')])"), "6347s");
    assert_eq!(f("'%s'.format([duration('2ns')])"), "0.000000002s");
    assert_eq!(
        f("'%s'.format([timestamp('2023-02-03T23:31:20+00:00')])"),
        "2023-02-03T23:31:20Z"
    );
    assert_eq!(
        f("'%s'.format([['abc', 3.14, null, [9, 8], timestamp('2023-02-03T23:31:20Z')]])"),
        r#"["abc", 3.140000, null, [9, 8], timestamp("2023-02-03T23:31:20Z")]"#
    );
    assert_eq!(
        f("'%s'.format([{'key1': b'xyz', 'key2': duration('2h'), 'key3': 2.71828, 'key4': true}])"),
        r#"{"key1":b"xyz", "key2":duration("7200s"), "key3":2.718280, "key4":true}"#
    );
    assert_eq!(
        f("'%s'.format([{1: 'value1', 2u: 'value2', true: double('NaN')}])"),
        r#"{1:"value1", 2:"value2", true:"NaN"}"#
    );
    assert_eq!(f("'%.3f'.format([1.2345])"), "1.234");
    assert_eq!(f("'%f'.format([2.71828])"), "2.718280");
    assert_eq!(f("'%.2f'.format([-1234567.891])"), "-1,234,567.89");
    assert_eq!(f("'%f'.format(['NaN'])"), "NaN");
    assert_eq!(f("'%f'.format(['Infinity'])"), "∞");
    assert_eq!(f("'%f'.format([double('-Infinity')])"), "-∞");
    assert_eq!(
        f("'%.6e'.format([1052.032911275])"),
        "1.052033\u{202f}×\u{202f}10⁰³"
    );
    assert_eq!(f("'%e'.format([2.71828])"), "2.718280\u{202f}×\u{202f}10⁰⁰");
    assert_eq!(f("'%b %b %b'.format([5, 64u, true])"), "101 1000000 1");
    assert_eq!(f("'%o %o'.format([-11, 65535u])"), "-13 177777");
    assert_eq!(f("'%x %X %x'.format([30, 6000u, -30])"), "1e 1770 -1e");
    assert_eq!(
        f("'%x'.format(['Hello world!'])"),
        "48656c6c6f20776f726c6421"
    );
    assert_eq!(f("'%X'.format([b'byte string'])"), "6279746520737472696E67");
}

#[test]
fn format_errors_are_cel_gos() {
    assert_eq!(err("'%d %d %d'.format([0, 1])"), "index 2 out of range");
    assert_eq!(err("'%'.format([])"), "index 0 out of range");
    assert_eq!(err("'%'.format([1])"), "unexpected end of string");
    assert_eq!(
        err("'%a'.format([1])"),
        "could not parse formatting clause: unrecognized formatting clause \"a\""
    );
    assert_eq!(
        err("'%E'.format([0.5])"),
        "could not parse formatting clause: unrecognized formatting clause \"E\""
    );
    assert_eq!(
        err("'%.f'.format([1.0])"),
        "could not parse formatting clause: error while parsing precision: error while converting precision to integer: strconv.Atoi: parsing \"\": invalid syntax"
    );
    assert_eq!(
        err("'%.3'.format([1.0])"),
        "could not parse formatting clause: error while parsing precision: could not find end of precision specifier"
    );
    assert_eq!(
        err("'%b'.format(['abc'])"),
        "error during formatting: only integers and bools can be formatted as binary, was given string"
    );
    assert_eq!(
        err("'%d'.format([duration('30m2s')])"),
        "error during formatting: decimal clause can only be used on integers, was given google.protobuf.Duration"
    );
    assert_eq!(
        err("'%d'.format([1.5])"),
        "error during formatting: decimal clause can only be used on integers, was given double"
    );
    assert_eq!(
        err("'%o'.format(['a string'])"),
        "error during formatting: octal clause can only be used on integers, was given string"
    );
    assert_eq!(
        err("'%x'.format([0.5])"),
        "error during formatting: only integers, byte buffers, and strings can be formatted as hex, was given double"
    );
    assert_eq!(
        err("'%e'.format([null])"),
        "error during formatting: scientific clause can only be used on doubles, was given null_type"
    );
    assert_eq!(
        err("'%f'.format([1])"),
        "error during formatting: fixed-point clause can only be used on doubles, was given int"
    );
    assert_eq!(
        err("'%s'.format([optional.none()])"),
        "error during formatting: string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given optional_type"
    );
}

#[test]
fn format_helpers_match_x_text() {
    assert_eq!(fixed_en_us(0.0, 2), "0.00");
    assert_eq!(fixed_en_us(999.999, 2), "1,000.00");
    assert_eq!(fixed_en_us(1234.5, 0), "1,234");
    assert_eq!(
        scientific_en_us(-0.000314),
        "-3.140000\u{202f}×\u{202f}10⁻⁰⁴"
    );
    assert_eq!(
        format_values("%s", vec![CelValue::Float(f64::INFINITY)]),
        Ok("+Inf".to_owned())
    );
}

// --- sets ---

#[test]
fn sets_functions() {
    yes("sets.contains([], [])");
    yes("sets.contains([1], [])");
    yes("sets.contains([1, 2, 3, 4], [2, 3])");
    yes("!sets.contains([1, 2], [2, 3])");
    yes("sets.contains([1, 2, 3], [3.0, 1u])");
    yes("sets.contains([[1], [2, 3]], [[2, 3]])");
    yes("sets.equivalent([], [])");
    yes("sets.equivalent([1], [1, 1])");
    yes("sets.equivalent([1, 2, 3], [3u, 2.0, 1])");
    yes("!sets.equivalent([1, 2], [2, 2, 2])");
    yes("sets.intersects([1], [1])");
    yes("sets.intersects([1, 2], [2.0, 3])");
    yes("!sets.intersects([], [])");
    yes("!sets.intersects([1], [])");
    yes("!sets.intersects([1, 2], [3])");
    yes("sets.intersects(['a', 'b'], ['b'])");
}

// --- lists ---

#[test]
fn list_index_of() {
    assert_eq!(int("[1, 2, 2, 3].indexOf(2)"), 1);
    assert_eq!(int("['a', 'b', 'b', 'c'].lastIndexOf('b')"), 2);
    assert_eq!(int("[1.0].indexOf(1.1)"), -1);
    assert_eq!(int("[].indexOf('string')"), -1);
    assert_eq!(int("[1, 2].indexOf(2.0)"), 1);
    assert_eq!(int("[[1], [2]].lastIndexOf([2])"), 1);
    // The strings extension's `indexOf` still serves strings.
    assert_eq!(int("'abc'.indexOf('c')"), 2);
    assert_eq!(err("[].max()"), "max called on empty list");
}

#[test]
fn lists_extension_version_3() {
    yes("[1, 2, 3, 4].slice(1, 3) == [2, 3]");
    assert_eq!(
        err("[1, 2].slice(-1, 1)"),
        "cannot slice(-1, 1), negative indexes not supported"
    );
    assert_eq!(
        err("[1, 2].slice(2, 1)"),
        "cannot slice(2, 1), start index must be less than or equal to end index"
    );
    assert_eq!(
        err("[1, 2].slice(0, 3)"),
        "cannot slice(0, 3), list is length 2"
    );
    yes("[1, [2, [3, 4]]].flatten() == [1, 2, [3, 4]]");
    yes("[1, [2, [3, [4]]]].flatten(2) == [1, 2, 3, [4]]");
    assert_eq!(err("[1].flatten(-1)"), "level must be non-negative");
    yes("[3, 1, 2].sort() == [1, 2, 3]");
    yes("['b', 'c', 'a'].sort() == ['a', 'b', 'c']");
    assert_eq!(
        err("[1, 'b'].sort()"),
        "list elements must have the same type"
    );
    assert_eq!(err("[[1], [2]].sort()"), "list elements must be comparable");
    yes("[{'n': 2}, {'n': 1}].sortBy(e, e.n) == [{'n': 1}, {'n': 2}]");
    yes("lists.range(3) == [0, 1, 2]");
    yes("lists.range(0) == [] && lists.range(-1) == []");
    assert_eq!(
        err("lists.range(2000000).size()"),
        "operation cancelled: actual cost limit exceeded"
    );
    assert_eq!(
        compile_expr("[1].sortBy(e.f, e)").err().unwrap_or_default(),
        "ERROR: <input>:1:13: argument must be a simple name\n| [1].sortBy(e.f, e)\n| ............^"
    );
    yes("[1, 2, 2, 3, 1].distinct() == [1, 2, 3]");
    yes("[5, 3, 1].reverse() == [1, 3, 5]");
}

// --- optional types, version 2 ---

#[test]
fn optional_list_functions() {
    yes("[1, 2].first() == optional.of(1)");
    yes("[1, 2].last().value() == 2");
    yes("![].first().hasValue() && ![].last().hasValue()");
    yes("optional.unwrap([optional.of(42), optional.none()]) == [42]");
    yes("[optional.none(), optional.of('a')].unwrapOpt() == ['a']");
    yes("[].unwrapOpt() == []");
    assert_eq!(err("optional.unwrap([1])"), "value 1 is not optional");
    yes("{'a': 1}.?a.orValue(0) == 1 && {'a': 1}.?b.orValue(0) == 0");
    yes("[1, 2][?5].hasValue() == false");
}

// --- two-variable comprehensions ---

#[test]
fn two_variable_comprehensions() {
    yes("[10, 20].all(i, v, v == (i + 1) * 10)");
    yes("!['a', 'b'].all(i, v, i == 0)");
    yes("{'a': 1, 'b': 2}.all(k, v, k.size() == 1 && v > 0)");
    yes("{'a': 1, 'b': 2}.exists(k, v, k == 'b' && v == 2)");
    yes("![1, 2].exists(i, v, i == v)");
    yes("[0, 5, 3].existsOne(i, v, i == v)");
    yes("![0, 5, 2].existsOne(i, v, i == v)");
    yes("![0, 1].existsOne(i, v, i == v)");
    yes("[1, 2, 3].transformList(i, v, i * v) == [0, 2, 6]");
    yes("[1, 2, 3].transformList(i, v, i > 0, v) == [2, 3]");
    yes("{'a': 1}.transformList(k, v, k + string(v)) == ['a1']");
    yes("['x', 'y'].transformMap(i, v, v + v) == {0: 'xx', 1: 'yy'}");
    yes("{'a': 1, 'b': 2}.transformMap(k, v, v > 1, v * 10) == {'b': 20}");
    yes("{'a': 'x'}.transformMapEntry(k, v, {v: k}) == {'x': 'a'}");
    yes("[1, 2].transformMapEntry(i, v, i == 1, {string(v): i}) == {'2': 1}");
    assert_eq!(
        err("['a', 'a'].transformMapEntry(i, v, {v: i})"),
        "insert failed: key a already exists"
    );
    // The standard one-variable macros are untouched, and names shadow as in cel-go.
    yes("[1, 2].all(x, x > 0) && [1].exists(x, x == 1)");
    yes("[[1, 2]].all(i, v, v.all(i, i > 0))");
    yes("[[5]].all(i, v, v.exists(j, w, w == 5 && i == 0 && j == 0))");
}

// --- proptests: the strings functions against Rust references ---

/// Strings over a small alphabet, so that needles are often found, with multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('©'), Just('α'), Just(' ')],
        0..12,
    )
    .prop_map(|c| c.into_iter().collect())
}

proptest! {
    #[test]
    fn index_of_finds_the_first_code_point_match(s in text(), sub in text(), offset in -2i64..14) {
        let runes: Vec<char> = s.chars().collect();
        let subs: Vec<char> = sub.chars().collect();
        let expected = if sub.is_empty() {
            Ok(offset)
        } else if offset < 0 {
            Err(format!("index out of range: {offset}"))
        } else {
            let o = offset as usize;
            Ok((o..runes.len())
                .find(|&i| runes[i..].starts_with(&subs))
                .map_or(-1, |i| i as i64))
        };
        prop_assert_eq!(index_of_offset(&s, &sub, offset), expected);
    }

    #[test]
    fn last_index_of_finds_the_last_match_starting_by_the_offset(
        s in text(), sub in text(), offset in -2i64..14,
    ) {
        let runes: Vec<char> = s.chars().collect();
        let subs: Vec<char> = sub.chars().collect();
        let expected = if sub.is_empty() {
            Ok(offset)
        } else if offset < 0 {
            Err(format!("index out of range: {offset}"))
        } else if offset as usize >= runes.len() {
            Ok(-1)
        } else {
            Ok((0..=offset as usize)
                .rev()
                .find(|&i| runes[i..].starts_with(&subs))
                .map_or(-1, |i| i as i64))
        };
        prop_assert_eq!(last_index_of_offset(&s, &sub, offset), expected);
    }

    #[test]
    fn substring_is_a_code_point_slice(s in text(), start in -2i64..14, end in -2i64..14) {
        let runes: Vec<char> = s.chars().collect();
        let len = runes.len() as i64;
        let got = substring_of(&s, start, Some(end));
        if start > end {
            prop_assert_eq!(got, Err(format!("invalid substring range. start: {start}, end: {end}")));
        } else if start < 0 || start > len {
            prop_assert_eq!(got, Err(format!("index out of range: {start}")));
        } else if end > len {
            prop_assert_eq!(got, Err(format!("index out of range: {end}")));
        } else {
            let expected: String = runes[start as usize..end as usize].iter().collect();
            prop_assert_eq!(got, Ok(expected));
        }
    }

    #[test]
    fn split_then_join_round_trips(s in text(), sep in "[ ab]{1,2}") {
        let parts = go_split(&s, &sep, -1);
        prop_assert_eq!(parts.join(&sep), s.clone());
        prop_assert!(go_split(&s, &sep, 0).is_empty());
        for n in 1..4i64 {
            let limited = go_split(&s, &sep, n);
            prop_assert!(limited.len() <= n as usize);
            prop_assert_eq!(limited.join(&sep), s.clone());
        }
    }

    #[test]
    fn split_on_nothing_gives_code_points(s in text(), n in -1i64..6) {
        let parts = go_split(&s, "", n);
        if n != 0 {
            prop_assert_eq!(parts.concat(), s.clone());
        }
        let count = s.chars().count();
        let want = if n < 0 { count } else { (n as usize).min(count) };
        prop_assert_eq!(parts.len(), want);
    }

    #[test]
    fn replace_with_a_limit_counts_replacements(s in text(), old in "[ab]{1,2}", n in -1i64..5) {
        let out = go_replace(&s, &old, "_", n);
        let total = s.matches(old.as_str()).count();
        let want = if n < 0 { total } else { total.min(n as usize) };
        prop_assert_eq!(out.matches('_').count(), want);
    }

    #[test]
    fn fixed_point_groups_thousands(x in -1.0e12f64..1.0e12) {
        let got = fixed_en_us(x, 2);
        let plain = format!("{:.2}", x);
        prop_assert_eq!(got.replace(',', ""), plain.clone());
        let int_part = got.trim_start_matches('-').split('.').next().unwrap_or_default().to_owned();
        for (i, group) in int_part.split(',').enumerate() {
            if i == 0 {
                prop_assert!((1..=3).contains(&group.len()));
            } else {
                prop_assert_eq!(group.len(), 3);
            }
        }
    }
}
