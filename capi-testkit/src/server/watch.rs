//! Watches: newline-delimited JSON events, resume from a resourceVersion, 410 when too old,
//! bookmarks, streaming initial lists, selector transitions and timeouts
//! (apiserver-semantics.md 1.6).

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use serde_json::{Value, json};

use super::App;
use super::errors::ApiError;
use super::handlers::{Target, output};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Delivery, EventType, RecvError, StoredObject, Subscription, WatchEvent};
use super::watch_map::MappedEvents;

/// How often a watch with bookmarks allowed gets one when nothing else happens.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

struct Filter {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    /// The `apiVersion` the watcher asked for.
    api_version: String,
    /// The `(group, plural)` the watched objects are stored under.
    stored: (String, String),
}

impl Filter {
    fn applies(&self, e: &WatchEvent) -> bool {
        e.group == self.stored.0
            && e.plural == self.stored.1
            && self
                .target
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == e.namespace)
    }

    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj["metadata"].get("labels")) && self.fields.matches(obj)
    }

    /// The event a watcher with this filter sees, if any: selector transitions become
    /// ADDED / DELETED.
    fn translate(&self, e: &WatchEvent) -> Option<(&'static str, Value)> {
        if !self.applies(e) {
            return None;
        }
        let object = e.object.value();
        let now = self.matches(&object);
        let before = e.old.as_ref().is_some_and(|o| self.matches(&o.value()));
        let kind = match (e.type_, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        let mut obj = object;
        if kind == "DELETED" {
            obj["metadata"]["resourceVersion"] = json!(e.rv.to_string());
        }
        Some((kind, output(&self.target.res, &self.target.version, obj)))
    }

    /// Whether the watcher sees every object of its resource and namespace unchanged: no
    /// selector, and the stored encoding already in the version asked for.
    fn sees_as_stored(&self, object: &StoredObject) -> bool {
        self.labels.0.is_empty()
            && self.fields.0.is_empty()
            && object.is(&self.api_version, &self.target.res.kind)
    }

    /// The frame this watcher is sent for `e`, if any. Without selectors it is the stored
    /// encoding wrapped, with no decoding (one event reaches many watchers).
    fn frame_for(&self, e: &WatchEvent) -> Option<Bytes> {
        if !self.applies(e) {
            return None;
        }
        // A stored DELETED event already carries the deletion's resourceVersion.
        if self.sees_as_stored(&e.object) {
            return Some(stored_frame(e.type_.as_str(), e.object.json()));
        }
        let (kind, obj) = self.translate(e)?;
        Some(frame(kind, &obj))
    }

    /// [`Self::frame_for`] of a live event: the stored encoding's frame is made once per event
    /// and shared by every watcher it reaches (a clone of `Bytes` is a reference count).
    fn frame_for_delivery(&self, d: &Delivery) -> Option<Bytes> {
        let e = &*d.event;
        if self.applies(e) && self.sees_as_stored(&e.object) {
            return Some(
                d.stored_frame
                    .get_or_init(|| stored_frame(e.type_.as_str(), e.object.json()))
                    .clone(),
            );
        }
        self.frame_for(e)
    }
}

/// [`frame`] of an object already encoded.
fn stored_frame(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn frame(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(target: &Target, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    frame(
        "BOOKMARK",
        &json!({"kind": target.res.kind, "apiVersion": target.res.api_version(&target.version), "metadata": meta}),
    )
}

fn expired(rv: u64, oldest: u64) -> Bytes {
    let status = ApiError::expired(format!("too old resource version: {rv} ({oldest})")).status();
    frame("ERROR", &status)
}

/// Opens a watch.
pub(crate) async fn serve(
    app: Arc<App>,
    target: Target,
    params: &HashMap<String, String>,
    as_table: bool,
) -> Result<Response, ApiError> {
    let (labels, fields) = super::handlers::selectors(&target, params)?;
    let rv_param = params.get("resourceVersion").cloned().unwrap_or_default();
    // Checked and defaulted as upstream: a watch from "" or "0" streams its initial events.
    let send_initial = super::options::check_list(params, true)?.send_initial_events;
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let start_rv: Option<u64> =
        if rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            Some(rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {rv_param}"))
            })?)
        };
    let initial = send_initial.unwrap_or(start_rv.is_none());
    let filter = Filter {
        api_version: target.res.api_version(&target.version),
        stored: target.res.storage_key(),
        target: target.clone(),
        labels,
        fields,
    };

    // Subscribe before taking the snapshot so no event falls between them.
    let rx = app.store.subscribe();
    let mut first: Vec<Bytes> = Vec::new();
    let mut last_rv;
    if initial {
        let (items, rv) = app
            .store
            .list_stored(&target.res, target.namespace.as_deref());
        for o in items {
            if filter.sees_as_stored(&o) {
                first.push(stored_frame("ADDED", o.json()));
                continue;
            }
            let o = o.value();
            if filter.matches(&o) {
                first.push(frame("ADDED", &output(&target.res, &target.version, o)));
            }
        }
        last_rv = rv;
        if send_initial == Some(true) && bookmarks {
            first.push(bookmark(&target, rv, true));
        }
    } else if let Some(from) = start_rv {
        match app.store.history_after(from) {
            Err(oldest) => {
                first.push(expired(from, oldest));
                let body = WatchBody {
                    first: first.into_iter(),
                    live: None,
                };
                return Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::new(body),
                )
                    .into_response());
            }
            Ok(events) => {
                last_rv = from;
                for e in events {
                    if let Some(f) = filter.frame_for(&e) {
                        first.push(f);
                    }
                    last_rv = e.rv;
                }
            }
        }
    } else {
        // sendInitialEvents=false from "" or "0": from now on, nothing of the past.
        last_rv = app.store.lock().rv;
    }

    // The connection polls the watch itself (no task and channel per watcher between them, no
    // stream adapters): one wake-up per event and watcher, and a client that goes away drops
    // the subscription.
    let live = Live {
        rx,
        filter,
        last_rv,
        bookmarks,
        ticker: tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_EVERY,
            BOOKMARK_EVERY,
        ),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        timers_wake: None,
        ended: false,
    };
    let body = WatchBody {
        first: first.into_iter(),
        live: Some(live),
    };
    let body = if as_table {
        Body::new(table_events(target, Body::new(body)))
    } else {
        Body::new(body)
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// A watch in `Table` form (`kubectl get -w`): each event's object a Table of its one row,
/// the column definitions only in the first (later ones `null`, as kube-apiserver sends
/// them with `NoHeaders`); ERROR Status objects and bookmarks as they are.
fn table_events(target: Target, body: Body) -> MappedEvents<impl FnMut(Value) -> Value + Unpin> {
    let mut headers = true;
    MappedEvents::new(body, move |mut event: Value| {
        if matches!(event["type"].as_str(), Some("ERROR" | "BOOKMARK")) {
            return event;
        }
        let rv = event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_default();
        let mut table = super::table::table(&target, &[event["object"].take()], None, rv);
        if !std::mem::take(&mut headers) {
            table["columnDefinitions"] = Value::Null;
        }
        event["object"] = table;
        event
    })
}

/// A watch's body: its first frames, then the live ones.
struct WatchBody {
    first: std::vec::IntoIter<Bytes>,
    /// `None` when the first frames are all there is (a 410).
    live: Option<Live>,
}

impl axum::body::HttpBody for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(b) = this.first.next() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match &mut this.live {
            None => Poll::Ready(None),
            Some(live) => live.poll_next(cx).map(|f| f.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.live.is_none() && self.first.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A watch after its first frames: live events, bookmarks, the timeout.
struct Live {
    rx: Subscription,
    filter: Filter,
    last_rv: u64,
    bookmarks: bool,
    ticker: tokio::time::Interval,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The waker the deadline was last polled with: while the task is polled with the same one
    /// (its connection's, on every poll but the first), the deadline needs no new registration,
    /// only a look at its state.
    timers_wake: Option<Waker>,
    ended: bool,
}

impl Live {
    /// The next frame, or `None` when the watch is over.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let registered = self
            .timers_wake
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if registered {
            if self.deadline.is_elapsed() {
                self.ended = true;
                return Poll::Ready(None);
            }
        } else {
            if self.deadline.as_mut().poll(cx).is_ready() {
                self.ended = true;
                return Poll::Ready(None);
            }
            self.timers_wake = Some(cx.waker().clone());
        }
        while let Poll::Ready(r) = self.rx.poll_recv(cx) {
            match r {
                Ok(d) => {
                    if d.event.rv <= self.last_rv {
                        continue;
                    }
                    self.last_rv = d.event.rv;
                    if let Some(f) = self.filter.frame_for_delivery(d) {
                        return Poll::Ready(Some(f));
                    }
                }
                // The watcher fell too far behind: tell it to relist, as a compacted server does.
                Err(RecvError::Lagged) => {
                    self.ended = true;
                    return Poll::Ready(Some(expired(self.last_rv, self.last_rv + 1)));
                }
                Err(RecvError::Closed) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
        // The ticker is polled on every poll (it has no cheaper look at its state); it only
        // runs with bookmarks allowed.
        if self.bookmarks && self.ticker.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(bookmark(&self.filter.target, self.last_rv, false)));
        }
        Poll::Pending
    }
}
