//! Watch bodies whose events are rewritten one by one, for conversions a client asks for in
//! its `Accept` header (`as=Table`, `as=PartialObjectMetadata`): the shared, pre-encoded frames
//! of [`super::watch`] go through a per-watch rewrite only when one was asked for.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::Frame;
use serde_json::Value;

/// A watch body with each event (one JSON line) replaced by what `map` makes of it.
pub(crate) struct MappedEvents<F> {
    inner: Body,
    map: F,
    /// The start of an event whose line has not ended yet.
    pending: Vec<u8>,
}

impl<F: FnMut(Value) -> Value> MappedEvents<F> {
    pub(crate) fn new(inner: Body, map: F) -> Self {
        Self {
            inner,
            map,
            pending: Vec::new(),
        }
    }

    /// The rewritten lines of `data` that complete here.
    fn lines(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..nl]);
            let line = std::mem::take(&mut self.pending);
            match serde_json::from_slice::<Value>(&line) {
                Ok(event) => out.extend_from_slice((self.map)(event).to_string().as_bytes()),
                // Not an event: as it came.
                Err(_) => out.extend_from_slice(&line),
            }
            out.push(b'\n');
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        out
    }
}

impl<F: FnMut(Value) -> Value + Unpin> HttpBody for MappedEvents<F> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.lines(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_are_rewritten_across_frames() {
        let mut m = MappedEvents::new(Body::empty(), |mut e: Value| {
            e["seen"] = json!(true);
            e
        });
        let data = b"{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":{}}\n";
        let (a, b) = data.split_at(20);
        assert!(m.lines(a).is_empty());
        let out = m.lines(b);
        let events: Vec<Value> = out
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e["seen"] == true));
        assert_eq!(events[1]["type"], "DELETED");
    }
}
