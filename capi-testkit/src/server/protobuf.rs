//! Protobuf (`application/vnd.kubernetes.protobuf`), as kubectl's imperative `create` commands
//! and client-go / controller-runtime clients speak it for built-in kinds: the magic `k8s\0`,
//! then a `runtime.Unknown` envelope (`typeMeta`, `raw`, `contentEncoding`, `contentType`) whose
//! `raw` is the object's message. Request bodies are decoded here to the JSON object the rest of
//! the server handles; answers are encoded back ([`encode`]) when the client's `Accept` prefers
//! protobuf, as upstream negotiates it ([`negotiate`]): objects, lists, `Status` errors and watch
//! streams.
//!
//! One generic wire-format walker, driven by per-kind tables ([`schema`]), not code per kind.
//! The `k8s-pb` crate has prost types for every kind, but neither serde nor a descriptor set, so
//! with it each kind would still need its own conversion to JSON; the tables are shorter and
//! need no dependency.
//!
//! As upstream: custom resources (and kinds the tables do not describe) answer 415, a body that
//! is not a well-formed message 400.

mod encode;
mod negotiate;
mod schema;

pub(crate) use negotiate::Negotiation;

use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::resources::Resource;
use schema::{Field, Msg, Ty};

/// What every protobuf body starts with.
const MAGIC: &[u8] = b"k8s\x00";

/// `0001-01-01T00:00:00Z`, Go's zero time, which protobuf carries for unset non-pointer times.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The 415 of an endpoint that takes no protobuf, as upstream words it for custom resources.
fn unsupported() -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".into(),
        details: None,
    }
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("failed to decode protobuf body: {message}"))
}

/// A protobuf body for `res` as the JSON object it encodes.
pub(crate) fn decode_body(res: &Resource, body: &[u8]) -> Result<Value, ApiError> {
    let Some(version) = res.versions.first() else {
        return Err(unsupported());
    };
    if !res.builtin || schema::message(&res.api_version(&version.name), &res.kind).is_none() {
        tracing::debug!(kind = %res.kind, "protobuf body refused: not a kind with a protobuf encoding here");
        return Err(unsupported());
    }
    let raw = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request(format!(
            "provided data does not appear to be a protobuf message, expected prefix {:?}",
            MAGIC
        ))
    })?;
    let envelope = Envelope::decode(raw)?;
    if !envelope.content_encoding.is_empty() {
        return Err(bad(format!(
            "unsupported content encoding {:?}",
            envelope.content_encoding
        )));
    }
    let msg = schema::message(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "no kind {:?} is registered for version {:?} in scheme \"capi-testkit\"",
            envelope.kind, envelope.api_version
        ))
    })?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(envelope.api_version));
    obj.insert("kind".into(), json!(envelope.kind));
    obj.extend(message(msg, envelope.raw)?);
    Ok(Value::Object(obj))
}

/// Removes from `obj`, a JSON object of the built-in kind `api_version`/`kind`, the fields its
/// Go type does not declare, as a typed decode drops them, and returns their paths
/// (`.spec.foo`, `.subjects[0].bar`) for the unknown-field warnings or the strict decoding
/// error. The tables this module decodes protobuf with are the kinds' declared fields. `None`
/// for kinds without a table (CustomResourceDefinitions: their fields are not checked).
pub(crate) fn prune_undeclared(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
) -> Option<Vec<String>> {
    let msg = schema::message(api_version, kind)?;
    let mut unknown = Vec::new();
    if let Some(fields) = obj.as_object_mut() {
        prune(msg, fields, "", true, &mut unknown);
    }
    Some(unknown)
}

fn prune(
    msg: &Msg,
    obj: &mut Map<String, Value>,
    path: &str,
    top: bool,
    unknown: &mut Vec<String>,
) {
    obj.retain(|key, value| {
        let Some(field) = msg.fields.iter().find(|f| f.json == key) else {
            // TypeMeta is declared by every kind.
            let type_meta = top && (key == "apiVersion" || key == "kind");
            if !type_meta {
                unknown.push(format!("{path}.{key}"));
            }
            return type_meta;
        };
        if let Ty::Msg(inner) = field.ty {
            match value {
                Value::Object(o) => prune(inner, o, &format!("{path}.{key}"), false, unknown),
                Value::Array(items) if field.repeated => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Object(o) = item {
                            prune(inner, o, &format!("{path}.{key}[{i}]"), false, unknown);
                        }
                    }
                }
                _ => {}
            }
        }
        true
    });
}

/// Any body the encoder writes (a kind, a list, a `Status`) back as JSON: what a client decodes.
#[cfg(test)]
pub(crate) fn decode_object(body: &[u8]) -> Result<Value, ApiError> {
    let raw = body.strip_prefix(MAGIC).ok_or_else(|| bad("no magic"))?;
    let envelope = Envelope::decode(raw)?;
    let msg = schema::message(&envelope.api_version, &envelope.kind)
        .or_else(|| schema::list_message(&envelope.api_version, &envelope.kind))
        .or_else(|| (envelope.kind == "Status").then_some(&schema::STATUS))
        .ok_or_else(|| bad(format!("no table for {}", envelope.kind)))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(envelope.api_version));
    obj.insert("kind".into(), json!(envelope.kind));
    obj.extend(message(msg, envelope.raw)?);
    Ok(Value::Object(obj))
}

/// `runtime.Unknown`.
#[derive(Debug, Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Envelope<'a> {
    fn decode(buf: &'a [u8]) -> Result<Self, ApiError> {
        let mut e = Envelope::default();
        let mut r = Reader { buf };
        while let Some((tag, value)) = r.field()? {
            match (tag, value) {
                (1, Wire::Len(tm)) => {
                    let mut r = Reader { buf: tm };
                    while let Some((tag, value)) = r.field()? {
                        match (tag, value) {
                            (1, Wire::Len(b)) => e.api_version = utf8(b)?,
                            (2, Wire::Len(b)) => e.kind = utf8(b)?,
                            (1 | 2, _) => return Err(wrong_wire(tag)),
                            _ => {}
                        }
                    }
                }
                (2, Wire::Len(b)) => e.raw = b,
                (3, Wire::Len(b)) => e.content_encoding = utf8(b)?,
                (4, Wire::Len(_)) => {}
                (1..=4, _) => return Err(wrong_wire(tag)),
                _ => {}
            }
        }
        Ok(e)
    }
}

/// A field's value on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Len(&'a [u8]),
    Fixed32,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for (i, b) in self.buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        Err(bad(if self.buf.len() < 10 {
            "unexpected end of data"
        } else {
            "integer overflow"
        }))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ApiError> {
        let n = usize::try_from(n).map_err(|_| bad("length overflow"))?;
        if n > self.buf.len() {
            return Err(bad("unexpected end of data"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field, `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(bad("illegal tag 0"));
        }
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Wire::Len(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            w => return Err(bad(format!("illegal wireType {w} for field {tag}"))),
        };
        Ok(Some((tag, value)))
    }
}

fn wrong_wire(tag: u64) -> ApiError {
    bad(format!("wrong wireType for field {tag}"))
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("a string is not valid UTF-8"))
}

fn base64(b: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(b.to_vec())).unwrap_or(Value::Null)
}

/// A `map<string, V>` entry: key (1) and value (2).
fn map_entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut r = Reader { buf: b };
    let (mut key, mut value): (String, &[u8]) = (String::new(), &[]);
    while let Some((tag, v)) = r.field()? {
        match (tag, v) {
            (1, Wire::Len(k)) => key = utf8(k)?,
            (2, Wire::Len(x)) => value = x,
            (1 | 2, _) => return Err(wrong_wire(tag)),
            _ => {}
        }
    }
    Ok((key, value))
}

/// `metav1.Time` / `MicroTime`: seconds (1) and nanos (2); `None` for Go's zero time, which Go
/// writes as an empty message (or, from older writers, as its seconds).
fn time(b: &[u8], micro: bool) -> Result<Option<String>, ApiError> {
    if b.is_empty() {
        return Ok(None);
    }
    let mut r = Reader { buf: b };
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((tag, v)) = r.field()? {
        match (tag, v) {
            // Varints carry two's complement 64-bit values; `as` reinterprets them.
            (1, Wire::Varint(x)) => secs = x as i64,
            (2, Wire::Varint(x)) => nanos = i64::from(x as i32),
            (1 | 2, _) => return Err(wrong_wire(tag)),
            _ => {}
        }
    }
    if secs == GO_ZERO_TIME && nanos == 0 {
        return Ok(None);
    }
    let t = k8s_openapi::jiff::Timestamp::from_second(secs).map_err(bad)?;
    let base = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Some(if micro {
        format!("{base}.{:06}Z", nanos.clamp(0, 999_999_999) / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// One value of `field`, or `None` when it is a zero value JSON would leave out.
fn value(field: &Field, wire: Wire<'_>) -> Result<Option<Value>, ApiError> {
    let keep = field.pointer || field.repeated;
    let v = match (field.ty, wire) {
        (Ty::Str, Wire::Len(b)) => {
            let s = utf8(b)?;
            (keep || !s.is_empty()).then(|| json!(s))
        }
        (Ty::Bool, Wire::Varint(x)) => (keep || x != 0).then(|| json!(x != 0)),
        (Ty::I32, Wire::Varint(x)) => (keep || x != 0).then(|| json!(x as i32)),
        (Ty::I64, Wire::Varint(x)) => (keep || x != 0).then(|| json!(x as i64)),
        (Ty::Time, Wire::Len(b)) => time(b, false)?.map(Value::String),
        (Ty::MicroTime, Wire::Len(b)) => time(b, true)?.map(Value::String),
        (Ty::FieldsV1, Wire::Len(b)) => {
            let mut r = Reader { buf: b };
            let mut raw: &[u8] = b"{}";
            while let Some((tag, v)) = r.field()? {
                match (tag, v) {
                    (1, Wire::Len(x)) => raw = x,
                    (1, _) => return Err(wrong_wire(tag)),
                    _ => {}
                }
            }
            Some(
                serde_json::from_slice(raw)
                    .map_err(|e| bad(format!("fieldsV1 is not JSON: {e}")))?,
            )
        }
        (Ty::Msg(m), Wire::Len(b)) => Some(Value::Object(message(m, b)?)),
        _ => return Err(wrong_wire(u64::from(field.tag))),
    };
    Ok(v)
}

/// A message as a JSON object.
fn message(msg: &Msg, buf: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf };
    while let Some((tag, wire)) = r.field()? {
        let Some(field) = msg.field(tag) else {
            continue; // unknown field: skipped, as upstream does
        };
        match field.ty {
            Ty::StrMap | Ty::BytesMap => {
                let Wire::Len(b) = wire else {
                    return Err(wrong_wire(tag));
                };
                let (k, v) = map_entry(b)?;
                let v = if matches!(field.ty, Ty::StrMap) {
                    json!(utf8(v)?)
                } else {
                    base64(v)
                };
                if let Some(m) = out
                    .entry(field.json)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    m.insert(k, v);
                }
            }
            _ if field.repeated => {
                if let Some(v) = value(field, wire)?
                    && let Some(list) = out
                        .entry(field.json)
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                {
                    list.push(v);
                }
            }
            _ => {
                if let Some(v) = value(field, wire)? {
                    out.insert(field.json.into(), v);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny encoder for the tests: `(tag, bytes)` length-delimited, `(tag, n)` varint.
    fn len(tag: u32, b: &[u8]) -> Vec<u8> {
        let mut out = varint(u64::from(tag) << 3 | 2);
        out.extend(varint(b.len() as u64));
        out.extend_from_slice(b);
        out
    }

    fn num(tag: u32, n: u64) -> Vec<u8> {
        let mut out = varint(u64::from(tag) << 3);
        out.extend(varint(n));
        out
    }

    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [len(1, api_version.as_bytes()), len(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), len(1, &type_meta), len(2, raw)].concat()
    }

    fn resource(group: &str, plural: &str) -> Resource {
        super::super::resources::builtins()
            .into_iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap_or_else(|| unreachable!("{plural} is a built-in"))
    }

    fn meta(name: &str) -> Vec<u8> {
        let zero_time = num(1, GO_ZERO_TIME as u64);
        [
            len(1, name.as_bytes()),
            len(2, b""),
            len(8, &zero_time),
            num(7, 0),
        ]
        .concat()
    }

    #[test]
    fn a_lease_decodes_with_micro_times_and_pointer_zeroes() {
        let t = [num(1, 1_700_000_000), num(2, 123_456_789)].concat();
        let spec = [len(1, b"me"), num(2, 15), len(4, &t), num(5, 0)].concat();
        let raw = [len(1, &meta("l")), len(2, &spec)].concat();
        let obj = decode_body(
            &resource("coordination.k8s.io", "leases"),
            &body("coordination.k8s.io/v1", "Lease", &raw),
        )
        .unwrap_or_default();
        assert_eq!(
            obj,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                   "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                            "renewTime": "2023-11-14T22:13:20.123456Z", "leaseTransitions": 0}})
        );
    }

    #[test]
    fn an_events_event_decodes_references_series_and_negative_numbers() {
        let regarding = [len(1, b"Pod"), len(3, b"p"), len(2, b"ns")].concat();
        let series = [num(1, 3)].concat();
        let raw = [
            len(1, &meta("e")),
            len(4, b"ctrl"),
            len(8, &regarding),
            len(3, &series),
            len(10, b"hello"),
            num(15, u64::MAX), // -1, sign-extended
            num(99, 7),        // unknown: skipped
        ]
        .concat();
        let obj = decode_body(
            &resource("events.k8s.io", "events"),
            &body("events.k8s.io/v1", "Event", &raw),
        )
        .unwrap_or_default();
        assert_eq!(
            obj["regarding"],
            json!({"kind": "Pod", "name": "p", "namespace": "ns"})
        );
        assert_eq!(obj["series"], json!({"count": 3}));
        assert_eq!(obj["note"], "hello");
        assert_eq!(obj["deprecatedCount"], -1);
        assert_eq!(obj["reportingController"], "ctrl");
    }

    #[test]
    fn secrets_carry_bytes_as_base64_and_maps_merge_entries() {
        let entry = |k: &[u8], v: &[u8]| len(2, &[len(1, k), len(2, v)].concat());
        let raw = [
            len(1, &meta("s")),
            entry(b"a", b"\x00\xff"),
            entry(b"b", b"hi"),
            len(3, b"Opaque"),
        ]
        .concat();
        let obj =
            decode_body(&resource("", "secrets"), &body("v1", "Secret", &raw)).unwrap_or_default();
        assert_eq!(obj["data"], json!({"a": "AP8=", "b": "aGk="}));
        assert_eq!(obj["type"], "Opaque");
    }

    proptest::proptest! {
        #[test]
        fn random_messages_decode_or_get_400(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for (group, plural, api_version, kind) in [
                ("", "configmaps", "v1", "ConfigMap"),
                ("", "events", "v1", "Event"),
                ("rbac.authorization.k8s.io", "clusterroles", "rbac.authorization.k8s.io/v1", "ClusterRole"),
            ] {
                if let Err(e) = decode_body(&resource(group, plural), &body(api_version, kind, &raw)) {
                    proptest::prop_assert_eq!(e.code, 400);
                }
            }
        }
    }

    #[test]
    fn malformed_bodies_are_400_and_other_kinds_415() {
        let cms = resource("", "configmaps");
        let good = body("v1", "ConfigMap", &len(1, &meta("c")));
        assert!(decode_body(&cms, &good).is_ok());
        for cut in 0..good.len() {
            if let Err(e) = decode_body(&cms, &good[..cut]) {
                assert_eq!(e.code, 400, "{cut}: {}", e.message);
            }
        }
        let code = |b: &[u8]| decode_body(&cms, b).err().map(|e| e.code);
        assert_eq!(code(b"{\"kind\":\"ConfigMap\"}"), Some(400), "no magic");
        assert_eq!(
            code(&[MAGIC, &[0x0a, 0xff]].concat()),
            Some(400),
            "length past the end"
        );
        assert_eq!(
            code(&[MAGIC, &[0xff; 11]].concat()),
            Some(400),
            "varint overflow"
        );
        assert_eq!(
            code(&[MAGIC, &[0x0b]].concat()),
            Some(400),
            "group wire type"
        );
        assert_eq!(code(&body("v1", "Pod", b"")), Some(400), "unknown kind");
        assert_eq!(
            code(&body("v1", "ConfigMap", &num(1, 5))),
            Some(400),
            "metadata as a varint"
        );
        assert_eq!(
            code(&body("v1", "ConfigMap", &len(1, &len(1, b"\xff")))),
            Some(400),
            "bad UTF-8"
        );
        let crds = resource("apiextensions.k8s.io", "customresourcedefinitions");
        assert_eq!(decode_body(&crds, &good).err().map(|e| e.code), Some(415));
        let mut cr = cms.clone();
        cr.builtin = false;
        assert_eq!(decode_body(&cr, &good).err().map(|e| e.code), Some(415));
    }
}
