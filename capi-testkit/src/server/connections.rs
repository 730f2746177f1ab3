//! Connections: a listener whose connections all drop at once, and the HTTP served on each.
//!
//! When the server stops (its serving task is aborted, as a restart does), every connection it
//! accepted fails its next read or write, so idle keep-alive connections, HTTP/2 connections
//! and requests in flight end too, not only the accept loop. As when a kube-apiserver process
//! dies: no `GOAWAY`, no last chunk.
//!
//! Every read and write checks one flag (an atomic load and a waker registration that is a
//! pointer comparison once registered): a watch write is one system call per event and
//! watcher, and a lock shared by every connection there is contended across threads.
//!
//! Each connection is served by hyper-util's connection builder in the protocol it was given:
//! HTTP/1.1 for plain HTTP (no h2c, as Go's server without it configured), and over TLS what
//! ALPN chose (`h2` or HTTP/1.1; see [`super::tls`]). HTTP/2 is set up as kube-apiserver sets
//! up x/net/http2: 100 concurrent streams, 256 KiB frames and stream windows, a 25 MiB
//! connection window, 1 MiB of headers, and no keep-alive pings from the server (the client's
//! are answered), so a watch stays open as long as it streams.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

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

/// The connection builder: HTTP/1.1 as hyper's defaults, HTTP/2 as kube-apiserver's.
fn builder(protocol: Protocol) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
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

/// Serves `router` on `io` in `protocol` until the connection ends (the client closes it, an
/// I/O error, or the server stops and [`CutIo`] fails it).
pub(crate) async fn serve<I>(
    io: I,
    peer: SocketAddr,
    protocol: Protocol,
    router: Router,
    counter: &ConnectionCounter,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match protocol {
        Protocol::Http1 => counter.http1.fetch_add(1, Ordering::Relaxed),
        Protocol::Http2 => counter.http2.fetch_add(1, Ordering::Relaxed),
    };
    let builder = builder(protocol);
    let io = TokioIo::new(io);
    let served = match protocol {
        Protocol::Http1 => {
            let service = TowerToHyperService::new(router);
            builder.serve_connection_with_upgrades(io, service).await
        }
        Protocol::Http2 => {
            let router = tower::ServiceExt::<http::Request<hyper::body::Incoming>>::map_response(
                router,
                |r: Response| r.map(|body| Body::new(FlushBeforeReset::new(body))),
            );
            let service = TowerToHyperService::new(router);
            builder.serve_connection_with_upgrades(io, service).await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, ?protocol, error = %e, "connection ended");
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

/// Serves `router` as HTTP/1.1 on every connection of `listener`, each in its own task.
pub(crate) async fn serve_plain(
    mut listener: Cuttable,
    router: Router,
    counter: Arc<ConnectionCounter>,
) {
    loop {
        let (io, peer) = axum::serve::Listener::accept(&mut listener).await;
        let (router, counter) = (router.clone(), counter.clone());
        tokio::spawn(async move { serve(io, peer, Protocol::Http1, router, &counter).await });
    }
}

/// Whether the server stopped, and the connections to wake when it does.
#[derive(Debug, Default)]
struct Stop {
    stopped: AtomicBool,
    /// One waker per connection accepted (dead ones are pruned as connections come).
    conns: Mutex<Vec<Weak<AtomicWaker>>>,
}

impl Stop {
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Marks the server stopped and wakes every connection, which then fails.
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns.iter().filter_map(Weak::upgrade) {
            c.wake();
        }
    }

    fn register(&self, waker: &Arc<AtomicWaker>) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        // Amortised pruning: the list stays within twice the connections alive.
        if conns.len() >= 64 && conns.len().is_power_of_two() {
            conns.retain(|w| w.strong_count() > 0);
        }
        conns.push(Arc::downgrade(waker));
    }
}

/// A TCP listener whose connections end when it is dropped (the serving task aborted) or
/// `stop` is cancelled.
#[derive(Debug)]
pub(crate) struct Cuttable {
    listener: TcpListener,
    token: CancellationToken,
    stop: Arc<Stop>,
    /// Whether the task relaying `token` to `stop` runs.
    relayed: bool,
}

impl Cuttable {
    pub(crate) fn new(listener: TcpListener, stop: CancellationToken) -> Self {
        Self {
            listener,
            token: stop,
            stop: Arc::default(),
            relayed: false,
        }
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.stop.stop();
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
                    s.stop();
                }
            });
        }
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        // As Go's net package (so kube-apiserver) does: a watch event is sent when written,
        // not held back by Nagle's algorithm until the client acknowledges the previous one.
        let _ = stream.set_nodelay(true);
        let waker = Arc::new(AtomicWaker::new());
        self.stop.register(&waker);
        let io = CutIo {
            inner: stream,
            stop: self.stop.clone(),
            waker,
        };
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection that fails once its server stopped.
pub(crate) struct CutIo {
    inner: TcpStream,
    stop: Arc<Stop>,
    waker: Arc<AtomicWaker>,
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
        let stopped = self.stop.is_stopped() || {
            self.waker.register(cx.waker());
            // Checked again: a stop between the first check and the registration woke nobody.
            self.stop.is_stopped()
        };
        stopped
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
