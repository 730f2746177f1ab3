//! Watches: newline-delimited JSON events, resume from a resourceVersion, 410 when too old,
//! bookmarks, streaming initial lists, selector transitions and timeouts
//! (apiserver-semantics.md 1.6).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::App;
use super::errors::ApiError;
use super::handlers::{Target, output};
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{EventType, WatchEvent};

/// How often a watch with bookmarks allowed gets one when nothing else happens.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

struct Filter {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn applies(&self, e: &WatchEvent) -> bool {
        e.group == self.target.res.group
            && e.plural == self.target.res.plural
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
        let now = self.matches(&e.object);
        let before = e.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match (e.type_, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            (EventType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        let mut obj = e.object.clone();
        if kind == "DELETED" {
            obj["metadata"]["resourceVersion"] = json!(e.rv.to_string());
        }
        Some((kind, output(&self.target.res, &self.target.version, obj)))
    }
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
) -> Result<Response, ApiError> {
    let (labels, fields) = super::handlers::selectors(&target, params)?;
    let rv_param = params.get("resourceVersion").cloned().unwrap_or_default();
    let send_initial = params.get("sendInitialEvents").map(|v| v == "true");
    let rv_match = params.get("resourceVersionMatch").cloned();
    if send_initial.is_some() && rv_match.as_deref() != Some("NotOlderThan") {
        return Err(ApiError::invalid_message(
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
        ));
    }
    if rv_match.is_some() && send_initial.is_none() {
        return Err(ApiError::invalid_message(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
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
        target: target.clone(),
        labels,
        fields,
    };

    // Subscribe before taking the snapshot so no event falls between them.
    let mut rx = app.store.subscribe();
    let mut first: Vec<Bytes> = Vec::new();
    let mut last_rv;
    if initial {
        let (items, rv) = app.store.list(&target.res, target.namespace.as_deref());
        for o in items.into_iter().filter(|o| filter.matches(o)) {
            first.push(frame("ADDED", &output(&target.res, &target.version, o)));
        }
        last_rv = rv;
        if send_initial == Some(true) && bookmarks {
            first.push(bookmark(&target, rv, true));
        }
    } else {
        let from = start_rv.unwrap_or(0);
        match app.store.history_after(from) {
            Err(oldest) => {
                first.push(expired(from, oldest));
                let body = Body::from_stream(futures::stream::iter(
                    first.into_iter().map(Ok::<_, std::convert::Infallible>),
                ));
                return Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response());
            }
            Ok(events) => {
                last_rv = from;
                for e in events {
                    if let Some((kind, obj)) = filter.translate(&e) {
                        first.push(frame(kind, &obj));
                    }
                    last_rv = e.rv;
                }
            }
        }
    }

    let stream = async_stream(first, move |tx| async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(&filter.target, last_rv, false)).await.is_err() { break; }
                }
                r = rx.recv() => match r {
                    Ok(e) => {
                        if e.rv <= last_rv { continue; }
                        last_rv = e.rv;
                        if let Some((kind, obj)) = filter.translate(&e)
                            && tx.send(frame(kind, &obj)).await.is_err()
                        {
                            break;
                        }
                    }
                    // The watcher fell too far behind: tell it to relist, as a compacted server does.
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(expired(last_rv, last_rv + 1)).await;
                        break;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A body stream: the `first` frames, then whatever `producer` sends until it returns.
fn async_stream<F, Fut>(
    first: Vec<Bytes>,
    producer: F,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    tokio::spawn(producer(tx));
    let head = futures::stream::iter(first.into_iter().map(Ok));
    let tail = futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
    );
    futures::StreamExt::chain(head, tail)
}
