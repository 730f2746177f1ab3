//! A listener whose connections all drop at once: when the server stops (its serving task is
//! aborted, as a restart does), every connection it accepted fails its next read or write, so
//! idle keep-alive connections and requests in flight end too, not only the accept loop.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Future;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A TCP listener whose connections end when `stop` is cancelled.
#[derive(Debug)]
pub(crate) struct Cuttable {
    listener: TcpListener,
    stop: CancellationToken,
}

impl Cuttable {
    pub(crate) fn new(listener: TcpListener, stop: CancellationToken) -> Self {
        Self { listener, stop }
    }
}

impl axum::serve::Listener for Cuttable {
    type Io = CutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let io = CutIo {
            inner: stream,
            stopped: Box::pin(self.stop.clone().cancelled_owned()),
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
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
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
        self.stopped
            .as_mut()
            .poll(cx)
            .is_ready()
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
