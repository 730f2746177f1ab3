//! Open watches, and cutting them: a watch's body ends with an error instead of its last chunk,
//! so the server drops the connection mid-stream (the client sees an unexpected end of the
//! chunked body, as when an apiserver or a load balancer goes away).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use axum::body::{Body, HttpBody};
use axum::response::Response;
use bytes::Bytes;
use futures::Future;
use futures::task::AtomicWaker;
use hyper::body::{Frame, SizeHint};

use super::Cut;

/// The switch that cuts one watch. Its body checks it on every poll, so it is an atomic flag
/// and a waker (registering is a pointer comparison once done), not a lock.
#[derive(Debug, Default)]
struct Switch {
    cut: AtomicBool,
    waker: AtomicWaker,
}

impl Switch {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Cuts the watch; `false` if it was already cut.
    fn cut(&self) -> bool {
        let first = !self.cut.swap(true, Ordering::SeqCst);
        if first {
            self.waker.wake();
        }
        first
    }

    /// Whether the watch is cut, waking `cx` when it is later. `registered` is the waker
    /// registered last: while the body is polled with the same one (its connection's task, on
    /// every poll but the first), the flag is all there is to look at.
    fn poll_cut(&self, cx: &Context<'_>, registered: &mut Option<Waker>) -> bool {
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return self.is_cut();
        }
        self.is_cut() || {
            self.waker.register(cx.waker());
            *registered = Some(cx.waker().clone());
            // Checked again: a cut between the first check and the registration woke nobody.
            self.is_cut()
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    /// Resource (plural) and cut switch of every open watch.
    open: HashMap<u64, (String, Arc<Switch>)>,
}

/// The watches open right now.
#[derive(Debug, Default)]
pub(super) struct OpenWatches {
    registry: Arc<Mutex<Registry>>,
}

fn lock(r: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl OpenWatches {
    /// Cuts the open watches of `resource` (`None`: all); returns how many.
    pub(super) fn cut(&self, resource: Option<&str>) -> usize {
        let reg = lock(&self.registry);
        let mut n = 0;
        for (res, switch) in reg.open.values() {
            if resource.is_none_or(|r| r == res) && switch.cut() {
                n += 1;
            }
        }
        if n > 0 {
            tracing::debug!(watches = n, resource, "injected: open watches cut");
        }
        n
    }

    /// How many watches of `resource` (`None`: any) are open and not cut.
    pub(super) fn count(&self, resource: Option<&str>) -> usize {
        lock(&self.registry)
            .open
            .values()
            .filter(|(res, s)| !s.is_cut() && resource.is_none_or(|r| r == res))
            .count()
    }

    /// The watch response `resp`, registered until its body is dropped and cut as `plan` says.
    pub(super) fn wrap(&self, resource: &str, plan: Option<Cut>, resp: Response) -> Response {
        let switch = Arc::new(Switch::default());
        let id = {
            let mut reg = lock(&self.registry);
            reg.next += 1;
            let id = reg.next;
            reg.open.insert(id, (resource.to_owned(), switch.clone()));
            id
        };
        let (parts, body) = resp.into_parts();
        let cut = CutBody {
            body,
            switch,
            registered: None,
            deadline: match plan {
                Some(Cut::After(d)) => Some(Box::pin(tokio::time::sleep(d))),
                _ => None,
            },
            events_left: match plan {
                Some(Cut::AfterEvents(n)) => Some(n),
                _ => None,
            },
            cut_next: plan == Some(Cut::AfterEvents(0)),
            done: false,
            _registration: Registration {
                id,
                registry: self.registry.clone(),
            },
        };
        Response::from_parts(parts, Body::new(cut))
    }
}

/// Removes a watch from the registry when its body is dropped.
struct Registration {
    id: u64,
    registry: Arc<Mutex<Registry>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.registry).open.remove(&self.id);
    }
}

/// A watch body that can be cut (a body around the watch's, not a stream of its chunks: one
/// poll per frame and no adapters between the connection and the watch).
struct CutBody {
    body: Body,
    switch: Arc<Switch>,
    /// The waker the switch holds.
    registered: Option<Waker>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Events still let through before the cut.
    events_left: Option<u32>,
    /// The chunk with the last event allowed went out: cut on the next poll.
    cut_next: bool,
    done: bool,
    _registration: Registration,
}

/// Where in `chunk` the `n`-th event line (bookmarks not counted) ends, if it does; else how
/// many event lines the chunk holds.
fn split_after_events(chunk: &[u8], n: u32) -> Result<usize, u32> {
    let mut seen = 0;
    let mut start = 0;
    for (i, b) in chunk.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line = &chunk[start..i];
        start = i + 1;
        if line.starts_with(b"{\"type\":\"BOOKMARK\"") || line.is_empty() {
            continue;
        }
        seen += 1;
        if seen == n {
            return Ok(i + 1);
        }
    }
    Err(seen)
}

impl CutBody {
    fn cut(&mut self) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.done = true;
        tracing::debug!("injected: watch connection dropped");
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "watch cut (injected fault)",
        ))))
    }
}

impl HttpBody for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.cut_next || this.switch.poll_cut(cx, &mut this.registered) {
            return this.cut();
        }
        if let Some(d) = this.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            return this.cut();
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let mut chunk = match frame.into_data() {
                    Ok(chunk) => chunk,
                    // Trailers (a watch has none) pass through.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                };
                if let Some(left) = this.events_left {
                    match split_after_events(&chunk, left) {
                        Ok(end) => {
                            chunk.truncate(end);
                            this.cut_next = true;
                        }
                        Err(seen) => this.events_left = Some(left - seen),
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::split_after_events;

    #[test]
    fn events_are_counted_by_line_without_bookmarks() {
        let chunk = b"{\"type\":\"ADDED\"}\n{\"type\":\"BOOKMARK\"}\n{\"type\":\"MODIFIED\"}\n";
        assert_eq!(split_after_events(chunk, 1), Ok(17));
        assert_eq!(split_after_events(chunk, 2), Ok(chunk.len()));
        assert_eq!(split_after_events(chunk, 3), Err(2));
        assert_eq!(split_after_events(b"{\"type\":\"ADD", 1), Err(0));
    }
}
