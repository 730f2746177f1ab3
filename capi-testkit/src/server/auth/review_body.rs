//! Decoding a review request's body: JSON, YAML, or Kubernetes protobuf (what kubectl sends
//! for built-in kinds), read just far enough for the review fields.

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use crate::server::errors::ApiError;

/// The review object in the body, in its JSON form.
pub(crate) fn decode(headers: &HeaderMap, body: &[u8], kind: &str) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let obj: Value = if ct.contains("protobuf") {
        protobuf(body, kind).map_err(|e| {
            ApiError::bad_request(format!("unable to decode the {kind} protobuf body: {e}"))
        })?
    } else if ct.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
        serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!("the body is not a {kind}")));
    }
    Ok(obj)
}

/// One field of a protobuf message: its number and, for length-delimited ones, the bytes.
type Field<'a> = (u64, Option<&'a [u8]>);

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long")
}

/// The fields of one message (varints and fixed-size values are skipped: reviews have none
/// the server reads).
fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, &'static str> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
                out.push((number, None));
            }
            1 | 5 => {
                pos += if wire == 1 { 8 } else { 4 };
                if pos > buf.len() {
                    return Err("truncated fixed-size field");
                }
                out.push((number, None));
            }
            2 => {
                let len =
                    usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length too large")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                out.push((number, Some(&buf[pos..end])));
                pos = end;
            }
            _ => return Err("unsupported wire type"),
        }
    }
    Ok(out)
}

fn field<'a>(fs: &[Field<'a>], number: u64) -> Option<&'a [u8]> {
    fs.iter()
        .rev()
        .find(|(n, _)| *n == number)
        .and_then(|(_, b)| *b)
}

/// The string fields of a message by number, as a JSON object with these names.
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Result<Value, &'static str> {
    let fs = fields(buf)?;
    let mut m = Map::new();
    for (n, name) in names {
        if let Some(b) = field(&fs, *n) {
            let s = std::str::from_utf8(b).map_err(|_| "a string is not UTF-8")?;
            m.insert((*name).to_owned(), json!(s));
        }
    }
    Ok(Value::Object(m))
}

/// `k8s\0` + `runtime.Unknown{typeMeta, raw}`; `raw` is the review message.
fn protobuf(body: &[u8], kind: &str) -> Result<Value, &'static str> {
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing the k8s protobuf magic")?;
    let unknown = fields(envelope)?;
    let raw = field(&unknown, 2).unwrap_or_default();
    let review = fields(raw)?;
    let mut obj = json!({"kind": kind});
    if let Some(meta) = field(&review, 1) {
        obj["metadata"] = strings(meta, &[(1, "name")])?;
    }
    let Some(spec) = field(&review, 2) else {
        return Ok(obj);
    };
    obj["spec"] = match kind {
        "SelfSubjectAccessReview" => {
            let fs = fields(spec)?;
            let mut s = json!({});
            if let Some(r) = field(&fs, 1) {
                s["resourceAttributes"] = strings(
                    r,
                    &[
                        (1, "namespace"),
                        (2, "verb"),
                        (3, "group"),
                        (4, "version"),
                        (5, "resource"),
                        (6, "subresource"),
                        (7, "name"),
                    ],
                )?;
            }
            if let Some(n) = field(&fs, 2) {
                s["nonResourceAttributes"] = strings(n, &[(1, "path"), (2, "verb")])?;
            }
            s
        }
        "SelfSubjectRulesReview" => strings(spec, &[(1, "namespace")])?,
        // SelfSubjectReview has no spec (field 2 is its status).
        _ => return Ok(obj),
    };
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, b) in fields {
            out.push((n << 3) | 2);
            out.push(u8::try_from(b.len()).unwrap_or(0));
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn a_protobuf_access_review_decodes_to_its_json_form() {
        let attrs = msg(&[(1, b"default"), (2, b"list"), (5, b"configmaps")]);
        let spec = msg(&[(1, &attrs)]);
        let review = msg(&[(1, &msg(&[])), (2, &spec)]);
        let type_meta = msg(&[
            (1, b"authorization.k8s.io/v1"),
            (2, b"SelfSubjectAccessReview"),
        ]);
        let mut body = b"k8s\0".to_vec();
        body.extend(msg(&[(1, &type_meta), (2, &review)]));
        let v = protobuf(&body, "SelfSubjectAccessReview");
        assert_eq!(
            v.ok().map(|v| v["spec"].clone()),
            Some(
                json!({"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "configmaps"}})
            )
        );
        assert!(protobuf(b"k8s\0\x12\x05ab", "SelfSubjectAccessReview").is_err());
        assert!(protobuf(b"{}", "SelfSubjectAccessReview").is_err());
    }
}
