//! Which media type a resource request is answered in, as kube-apiserver negotiates `Accept`
//! (apiserver `endpoints/handlers/negotiation`, with `munnerz/goautoneg`'s parsing):
//!
//! - Clauses are sorted by `q` (highest first; a `q` that does not parse is 0, and 0 still
//!   matches), then concrete types before wildcards, otherwise in header order. The first clause
//!   that matches a served type (`application/json`, `application/yaml`,
//!   `application/vnd.kubernetes.protobuf`, in that order for `*/*` and `application/*`) and
//!   whose parameters the endpoint allows wins. No `Accept` at all is JSON.
//! - Built-in kinds are served in protobuf; custom resources are not (their clause is skipped,
//!   so `application/vnd.kubernetes.protobuf,application/json` gets JSON, and protobuf alone a
//!   406 `NotAcceptable`, before anything is done).
//! - `as=Table` and `as=PartialObjectMetadata[List]` (`g=meta.k8s.io;v=v1|v1beta1`) are allowed
//!   for JSON and YAML only (upstream also encodes the latter two in protobuf; this server
//!   skips such clauses); other conversions are skipped. The chosen clause's
//!   `PartialObjectMetadata` conversion is done here ([`crate::server::partial`]), tables by the
//!   handlers. A watch needs a type with a stream encoding (not YAML).
//! - Errors are negotiated again without the endpoint's restrictions (any conversion skipped,
//!   protobuf allowed even for custom resources), and fall back to JSON.
//!
//! YAML, when chosen, is the handlers' JSON turned into YAML with sorted keys, as
//! apimachinery's YAML serializer writes it.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use serde_json::Value;

use super::super::App;
use super::super::errors::ApiError;
use super::encode;
use crate::server::partial::Partial;

/// The protobuf media type.
pub(crate) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// A type the server serves, in upstream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    Yaml,
    Protobuf,
}

impl Media {
    const ALL: [Media; 3] = [Media::Json, Media::Yaml, Media::Protobuf];

    fn subtype(self) -> &'static str {
        match self {
            Media::Json => "json",
            Media::Yaml => "yaml",
            Media::Protobuf => "vnd.kubernetes.protobuf",
        }
    }

    /// Has a stream (watch) encoding.
    fn streams(self) -> bool {
        self != Media::Yaml
    }
}

/// One clause of an `Accept` header.
#[derive(Debug)]
struct Clause<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f64,
    /// Parameters but `q`; a repeated one keeps its last value (a Go map).
    params: HashMap<&'a str, &'a str>,
}

/// goautoneg's `ParseAccept`: the clauses, best first.
fn parse(header: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.trim().split(';');
        let range = pieces.next().unwrap_or_default();
        let sp: Vec<&str> = range.split('/').collect();
        let ty = sp.first().copied().unwrap_or_default().trim();
        let sub = match sp.as_slice() {
            [_] if ty == "*" => "*",
            [_, sub] => sub.trim(),
            _ => continue,
        };
        let mut clause = Clause {
            ty,
            sub,
            q: 1.0,
            params: HashMap::new(),
        };
        for param in pieces {
            let Some((token, value)) = param.split_once('=') else {
                continue;
            };
            let token = token.trim();
            if token == "q" {
                // Go's ParseFloat(s, 32): an unparsable q is 0.
                clause.q = value.parse::<f32>().map_or(0.0, f64::from);
            } else {
                clause.params.insert(token, value.trim());
            }
        }
        clauses.push(clause);
    }
    // Go's sort.Sort is an insertion sort below 13 elements (stable, with this odd "less").
    let less = |a: &Clause<'_>, b: &Clause<'_>| {
        a.q > b.q || (a.ty != "*" && b.ty == "*") || (a.sub != "*" && b.sub == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

/// What an endpoint allows beyond the media type itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// A resource's handler; `protobuf` for built-in kinds.
    Resource { protobuf: bool },
    /// Errors: `DefaultEndpointRestrictions`.
    Errors,
}

impl Endpoint {
    /// `AllowsMediaTypeTransform`: `convert` is the `(as, g, v)` asked for, if any.
    fn allows(self, media: Media, convert: Option<(&str, &str, &str)>) -> bool {
        match (self, convert) {
            (Endpoint::Errors, c) => c.is_none(),
            (Endpoint::Resource { protobuf }, None) => media != Media::Protobuf || protobuf,
            (Endpoint::Resource { .. }, Some((kind, group, version))) => {
                group == "meta.k8s.io"
                    && matches!(version, "v1" | "v1beta1")
                    && matches!(
                        kind,
                        "Table" | "PartialObjectMetadata" | "PartialObjectMetadataList"
                    )
                    && media != Media::Protobuf
            }
        }
    }

    /// `AllowsServerVersion`: a resource's meta group version is `v1`.
    fn allows_server_version(self, version: &str) -> bool {
        self != Endpoint::Errors && version == "v1"
    }
}

/// `NegotiateMediaTypeOptions`: the first clause and served type that go together.
fn negotiate(clauses: &[Clause<'_>], endpoint: Endpoint, header_empty: bool) -> Option<Media> {
    negotiate_clause(clauses, endpoint, header_empty).map(|(media, _)| media)
}

/// [`negotiate`], with the `PartialObjectMetadata` conversion the chosen clause asks for.
fn negotiate_clause(
    clauses: &[Clause<'_>],
    endpoint: Endpoint,
    header_empty: bool,
) -> Option<(Media, Option<Partial>)> {
    if header_empty {
        return Some((Media::Json, None));
    }
    for clause in clauses {
        for media in Media::ALL {
            let matches = (clause.ty == "application"
                && (clause.sub == media.subtype() || clause.sub == "*"))
                || (clause.ty == "*" && clause.sub == "*");
            if matches && accepts(clause, media, endpoint) {
                let p = |k: &str| clause.params.get(k).copied().unwrap_or_default();
                let partial = (p("g") == "meta.k8s.io")
                    .then(|| Partial::of(p("as"), p("v")))
                    .flatten();
                return Some((media, partial));
            }
        }
    }
    None
}

/// `acceptMediaTypeOptions`: whether the clause's parameters are allowed for `media`.
fn accepts(clause: &Clause<'_>, media: Media, endpoint: Endpoint) -> bool {
    let p = |k: &str| clause.params.get(k).copied();
    if p("stream").is_some_and(|s| !s.is_empty() && (!media.streams() || s != "watch")) {
        return false;
    }
    if p("sv").is_some_and(|v| !v.is_empty() && !endpoint.allows_server_version(v)) {
        return false;
    }
    let convert = (p("as").is_some() || p("g").is_some() || p("v").is_some()).then(|| {
        (
            p("as").unwrap_or_default(),
            p("g").unwrap_or_default(),
            p("v").unwrap_or_default(),
        )
    });
    endpoint.allows(media, convert)
}

/// `(group, plural, named)` of a resource URL (`/api/v1/...`, `/apis/g/v/...`), as
/// `handlers::parse_target` splits it; `None` for discovery and other paths.
fn resource_of(path: &str) -> Option<(&str, &str, bool)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _, rest @ ..] => ("", rest),
        ["apis", g, _, rest @ ..] => (*g, rest),
        _ => return None,
    };
    match rest {
        ["namespaces", _, r, more @ ..] if !matches!(*r, "status" | "finalize") => {
            Some((group, r, !more.is_empty()))
        }
        [p, more @ ..] => Some((group, p, !more.is_empty())),
        [] => None,
    }
}

/// What a request is answered in, decided before it is handled.
#[derive(Debug)]
pub(crate) struct Negotiation {
    /// What objects (any success answer) are answered in.
    objects: Media,
    /// What errors are answered in.
    errors: Media,
    /// A watch: objects go as a stream of frames.
    watch: bool,
    /// Objects as `PartialObjectMetadata`, when asked for.
    partial: Option<Partial>,
    /// The 406 when no served type is acceptable.
    refusal: Option<ApiError>,
}

impl Negotiation {
    /// JSON, as the handlers write it.
    const JSON: Negotiation = Negotiation {
        objects: Media::Json,
        errors: Media::Json,
        watch: false,
        partial: None,
        refusal: None,
    };

    /// The negotiation of one request. Cheap for JSON clients (no lookup); a resource is looked
    /// up only when protobuf would be chosen for a built-in kind, or nothing at all.
    pub(crate) fn of(
        app: &App,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Negotiation {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.is_empty() || accept == "application/json" {
            return Negotiation::JSON;
        }
        let Some((group, plural, named)) = resource_of(path) else {
            return Negotiation::JSON;
        };
        // (An empty header, JSON, returned above.)
        let empty = false;
        let clauses = parse(accept);
        let watch = *method == Method::GET
            && !named
            && matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
        // Nothing acceptable for an error: JSON.
        let errors = negotiate(&clauses, Endpoint::Errors, empty).unwrap_or(Media::Json);
        let mut chosen = negotiate_clause(&clauses, Endpoint::Resource { protobuf: true }, empty);
        if matches!(chosen, None | Some((Media::Protobuf, _))) {
            let builtin = app
                .store
                .lock()
                .registry
                .get(group, plural)
                .map(|r| r.builtin);
            chosen = match builtin {
                Some(true) => chosen,
                Some(false) => {
                    negotiate_clause(&clauses, Endpoint::Resource { protobuf: false }, empty)
                }
                // No such resource: the handler's 404 is an error, negotiated as one.
                None => Some((Media::Json, None)),
            };
        }
        let (objects, mut partial) = (chosen.map(|(m, _)| m), chosen.and_then(|(_, p)| p));
        if let Some(p) = &mut partial {
            p.custom = app
                .store
                .lock()
                .registry
                .get(group, plural)
                .is_some_and(|r| !r.builtin);
        }
        let refusal = match objects {
            None => Some(not_acceptable(
                "application/json, application/yaml, application/vnd.kubernetes.protobuf",
            )),
            Some(m) if watch && !m.streams() => Some(not_acceptable(
                "application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch",
            )),
            _ => None,
        };
        Negotiation {
            // Nothing acceptable: refused (and the refusal is an error).
            objects: objects.unwrap_or(Media::Json),
            errors,
            watch,
            partial,
            refusal,
        }
    }

    /// The 406 to answer instead of handling the request, if no served type is acceptable.
    pub(crate) fn refusal(&self) -> Option<ApiError> {
        self.refusal.clone()
    }

    /// `resp`, as the handlers wrote it (JSON), in the negotiated encoding. Bodies with no
    /// protobuf encoding here (tables, scales, custom resources) stay JSON.
    pub(crate) async fn answer(&self, resp: Response) -> Response {
        let ok = resp.status().is_success();
        let resp = match self.partial {
            Some(p) if ok => p.answer(resp, self.watch).await,
            _ => resp,
        };
        // A conversion refused after the fact (406) is an error.
        let ok = resp.status().is_success();
        match if ok { self.objects } else { self.errors } {
            Media::Json => return resp,
            // A watch in YAML was refused: YAML has no stream encoding.
            Media::Yaml if ok && self.watch => return resp,
            Media::Yaml => return yaml_answer(resp).await,
            Media::Protobuf => {}
        }
        if ok && self.watch {
            let (mut parts, body) = resp.into_parts();
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(PROTOBUF_WATCH),
            );
            return Response::from_parts(parts, Body::new(WatchFrames::new(body)));
        }
        reencoded(resp, PROTOBUF, |v| {
            encode::object(v).map_err(|e| format!("no protobuf encoding: {e}"))
        })
        .await
    }
}

/// A JSON answer in YAML, as apimachinery's YAML serializer writes it (`sigs.k8s.io/yaml`'s
/// `JSONToYAML`: the JSON's maps with their keys sorted as go-yaml sorts them).
async fn yaml_answer(resp: Response) -> Response {
    reencoded(resp, "application/yaml", |v| {
        serde_saphyr::to_string(&go_yaml_order(v.clone()))
            .map(String::into_bytes)
            .map_err(|e| e.to_string())
    })
    .await
}

/// A JSON answer in another encoding (`content_type`, by `encode`), or as it was, JSON, when
/// it is not a JSON document or has no such encoding.
async fn reencoded(
    resp: Response,
    content_type: &'static str,
    encode: impl FnOnce(&Value) -> Result<Vec<u8>, String>,
) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("reading the answer: {e}")).into_response(),
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|v| encode(&v));
    match encoded {
        Ok(out) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(out))
        }
        Err(e) => {
            tracing::debug!(error = %e, "answered JSON");
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

/// `v` with every map's keys in go-yaml's order (its `keyList.Less`).
fn go_yaml_order(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| go_yaml_key_order(a, b));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, go_yaml_order(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(go_yaml_order).collect()),
        other => other,
    }
}

/// go-yaml's order of string map keys: letters by code point, a non-letter before a letter,
/// and runs of digits by their numeric value ("a9" before "a10").
fn go_yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            // A zero after other digits is part of the number, not a leading zero.
            if ar[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .any(|c| *c != '0')
            {
                (an, bn) = (1, 1);
            }
        }
        let digits = |r: &[char], n: &mut i64| {
            let mut end = i;
            while end < r.len() && r[end].is_ascii_digit() {
                *n = n
                    .saturating_mul(10)
                    .saturating_add(i64::from(r[end] as u8 - b'0'));
                end += 1;
            }
            end
        };
        let (ae, be) = (digits(&ar, &mut an), digits(&br, &mut bn));
        if an != bn {
            return an.cmp(&bn);
        }
        if ae != be {
            return ae.cmp(&be);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn not_acceptable(types: &str) -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: format!("only the following media types are accepted: {types}"),
        details: None,
    }
}

/// A watch body of JSON lines (`{"type":…,"object":…}\n`) as protobuf frames. An event with no
/// protobuf encoding ends the stream with an `ERROR` event (an `InternalError` Status), as a
/// failed encode ends upstream's.
#[derive(Debug)]
struct WatchFrames {
    inner: Body,
    line: Vec<u8>,
    out: VecDeque<Bytes>,
    done: bool,
}

impl WatchFrames {
    fn new(inner: Body) -> Self {
        Self {
            inner,
            line: Vec::new(),
            out: VecDeque::new(),
            done: false,
        }
    }

    /// Frames for every complete line buffered (and the rest, at the end).
    fn drain(&mut self, at_end: bool) {
        while !self.done {
            let end = match self.line.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if at_end && !self.line.iter().all(u8::is_ascii_whitespace) => self.line.len(),
                None => return,
            };
            let line: Vec<u8> = self.line.drain(..end).collect();
            match frame_of(&line) {
                Ok(f) => self.out.push_back(Bytes::from(f)),
                Err(e) => {
                    tracing::warn!(error = %e, "watch event with no protobuf encoding: stream ended");
                    let status = ApiError::internal(format!("unable to encode watch event: {e}"));
                    if let Ok(f) = encode::watch_frame("ERROR", &status.status()) {
                        self.out.push_back(Bytes::from(f));
                    }
                    self.done = true;
                }
            }
        }
    }
}

fn frame_of(line: &[u8]) -> Result<Vec<u8>, encode::EncodeError> {
    let event: Value =
        serde_json::from_slice(line).map_err(|e| encode::EncodeError::NotJson(e.to_string()))?;
    let event_type = event["type"]
        .as_str()
        .ok_or_else(|| encode::EncodeError::NotJson("a watch event without a type".into()))?;
    encode::watch_frame(event_type, &event["object"])
}

impl HttpBody for WatchFrames {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(b) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.line.extend_from_slice(&data);
                        this.drain(false);
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.drain(true);
                    this.done = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::{Reader, Wire, decode_object};
    use super::*;

    fn pick(accept: &str, endpoint: Endpoint) -> Option<Media> {
        negotiate(&parse(accept), endpoint, accept.is_empty())
    }

    const BUILTIN: Endpoint = Endpoint::Resource { protobuf: true };
    const CR: Endpoint = Endpoint::Resource { protobuf: false };

    #[test]
    fn accept_headers_pick_what_kube_apiserver_picks() {
        use Media::{Json, Protobuf, Yaml};
        for (accept, builtin, cr) in [
            ("", Some(Json), Some(Json)),
            ("*/*", Some(Json), Some(Json)),
            ("application/*", Some(Json), Some(Json)),
            // client-go typed clients and kubectl's create commands.
            (
                "application/vnd.kubernetes.protobuf,application/json",
                Some(Protobuf),
                Some(Json),
            ),
            (
                "application/vnd.kubernetes.protobuf, */*",
                Some(Protobuf),
                Some(Json),
            ),
            ("application/vnd.kubernetes.protobuf", Some(Protobuf), None),
            (
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                Some(Protobuf),
                Some(Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;q=0.1, application/json;q=0.9",
                Some(Json),
                Some(Json),
            ),
            // goautoneg's odd sort: a concrete type goes before a wildcard whatever their q.
            (
                "*/*;q=1, application/vnd.kubernetes.protobuf;q=0.9",
                Some(Protobuf),
                Some(Json),
            ),
            // A wildcard sorts after a concrete type of the same q.
            (
                "*/*, application/vnd.kubernetes.protobuf",
                Some(Protobuf),
                Some(Json),
            ),
            // q=0 still matches (goautoneg only sorts by it); a bad q is 0.
            (
                "application/vnd.kubernetes.protobuf;q=0",
                Some(Protobuf),
                None,
            ),
            (
                "application/vnd.kubernetes.protobuf;q=x, application/json",
                Some(Json),
                Some(Json),
            ),
            ("application/yaml, application/json", Some(Yaml), Some(Yaml)),
            ("text/html", None, None),
            (
                "text/html, application/xhtml+xml, */*;q=0.8",
                Some(Json),
                Some(Json),
            ),
            // kubectl get: Table in JSON; in protobuf it is skipped.
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Some(Json),
                Some(Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
                None,
                None,
            ),
            ("application/json;as=Table", None, None),
            ("application/json;as=Deployment;g=apps;v=v1", None, None),
            // client-go's metadata client: no PartialObjectMetadata in protobuf here.
            (
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
                Some(Json),
                Some(Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;stream=watch",
                Some(Protobuf),
                None,
            ),
            (
                "application/yaml;stream=watch, application/json",
                Some(Json),
                Some(Json),
            ),
            ("application/json;stream=other", None, None),
        ] {
            assert_eq!(pick(accept, BUILTIN), builtin, "built-in: {accept}");
            assert_eq!(pick(accept, CR), cr, "custom resource: {accept}");
        }
        // Errors: any type but conversions, protobuf included.
        assert_eq!(
            pick("application/vnd.kubernetes.protobuf", Endpoint::Errors),
            Some(Protobuf)
        );
        assert_eq!(
            pick(
                "application/json;as=Table;v=v1;g=meta.k8s.io",
                Endpoint::Errors
            ),
            None
        );
    }

    /// One HTTP/1.1 exchange on a fresh connection: status, headers (lowercase), body (chunked
    /// bodies joined).
    async fn exchange(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        accept: &str,
        body: &str,
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        if !accept.is_empty() {
            req += &format!("Accept: {accept}\r\n");
        }
        if !body.is_empty() {
            req += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        req += "\r\n";
        req += body;
        s.write_all(req.as_bytes())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut rest = raw.get(split + 4..).unwrap_or_default().to_vec();
        let mut lines = head.lines();
        let code = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        if headers
            .get("transfer-encoding")
            .is_some_and(|t| t == "chunked")
        {
            let mut body = Vec::new();
            let mut at = 0;
            while let Some(nl) = rest[at..].windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(&String::from_utf8_lossy(&rest[at..at + nl]), 16)
                    .unwrap_or(0);
                if size == 0 {
                    break;
                }
                let start = at + nl + 2;
                body.extend_from_slice(&rest[start..start + size]);
                at = start + size + 2;
            }
            rest = body;
        }
        (code, headers, rest)
    }

    /// A server on a free loopback port: its address, and the task to abort.
    async fn serving() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let server = super::super::super::Server::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| unreachable!("{e}"));
        (addr, server.serve(listener))
    }

    /// The frames of a protobuf watch body, as `(type, object)`.
    fn frames(mut body: &[u8]) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while body.len() >= 4 {
            let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
            let event = &body[4..4 + len];
            body = &body[4 + len..];
            let (mut kind, mut object) = (String::new(), Value::Null);
            let mut r = Reader { buf: event };
            while let Ok(Some((tag, Wire::Len(b)))) = r.field() {
                match tag {
                    1 => kind = String::from_utf8_lossy(b).to_string(),
                    2 => {
                        let mut ext = Reader { buf: b };
                        if let Ok(Some((1, Wire::Len(raw)))) = ext.field() {
                            object = decode_object(raw).unwrap_or_default();
                        }
                    }
                    _ => {}
                }
            }
            out.push((kind, object));
        }
        assert!(body.is_empty(), "a partial frame: {body:?}");
        out
    }

    const PB: &str = "application/vnd.kubernetes.protobuf";

    #[tokio::test]
    async fn over_http_built_ins_answer_protobuf_custom_resources_json_or_406() {
        let (addr, handle) = serving().await;
        let cms = "/api/v1/namespaces/default/configmaps";

        // A create answered in protobuf, decoding to what a JSON get returns.
        let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"y"}},"data":{"k":"v"}}"#;
        let (code, h, body) = exchange(
            addr,
            "POST",
            cms,
            "application/vnd.kubernetes.protobuf, */*",
            cm,
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (201, PB),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let created = decode_object(&body).unwrap_or_default();
        let (code, h, json_body) = exchange(addr, "GET", &format!("{cms}/a"), "", "").await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/json")
        );
        let got: Value = serde_json::from_slice(&json_body).unwrap_or_default();
        assert_eq!(created, got);
        assert_eq!(created["data"], json!({"k": "v"}));
        let (_, h, body) = exchange(
            addr,
            "GET",
            &format!("{cms}/a"),
            "application/vnd.kubernetes.protobuf,application/json",
            "",
        )
        .await;
        assert_eq!(h["content-type"], PB);
        assert_eq!(decode_object(&body).unwrap_or_default(), got);

        // A list.
        let (code, h, body) = exchange(addr, "GET", cms, PB, "").await;
        assert_eq!((code, h["content-type"].as_str()), (200, PB));
        let list = decode_object(&body).unwrap_or_default();
        assert_eq!(list["kind"], "ConfigMapList");
        assert_eq!(list["items"][0]["metadata"]["name"], "a");
        assert!(list["items"][0].get("kind").is_none());

        // Errors: a protobuf Status for a protobuf client, JSON for the others.
        let (code, h, body) = exchange(
            addr,
            "GET",
            &format!("{cms}/nope"),
            "application/vnd.kubernetes.protobuf,application/json",
            "",
        )
        .await;
        assert_eq!((code, h["content-type"].as_str()), (404, PB));
        let status = decode_object(&body).unwrap_or_default();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["message"], "configmaps \"nope\" not found");
        assert_eq!(
            status["details"],
            json!({"name": "nope", "kind": "configmaps"})
        );
        assert_eq!(status["code"], 404);
        let (code, h, _) =
            exchange(addr, "GET", &format!("{cms}/nope"), "application/json", "").await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (404, "application/json")
        );

        // Nothing acceptable: 406 before the create happens, JSON (nothing else is acceptable).
        let (code, h, body) = exchange(
            addr,
            "POST",
            cms,
            "text/html",
            &cm.replace("\"a\"", "\"b\""),
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (406, "application/json")
        );
        let status: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(status["reason"], "NotAcceptable");
        assert_eq!(
            status["message"],
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        let (code, _, _) = exchange(addr, "GET", &format!("{cms}/b"), "", "").await;
        assert_eq!(code, 404);

        // Custom resources: JSON when JSON is acceptable too, else a 406 (in protobuf).
        let crd = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"},
            "spec":{"group":"example.com","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},"scope":"Namespaced",
            "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}"#;
        let (code, _, body) = exchange(
            addr,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "",
            crd,
        )
        .await;
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
        let widgets = "/apis/example.com/v1/namespaces/default/widgets";
        let w = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}"#;
        let mut code = 0;
        for _ in 0..50 {
            (code, _, _) = exchange(
                addr,
                "POST",
                widgets,
                "application/vnd.kubernetes.protobuf,application/json",
                w,
            )
            .await;
            if code == 201 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(code, 201);
        let (code, h, body) = exchange(
            addr,
            "GET",
            &format!("{widgets}/w"),
            "application/vnd.kubernetes.protobuf,application/json",
            "",
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/json")
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap_or_default()["kind"],
            "Widget"
        );
        for (method, path) in [
            ("GET", format!("{widgets}/w")),
            ("GET", widgets.to_owned()),
            ("DELETE", format!("{widgets}/w")),
        ] {
            let (code, h, body) = exchange(addr, method, &path, PB, "").await;
            assert_eq!(
                (code, h["content-type"].as_str()),
                (406, PB),
                "{method} {path}"
            );
            let status = decode_object(&body).unwrap_or_default();
            assert_eq!(status["reason"], "NotAcceptable");
            assert_eq!(
                status["message"],
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            );
        }
        // A custom resource's errors are protobuf for a client that prefers it.
        let (code, h, _) = exchange(
            addr,
            "GET",
            &format!("{widgets}/none"),
            "application/vnd.kubernetes.protobuf,application/json",
            "",
        )
        .await;
        assert_eq!((code, h["content-type"].as_str()), (404, PB));

        // Watch: length-prefixed WatchEvents, each object a full protobuf body.
        let (code, h, body) = exchange(
            addr,
            "GET",
            &format!("{cms}?watch=true&timeoutSeconds=1"),
            PB,
            "",
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/vnd.kubernetes.protobuf;stream=watch")
        );
        let events = frames(&body);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, "ADDED");
        assert_eq!(events[0].1, got);
        let (code, _, body) = exchange(
            addr,
            "GET",
            &format!("{cms}?watch=true&timeoutSeconds=1&resourceVersion=1"),
            PB,
            "",
        )
        .await;
        assert_eq!(code, 200);
        // Resumed from before the history: an ERROR event carrying an Expired Status.
        let events = frames(&body);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, "ERROR");
        assert_eq!(
            (&events[0].1["reason"], &events[0].1["code"]),
            (&json!("Expired"), &json!(410))
        );
        // YAML has no stream encoding; the refusal is an error, in YAML.
        let (code, h, body) = exchange(
            addr,
            "GET",
            &format!("{cms}?watch=true"),
            "application/yaml",
            "",
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (406, "application/yaml")
        );
        let status: Value = serde_saphyr::from_slice(&body).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            status["message"],
            "only the following media types are accepted: application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
        );
        // Custom resources watch in JSON.
        let (code, h, _) = exchange(
            addr,
            "GET",
            &format!("{widgets}?watch=true&timeoutSeconds=1"),
            "application/vnd.kubernetes.protobuf,application/json",
            "",
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/json")
        );
        handle.abort();
    }

    #[tokio::test]
    async fn yaml_answers_are_the_json_with_keys_sorted_as_go_yaml_sorts_them() {
        let (addr, handle) = serving().await;
        let cms = "/api/v1/namespaces/default/configmaps";
        let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"z":"1","b":"true","a10":"x","a9":"y"}}"#;
        let (code, h, body) = exchange(addr, "POST", cms, "application/yaml", cm).await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (201, "application/yaml")
        );
        let text = String::from_utf8(body).unwrap_or_else(|e| unreachable!("{e}"));
        let created: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| unreachable!("{e}"));
        let (_, _, json) = exchange(addr, "GET", &format!("{cms}/a"), "application/json", "").await;
        let json: Value = serde_json::from_slice(&json).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(created, json, "{text}");
        // Strings that read as other types stay strings; keys in go-yaml's order.
        assert_eq!(created["data"]["b"], "true");
        let top: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(top, ["apiVersion", "data", "kind", "metadata"], "{text}");
        let data = text.find("data:").unwrap_or_default();
        let order: Vec<usize> = ["a9:", "a10:", "b:", "z:"]
            .iter()
            .map(|k| text[data..].find(k).unwrap_or(usize::MAX))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        // Lists, tables and errors too.
        let (code, h, body) = exchange(addr, "GET", cms, "application/yaml", "").await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/yaml")
        );
        let list: Value = serde_saphyr::from_slice(&body).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(list["kind"], "ConfigMapList");
        let table = "application/yaml;as=Table;v=v1;g=meta.k8s.io";
        let (code, h, body) = exchange(addr, "GET", cms, table, "").await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (200, "application/yaml")
        );
        let t: Value = serde_saphyr::from_slice(&body).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(t["kind"], "Table");
        let (code, h, body) = exchange(
            addr,
            "GET",
            &format!("{cms}/missing"),
            "application/yaml",
            "",
        )
        .await;
        assert_eq!(
            (code, h["content-type"].as_str()),
            (404, "application/yaml")
        );
        let status: Value = serde_saphyr::from_slice(&body).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "configmaps \"missing\" not found");
        handle.abort();
    }

    #[test]
    fn map_keys_sort_as_go_yaml_sorts_them() {
        let mut keys = vec![
            "b", "a10", "a9", "A", "a", "a.b", "ab", "x01", "x1", "10", "9",
        ];
        keys.sort_by(|a, b| go_yaml_key_order(a, b));
        assert_eq!(
            keys,
            [
                "9", "10", "A", "a", "a.b", "a9", "a10", "ab", "b", "x1", "x01"
            ]
        );
    }
}
