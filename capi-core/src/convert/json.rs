//! Small JSON helpers for the conversions: move values between paths, Go durations.

use serde_json::{Map, Value};

/// Removes and returns the value at a dotted path.
pub(crate) fn take(obj: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (get_mut(obj, p)?, l),
        None => (obj, path),
    };
    let taken = parent.as_object_mut()?.remove(last)?;
    (!taken.is_null()).then_some(taken)
}

/// The value at a dotted path, if any.
pub(crate) fn get_mut<'a>(obj: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.')
        .try_fold(obj, |v, k| v.as_object_mut()?.get_mut(k))
}

/// Sets the value at a dotted path, creating objects on the way; `None` does nothing.
pub(crate) fn put(obj: &mut Value, path: &str, value: Option<Value>) {
    let Some(value) = value else { return };
    let mut cur = obj;
    let mut parts = path.split('.').peekable();
    while let Some(k) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            map.insert(k.to_owned(), value);
            return;
        }
        cur = map
            .entry(k.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Moves the value at `from` to `to` (with an optional transformation).
pub(crate) fn mv(obj: &mut Value, from: &str, to: &str) {
    let v = take(obj, from);
    put(obj, to, v);
}

/// Moves and transforms; a failed transformation drops the value, as a failed upstream parse does.
pub(crate) fn mv_with(obj: &mut Value, from: &str, to: &str, f: impl Fn(Value) -> Option<Value>) {
    let v = take(obj, from).and_then(f);
    put(obj, to, v);
}

/// Applies `f` to every element of the array at `path`.
pub(crate) fn each(obj: &mut Value, path: &str, f: impl Fn(&mut Value)) {
    if let Some(Value::Array(items)) = get_mut(obj, path) {
        items.iter_mut().for_each(f);
    }
}

/// A Go `time.Duration` string (`"1h2m3.5s"`, `"500ms"`) in whole seconds, as
/// `clusterv1.ConvertToSeconds` gives it (truncated).
pub(crate) fn duration_to_seconds(d: &str) -> Option<i64> {
    if d == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match d.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, d.strip_prefix('+').unwrap_or(d)),
    };
    let mut nanos: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += number * scale;
        rest = &rest[unit_len..];
    }
    let secs = (nanos / 1e9).trunc() as i64;
    Some(if neg { -secs } else { secs })
}

/// Seconds as a Go `time.Duration` string: `600` → `"10m0s"`, `0` → `"0s"`.
pub(crate) fn seconds_to_duration(s: i64) -> String {
    if s == 0 {
        return "0s".into();
    }
    let sign = if s < 0 { "-" } else { "" };
    let s = s.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// JSON duration string → JSON seconds number.
pub(crate) fn to_seconds(v: Value) -> Option<Value> {
    v.as_str().and_then(duration_to_seconds).map(Value::from)
}

/// JSON seconds number → JSON duration string.
pub(crate) fn to_duration(v: Value) -> Option<Value> {
    v.as_i64().map(|s| Value::String(seconds_to_duration(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration_to_seconds("10m0s"), Some(600));
        assert_eq!(duration_to_seconds("1h2m3.9s"), Some(3723));
        assert_eq!(duration_to_seconds("500ms"), Some(0));
        assert_eq!(duration_to_seconds("0"), Some(0));
        assert_eq!(duration_to_seconds("5x"), None);
        assert_eq!(seconds_to_duration(600), "10m0s");
        assert_eq!(seconds_to_duration(3723), "1h2m3s");
        assert_eq!(seconds_to_duration(5), "5s");
    }

    proptest! {
        #[test]
        fn seconds_round_trip(s in -1_000_000i64..1_000_000) {
            prop_assert_eq!(duration_to_seconds(&seconds_to_duration(s)), Some(s));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,12}") {
            let _ = duration_to_seconds(&s);
        }
    }
}
