//! Write coalescing for HTTP/2 connections: many streams' frames in one TLS write.
//!
//! hyper serves each HTTP/2 response body from a task of its own, which hands its frames to
//! the connection's task and wakes it; h2 then writes and flushes after every DATA frame, and
//! tokio runs a task woken that way next (its LIFO slot). So when an event reached the 100
//! watches of a connection, it went out as a TLS record and a system call per stream, where
//! Go's server writes them together. [`Coalesce`] sits between h2 and TLS and holds the writes:
//! the first flush after a write only wakes the connection's task (which tokio puts behind the
//! tasks already queued, so the other streams queue their frames meanwhile) and reports done;
//! the next time h2 polls the connection (it reads before it writes, so a read marks it) the
//! flush writes everything held at once. Nothing waits longer than one pass of the scheduler,
//! microseconds on a connection with nothing else going on; a full buffer is written at once,
//! and a shutdown writes what is held first.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much is held before it is written regardless of flushes: 16 TLS records' worth.
const CAPACITY: usize = 256 * 1024;

/// An I/O whose writes are coalesced until a flush has waited one scheduler pass (or, when
/// off, passed through as they come).
pub(crate) struct Coalesce<I> {
    inner: I,
    on: bool,
    buf: Vec<u8>,
    /// How much of `buf` is written already.
    written: usize,
    /// A flush was put off: the task has woken itself to be polled again.
    deferred: bool,
    /// The task was polled again since (h2 read from the connection).
    repolled: bool,
}

impl<I> Coalesce<I> {
    /// Coalesces writes to `inner` when `on`.
    pub(crate) fn new(inner: I, on: bool) -> Self {
        Self {
            inner,
            on,
            buf: Vec::new(),
            written: 0,
            deferred: false,
            repolled: false,
        }
    }
}

impl<I: AsyncWrite + Unpin> Coalesce<I> {
    /// Writes out what is held.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Room for `len` more bytes: what is held is written first when they would not fit.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if self.buf.len() + len > CAPACITY {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Coalesce<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.deferred {
            this.repolled = true;
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Coalesce<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.on {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        ready!(this.poll_room(cx, data.len()))?;
        if data.len() >= CAPACITY {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.on {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        ready!(this.poll_room(cx, len))?;
        if len >= CAPACITY {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        for b in bufs {
            this.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        // Slices are copied into the buffer: vectored writes save the caller a copy of its own.
        self.on || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.written < this.buf.len() {
            if !this.deferred {
                // tokio puts a task that woke itself behind the tasks already queued.
                this.deferred = true;
                this.repolled = false;
                cx.waker().wake_by_ref();
                return Poll::Ready(Ok(()));
            }
            if !this.repolled {
                // Still the poll that wrote: more frames may follow before it ends.
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_drain(cx))?;
        }
        this.deferred = false;
        this.repolled = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the writes that reach it.
    #[derive(Default)]
    struct Sink {
        writes: usize,
        bytes: Vec<u8>,
    }

    impl AsyncRead for Sink {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.writes += 1;
            this.bytes.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writes_go_out_together_at_the_flush() {
        let mut io = Coalesce::new(Sink::default(), true);
        for i in 0..100u8 {
            io.write_all(&[i; 100]).await.unwrap();
        }
        assert_eq!(io.inner.writes, 0, "nothing is written before a flush");
        // The first flush is put off until the next poll, which a read marks.
        io.flush().await.unwrap();
        io.write_all(&[100; 100]).await.unwrap();
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 0, "still the same poll");
        let mut byte = [0u8; 1];
        let _ = io.read(&mut byte).await;
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 1);
        assert_eq!(io.inner.bytes.len(), 10_100);
        assert!(
            io.inner
                .bytes
                .chunks(100)
                .enumerate()
                .all(|(i, c)| c.iter().all(|b| usize::from(*b) == i))
        );
        // A flush with nothing held does not wait.
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, 1);
    }

    #[tokio::test]
    async fn a_full_buffer_is_written_without_a_flush() {
        let mut io = Coalesce::new(Sink::default(), true);
        let chunk = vec![7u8; CAPACITY / 4 + 1];
        for _ in 0..4 {
            io.write_all(&chunk).await.unwrap();
        }
        assert_eq!(io.inner.writes, 1, "the fourth chunk did not fit");
        io.write_all(&vec![1u8; CAPACITY]).await.unwrap();
        assert_eq!(
            io.inner.writes, 3,
            "what was held, then the large write itself"
        );
        io.shutdown().await.unwrap();
        assert_eq!(io.inner.bytes.len(), 4 * chunk.len() + CAPACITY);
    }

    #[tokio::test]
    async fn off_passes_writes_through() {
        let mut io = Coalesce::new(Sink::default(), false);
        io.write_all(b"abc").await.unwrap();
        io.write_all(b"def").await.unwrap();
        assert_eq!(io.inner.writes, 2);
        assert_eq!(io.inner.bytes, b"abcdef");
    }
}
