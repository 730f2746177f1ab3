//! Connections: a listener whose connections all drop at once or drain, and the HTTP served on
//! each, with kube-apiserver's timeouts.
//!
//! When the server stops (its serving task is aborted, as a restart does), every connection it
//! accepted fails its next read or write, so idle keep-alive connections, HTTP/2 connections
//! and requests in flight end too, not only the accept loop. As when a kube-apiserver process
//! dies: no `GOAWAY`, no last chunk.
//!
//! When it drains instead (a graceful stop: [`crate::env::TestEnv::shutdown`], the binary's
//! SIGTERM), it does what kube-apiserver's graceful termination does with its default flags
//! (`--shutdown-delay-duration=0`, no `--shutdown-send-retry-after`): the listener closes at
//! once (new connections are refused), idle connections close, HTTP/2 connections get a
//! `GOAWAY` (`NO_ERROR`), requests in flight finish and their HTTP/1.1 connections close after
//! the response, all within [`HttpTimeouts::shutdown`] (then what is left is cut). Watches end
//! cleanly at once, between two events (HTTP/1.1: the last chunk; HTTP/2: `END_STREAM`), as
//! kube-apiserver ends them with `--shutdown-watch-termination-grace-period` set; with its
//! default (0) it leaves them open until the 60 s shutdown timeout and the process exit cut
//! them, the "timeout waiting for kube-apiserver to stop" of envtest teardowns. Clients resume
//! them from their last resourceVersion either way.
//!
//! Timeouts are Go's `net/http` ones as `secure_serving.go` sets them: a client has 32 s
//! (`ReadHeaderTimeout`) to finish its TLS handshake and then its first request's headers, a
//! connection with no request in flight closes after 90 s (`IdleTimeout`; HTTP/2: after a
//! `GOAWAY`), and once an idle HTTP/1.1 connection gets a byte, the rest of the headers have
//! 32 s again. Nothing bounds a request's body or a response (no `ReadTimeout` or
//! `WriteTimeout`), so a watch stays open as long as it streams. hyper's own HTTP/1.1
//! `header_read_timeout` is not used: its one timer runs from the end of the previous response,
//! so it would close idle keep-alive connections after 32 s, not 90 s.
//!
//! Every read and write checks one flag (an atomic load and a waker registration that is a
//! pointer comparison once registered): a watch write is one system call per event and
//! watcher, and a lock shared by every connection there is contended across threads. Watch
//! bodies check the drain flag the same way. HTTP/2 connections write the frames of all their
//! streams together ([`super::coalesce`]), one system call for the watches an event reached.
//!
//! Each connection is served by hyper-util's connection builder in the protocol it was given:
//! HTTP/1.1 for plain HTTP (no h2c, as Go's server without it configured), and over TLS what
//! ALPN chose (`h2` or HTTP/1.1; see [`super::tls`]). HTTP/2 is set up as kube-apiserver sets
//! up x/net/http2: 100 concurrent streams, 256 KiB frames and stream windows, a 25 MiB
//! connection window, 1 MiB of headers, and no keep-alive pings from the server (the client's
//! are answered). HTTP/1.1 takes 1 MiB of headers too (Go's `MaxHeaderBytes`, plus its 4 KiB
//! of slack); more gets Go's `431 Request Header Fields Too Large`, less exactly than Go's
//! limit: hyper refuses a head once that much is buffered without its end, and the read that
//! filled its buffer may have brought in as much again.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::coalesce::Coalesce;

/// How long an HTTP/2 response body's error waits before it resets the stream. h2 drops the
/// frames of a stream that are still queued when it is reset, so a watch cut right after an
/// event (an injected [`super::faults::Cut`]) would lose the event; Go's server sends them
/// first. The wait lets the connection write them.
const H2_RESET_DELAY: Duration = Duration::from_millis(100);

/// kube-apiserver's `resourceBody99Percentile`: its HTTP/2 frame size and per-stream window.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// Its `MaxConcurrentStreams` (when `--http2-max-streams-per-connection` is not set).
const H2_MAX_STREAMS: u32 = 100;
/// Its `MaxHeaderBytes` (1 MiB), plus x/net/http2's slack of ten 32-byte field overheads.
const H2_MAX_HEADER_LIST: u32 = (1 << 20) + 10 * 32;
/// Its `MaxHeaderBytes` for HTTP/1.1, plus net/http's 4 KiB of slack (`initialReadLimitSize`).
const H1_MAX_HEADER_BYTES: usize = (1 << 20) + 4096;
/// How long an HTTP/2 connection told to go away with no stream left stays open for the
/// client to read the `GOAWAY` (x/net/http2's `goAwayTimeout`).
const GO_AWAY_TIMEOUT: Duration = Duration::from_secs(1);

/// The HTTP server timeouts of a [`super::Server`]'s sockets: kube-apiserver's by default
/// (`secure_serving.go`: `ReadHeaderTimeout` 32 s, `IdleTimeout` 90 s; `genericapiserver`'s
/// shutdown timeout, its `RequestTimeout` of 60 s). Tests shorten them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use capi_testkit::env::TestEnv;
/// use capi_testkit::server::HttpTimeouts;
///
/// let timeouts = HttpTimeouts::default().idle(Duration::from_millis(500));
/// assert_eq!(timeouts.read_header_timeout(), Duration::from_secs(32));
/// // Connections idle for half a second close.
/// let env = TestEnv::builder().http_timeouts(timeouts).start().await?;
/// env.client().apiserver_version().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    read_header: Duration,
    idle: Duration,
    shutdown: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            read_header: Duration::from_secs(32),
            idle: Duration::from_secs(90),
            shutdown: Duration::from_secs(60),
        }
    }
}

impl HttpTimeouts {
    /// How long a client has to finish its TLS handshake and then send a request's headers
    /// (default 32 s, Go's `ReadHeaderTimeout`): counted from the connection's start for the
    /// handshake, from the handshake's end for the first request, and from the first byte
    /// after an idle time for the next ones. A client that is late is disconnected without an
    /// answer, as Go does.
    #[must_use]
    pub fn read_header(mut self, timeout: Duration) -> Self {
        self.read_header = timeout;
        self
    }

    /// How long a connection with no request in flight stays open (default 90 s, Go's
    /// `IdleTimeout`, as client-go's and kube-rs's connection pools keep theirs). HTTP/1.1
    /// connections are closed, HTTP/2 ones get a `GOAWAY` first.
    ///
    /// **Warning**: shorter than a client's own idle timeout, a request the client sends just
    /// as the server closes the connection fails (kube-rs and client-go retry only some).
    #[must_use]
    pub fn idle(mut self, timeout: Duration) -> Self {
        self.idle = timeout;
        self
    }

    /// How long a graceful stop waits for requests in flight (default 60 s, kube-apiserver's
    /// shutdown timeout, its `--request-timeout`); what is left then is cut.
    #[must_use]
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.shutdown = timeout;
        self
    }

    /// See [`HttpTimeouts::read_header`].
    pub fn read_header_timeout(&self) -> Duration {
        self.read_header
    }

    /// See [`HttpTimeouts::idle`].
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// See [`HttpTimeouts::shutdown`].
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown
    }
}

/// What every connection of one serving socket shares: its timeouts and the drain signal.
#[derive(Debug, Clone)]
pub(crate) struct Lifecycle {
    pub(crate) timeouts: HttpTimeouts,
    drain: Arc<Signal>,
}

impl Lifecycle {
    pub(crate) fn new(timeouts: HttpTimeouts) -> Self {
        Self {
            timeouts,
            drain: Arc::default(),
        }
    }
}

/// The HTTP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1 (and 1.0).
    Http1,
    /// HTTP/2, negotiated by ALPN over TLS.
    Http2,
}

/// How many connections a server took, by what became of them.
///
/// Counts since the [`super::Server`] was made (a restart with a fresh store makes a new one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let env = capi_testkit::env::TestEnv::start().await?;
/// env.client().apiserver_version().await?;
/// // kube-rs speaks HTTP/1.1 (kubectl negotiates h2).
/// assert!(env.server().connections().http1() >= 1);
/// assert_eq!(env.server().connections().http2(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    http1: AtomicU64,
    http2: AtomicU64,
    plain_http_refused: AtomicU64,
    handshakes_failed: AtomicU64,
}

impl ConnectionCounter {
    /// Connections served as HTTP/1.1: every plain HTTP one, and those over TLS whose client
    /// offered no `h2` by ALPN.
    pub fn http1(&self) -> u64 {
        self.http1.load(Ordering::Relaxed)
    }

    /// Connections served as HTTP/2 (over TLS, `h2` chosen by ALPN).
    pub fn http2(&self) -> u64 {
        self.http2.load(Ordering::Relaxed)
    }

    /// Plain HTTP requests sent to the TLS port, answered `400 Bad Request` as Go answers them.
    pub fn plain_http_refused(&self) -> u64 {
        self.plain_http_refused.load(Ordering::Relaxed)
    }

    /// TLS connections closed before or during their handshake (not TLS and not HTTP, a
    /// certificate the client refused, a timeout...).
    pub fn handshakes_failed(&self) -> u64 {
        self.handshakes_failed.load(Ordering::Relaxed)
    }

    pub(crate) fn count_plain_http_refused(&self) {
        self.plain_http_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_handshake_failed(&self) {
        self.handshakes_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The connection builder: HTTP/1.1 as hyper's defaults but for Go's header limit, HTTP/2 as
/// kube-apiserver's. Timeouts are [`serve`]'s.
fn builder(protocol: Protocol) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(H1_MAX_HEADER_BYTES)
        // [`serve`] times headers as Go does (see the module doc).
        .header_read_timeout(None);
    builder
        .http2()
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_frame_size(H2_STREAM_WINDOW)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_STREAM_WINDOW * H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        // No pings from the server (Go's server sends none): nothing cuts a quiet watch.
        .keep_alive_interval(None);
    match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
    }
}

/// Whether a request is a watch (`watch=true` or `watch=1`, as the handlers take it).
fn is_watch(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

/// Where a connection is in Go's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers, within `read_header`.
    Headers,
    /// A request in flight: no timeout.
    Busy,
    /// No request in flight, within `idle`.
    Idle,
    /// Told to go away (idle, or the server drains): dropped if it is still open with no
    /// request in flight [`GO_AWAY_TIMEOUT`] later.
    Closing,
}

/// Serves `router` on `io` in `protocol` until the connection ends (the client closes it, an
/// I/O error, a timeout, a drain, or the server stops and [`CutIo`] fails it).
pub(crate) async fn serve<I>(
    io: I,
    peer: SocketAddr,
    protocol: Protocol,
    router: Router,
    counter: &ConnectionCounter,
    life: &Lifecycle,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match protocol {
        Protocol::Http1 => counter.http1.fetch_add(1, Ordering::Relaxed),
        Protocol::Http2 => counter.http2.fetch_add(1, Ordering::Relaxed),
    };
    let activity = Arc::new(Activity::default());
    // HTTP/2 writes many streams' frames together (see `coalesce`); HTTP/1.1 has one response
    // at a time, which hyper writes in one go already.
    let io = TokioIo::new(Tracked {
        inner: Coalesce::new(io, matches!(protocol, Protocol::Http2)),
        activity: activity.clone(),
    });
    let service = {
        let (activity, drain) = (activity.clone(), life.drain.clone());
        hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let in_flight = InFlight::begin(&activity);
            let watch = is_watch(req.uri().query()).then(|| Waiter::new(&drain));
            let router = router.clone();
            async move {
                let resp = match tower::ServiceExt::oneshot(router, req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                let resp = resp.map(|body| {
                    let body = Body::new(Outgoing {
                        inner: body,
                        _in_flight: in_flight,
                        drain: watch,
                        ended: false,
                    });
                    match protocol {
                        Protocol::Http1 => body,
                        Protocol::Http2 => Body::new(FlushBeforeReset::new(body)),
                    }
                });
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let builder = builder(protocol);
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let drain = Waiter::new(&life.drain);
    let mut draining = false;
    let (read_header, idle) = (life.timeouts.read_header, life.timeouts.idle);
    // Go times an HTTP/1.1 connection's first request's headers from its start, and gives an
    // HTTP/2 connection its idle timeout from the start.
    let mut phase = match protocol {
        Protocol::Http1 => Phase::Headers,
        Protocol::Http2 => Phase::Idle,
    };
    let deadline = tokio::time::sleep(match phase {
        Phase::Headers => read_header,
        _ => idle,
    });
    let mut deadline = std::pin::pin!(deadline);
    // Requests started, as last looked at.
    let mut seen = 0;
    let served = loop {
        tokio::select! {
            biased;
            served = conn.as_mut() => break served,
            () = drain.wait(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
                if activity.in_flight() == 0 {
                    phase = Phase::Closing;
                    deadline.as_mut().reset(tokio::time::Instant::now() + GO_AWAY_TIMEOUT);
                }
            }
            () = activity.changed.notified() => {
                let now = tokio::time::Instant::now();
                let busy = activity.in_flight() > 0;
                // A request may have come and gone between two looks (their notifications
                // are one): the count of requests tells.
                let started = activity.started.load(Ordering::SeqCst);
                let served = std::mem::replace(&mut seen, started) != started;
                if served && phase != Phase::Closing && !busy {
                    phase = Phase::Busy;
                }
                match phase {
                    Phase::Closing => {
                        if !busy {
                            deadline.as_mut().reset(now + GO_AWAY_TIMEOUT);
                        }
                    }
                    _ if busy => phase = Phase::Busy,
                    _ if draining => {
                        phase = Phase::Closing;
                        deadline.as_mut().reset(now + GO_AWAY_TIMEOUT);
                    }
                    Phase::Busy => {
                        phase = Phase::Idle;
                        // Reads of an HTTP/2 connection (pings, window updates) keep it no
                        // less idle, as in Go; an HTTP/1.1 one's first byte starts headers.
                        activity.watch_reads(protocol == Protocol::Http1);
                        deadline.as_mut().reset(now + idle);
                    }
                    Phase::Idle if protocol == Protocol::Http1 && !activity.is_idle() => {
                        phase = Phase::Headers;
                        deadline.as_mut().reset(now + read_header);
                    }
                    Phase::Idle | Phase::Headers => {}
                }
            }
            () = deadline.as_mut(), if phase != Phase::Busy => match phase {
                Phase::Headers => {
                    tracing::debug!(%peer, ?protocol, "request headers timed out: connection closed");
                    return;
                }
                Phase::Idle => {
                    tracing::debug!(%peer, ?protocol, "idle connection closed");
                    conn.as_mut().graceful_shutdown();
                    phase = Phase::Closing;
                    deadline.as_mut().reset(tokio::time::Instant::now() + GO_AWAY_TIMEOUT);
                }
                Phase::Closing | Phase::Busy => {
                    if activity.in_flight() == 0 {
                        tracing::debug!(%peer, ?protocol, "connection gone away: closed");
                        return;
                    }
                    // A request came in while it went away: served to its end.
                    phase = Phase::Busy;
                }
            },
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, ?protocol, error = %e, "connection ended");
    }
}

/// One connection's requests in flight and its first read after an idle time.
#[derive(Debug, Default)]
struct Activity {
    /// Requests whose response is not over (its body not dropped).
    in_flight: AtomicUsize,
    /// Requests started.
    started: AtomicU64,
    /// Set while idle, for HTTP/1.1: the next read clears it and tells the connection.
    idle: AtomicBool,
    /// Told of every change of `in_flight` from or to 0, and of the first read while idle.
    changed: Notify,
}

impl Activity {
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn is_idle(&self) -> bool {
        self.idle.load(Ordering::SeqCst)
    }

    /// Whether the next read is to be told of.
    fn watch_reads(&self, on: bool) {
        self.idle.store(on, Ordering::SeqCst);
    }

    /// A read of `n` bytes.
    fn read(&self, n: usize) {
        // One atomic load per read while busy.
        if n > 0 && self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }
}

/// A request in flight, until its response ends.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::SeqCst);
        if activity.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            activity.changed.notify_one();
        }
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_one();
        }
    }
}

/// A connection's I/O, telling its [`Activity`] of reads.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) {
            this.activity.read(buf.filled().len() - before);
        }
        read
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A response body on its way out: its request is in flight until it is dropped, and a
/// watch's ends cleanly, between two events, when the server drains.
struct Outgoing {
    inner: Body,
    _in_flight: InFlight,
    /// A watch's: the drain signal.
    drain: Option<Waiter>,
    ended: bool,
}

impl hyper::body::Body for Outgoing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if this.drain.as_ref().is_some_and(|d| d.poll_set(cx)) {
            tracing::debug!("server draining: watch ended");
            this.ended = true;
            return Poll::Ready(None);
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.drain.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

/// An HTTP/2 response body whose error (which resets the stream) comes [`H2_RESET_DELAY`]
/// after the data before it, so that the data goes out first.
struct FlushBeforeReset {
    inner: Body,
    failing: Option<(axum::Error, Pin<Box<tokio::time::Sleep>>)>,
    failed: bool,
}

impl FlushBeforeReset {
    fn new(inner: Body) -> Self {
        Self {
            inner,
            failing: None,
            failed: false,
        }
    }
}

impl hyper::body::Body for FlushBeforeReset {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if let Some((_, sleep)) = this.failing.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            this.failed = true;
            return Poll::Ready(this.failing.take().map(|(e, _)| Err(e)));
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Err(e)) => {
                let mut sleep = Box::pin(tokio::time::sleep(H2_RESET_DELAY));
                // Registers the wake-up; a zero delay is ready at once.
                if sleep.as_mut().poll(cx).is_ready() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
                this.failing = Some((e, sleep));
                Poll::Pending
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.failing.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.failing.is_some() || self.failed {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

/// Serves every connection of `listener` with `each`, in its own task, until `drain` is
/// cancelled; then drains: the listener closes, every connection is told to
/// ([`Lifecycle`]'s drain signal) and given [`HttpTimeouts::shutdown`] to end, and the ones
/// left are cut when this returns (dropping `listener`).
pub(crate) async fn serve_all<F, Fut>(
    mut listener: Cuttable,
    life: &Lifecycle,
    drain: CancellationToken,
    mut each: F,
) where
    F: FnMut(CutIo, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tracker = Arc::new(Tracker::default());
    loop {
        tokio::select! {
            biased;
            () = drain.cancelled() => break,
            (io, peer) = axum::serve::Listener::accept(&mut listener) => {
                let alive = Tracker::enter(&tracker);
                let conn = each(io, peer);
                tokio::spawn(async move {
                    conn.await;
                    drop(alive);
                });
            }
        }
    }
    listener.stop_accepting();
    life.drain.set();
    let open = tracker.live.load(Ordering::SeqCst);
    tracing::info!(connections = open, "draining connections");
    if tokio::time::timeout(life.timeouts.shutdown, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.live.load(Ordering::SeqCst),
            timeout = ?life.timeouts.shutdown,
            "connections still open after the shutdown timeout: cut"
        );
    }
}

/// Serves `router` as HTTP/1.1 on every connection of `listener` ([`serve_all`]).
pub(crate) async fn serve_plain(
    listener: Cuttable,
    router: Router,
    counter: Arc<ConnectionCounter>,
    life: Lifecycle,
    drain: CancellationToken,
) {
    serve_all(listener, &life.clone(), drain, move |io, peer| {
        let (router, counter, life) = (router.clone(), counter.clone(), life.clone());
        async move { serve(io, peer, Protocol::Http1, router, &counter, &life).await }
    })
    .await;
}

/// How many connection tasks are alive.
#[derive(Debug, Default)]
struct Tracker {
    live: AtomicUsize,
    none: Notify,
}

/// One connection task alive.
struct Alive(Arc<Tracker>);

impl Tracker {
    fn enter(this: &Arc<Self>) -> Alive {
        this.live.fetch_add(1, Ordering::SeqCst);
        Alive(this.clone())
    }

    /// Until no connection task is alive.
    async fn wait(&self) {
        loop {
            let none = self.none.notified();
            let mut none = std::pin::pin!(none);
            none.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            none.await;
        }
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

/// A flag set once (the server stopped, or drains), and the connections and bodies to wake
/// when it is.
#[derive(Debug, Default)]
struct Signal {
    set: AtomicBool,
    /// One waker per connection or body waiting (dead ones are pruned as others come).
    waiting: Mutex<Vec<Weak<AtomicWaker>>>,
}

impl Signal {
    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Sets the flag and wakes every waiter.
    fn set(&self) {
        if self.set.swap(true, Ordering::SeqCst) {
            return;
        }
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiting.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }

    fn register(&self, waker: &Arc<AtomicWaker>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Amortised pruning: the list stays within twice the waiters alive.
        if waiting.len() >= 64 && waiting.len().is_power_of_two() {
            waiting.retain(|w| w.strong_count() > 0);
        }
        waiting.push(Arc::downgrade(waker));
    }
}

/// One waiter of a [`Signal`]: a look at its flag is an atomic load and a waker registration
/// (a pointer comparison once registered).
#[derive(Debug)]
struct Waiter {
    signal: Arc<Signal>,
    waker: Arc<AtomicWaker>,
}

impl Waiter {
    fn new(signal: &Arc<Signal>) -> Self {
        let waker = Arc::new(AtomicWaker::new());
        signal.register(&waker);
        Self {
            signal: signal.clone(),
            waker,
        }
    }

    /// Whether the signal is set, waking `cx` when it is later.
    fn poll_set(&self, cx: &Context<'_>) -> bool {
        self.signal.is_set() || {
            self.waker.register(cx.waker());
            // Checked again: a signal between the first check and the registration woke nobody.
            self.signal.is_set()
        }
    }

    /// Until the signal is set.
    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.poll_set(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// A TCP listener whose connections end when it is dropped (the serving task aborted) or
/// `stop` is cancelled.
#[derive(Debug)]
pub(crate) struct Cuttable {
    /// `None` once it stopped accepting (a drain).
    listener: Option<TcpListener>,
    token: CancellationToken,
    stop: Arc<Signal>,
    /// Whether the task relaying `token` to `stop` runs.
    relayed: bool,
}

impl Cuttable {
    pub(crate) fn new(listener: TcpListener, stop: CancellationToken) -> Self {
        Self {
            listener: Some(listener),
            token: stop,
            stop: Arc::default(),
            relayed: false,
        }
    }

    /// Closes the listening socket (new connections are refused); the ones accepted live on
    /// until this is dropped.
    fn stop_accepting(&mut self) {
        self.listener = None;
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.stop.set();
    }
}

impl axum::serve::Listener for Cuttable {
    type Io = CutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        if !self.relayed {
            self.relayed = true;
            let (token, stop) = (self.token.clone(), Arc::downgrade(&self.stop));
            tokio::spawn(async move {
                token.cancelled().await;
                if let Some(s) = stop.upgrade() {
                    s.set();
                }
            });
        }
        let Some(listener) = self.listener.as_mut() else {
            return std::future::pending().await;
        };
        let (stream, addr) = axum::serve::Listener::accept(listener).await;
        // As Go's net package (so kube-apiserver) does: a watch event is sent when written,
        // not held back by Nagle's algorithm until the client acknowledges the previous one.
        let _ = stream.set_nodelay(true);
        let io = CutIo {
            inner: stream,
            stop: Waiter::new(&self.stop),
        };
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no longer listening",
            )),
        }
    }
}

/// A connection that fails once its server stopped.
pub(crate) struct CutIo {
    inner: TcpStream,
    stop: Waiter,
}

impl std::fmt::Debug for CutIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutIo")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl CutIo {
    /// `Some(error)` once the server stopped (polling registers the wake-up).
    fn stopped(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        self.stop
            .poll_set(cx)
            .then(|| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "server stopped"))
    }
}

impl AsyncRead for CutIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.stopped(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.stopped(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.stopped(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.stopped(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
