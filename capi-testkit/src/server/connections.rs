//! A listener whose connections all drop at once: when the server stops (its serving task is
//! aborted, as a restart does), every connection it accepted fails its next read or write, so
//! idle keep-alive connections and requests in flight end too, not only the accept loop.
//!
//! Every read and write checks one flag (an atomic load and a waker registration that is a
//! pointer comparison once registered): a watch write is one system call per event and
//! watcher, and a lock shared by every connection there is contended across threads.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

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
