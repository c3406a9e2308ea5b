//! [`ConnIo`]: a client socket as hyper sees it during one stretch of
//! requests: bytes read earlier replayed first, and a note of whether hyper
//! has written anything it has not flushed yet.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::tunnel::Tunnel;

/// What one connection's hyper session has done, read by the connection
/// loop between polls (one task: the atomics are never contended).
#[derive(Debug, Default)]
pub(super) struct ConnState {
    /// Requests started on the connection.
    requests: AtomicU64,
    /// Responses whose body hyper still holds.
    in_flight: AtomicUsize,
    /// hyper wrote to the socket and has not flushed since.
    unflushed: AtomicBool,
    /// The latest request had a body (hyper may still be reading it).
    body: AtomicBool,
    /// hyper sessions taken apart between requests.
    releases: AtomicU64,
    /// A `101` with a tunnel is on its way out: once hyper hands over the
    /// socket, the connection becomes the tunnel.
    tunnel: Mutex<Option<Tunnel>>,
}

impl ConnState {
    /// Notes a request starting; `body`: it has a body to read.
    pub(super) fn request_started(self: &Arc<Self>, body: bool) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.body.store(body, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Keeps the tunnel of a `101` being answered.
    pub(super) fn upgrading(&self, tunnel: Tunnel) {
        *self.tunnel.lock().unwrap_or_else(|e| e.into_inner()) = Some(tunnel);
    }

    /// The tunnel of the `101` answered, if any.
    pub(super) fn take_tunnel(&self) -> Option<Tunnel> {
        self.tunnel.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether a `101` with a tunnel is being answered (the session must
    /// then never be taken apart: hyper hands its socket to the tunnel).
    pub(super) fn is_upgrading(&self) -> bool {
        self.tunnel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Notes a hyper session taken apart between requests.
    pub(super) fn released(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
    }

    /// hyper sessions taken apart so far.
    #[cfg(test)]
    pub(super) fn releases(&self) -> u64 {
        self.releases.load(Ordering::Relaxed)
    }

    /// Requests started so far.
    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// No response in flight and nothing written but unflushed. Checked
    /// while hyper's connection future is pending, this means hyper's write
    /// buffer is empty (hyper flushes at the end of every poll).
    pub(super) fn quiet(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && !self.unflushed.load(Ordering::Relaxed)
    }

    /// [`quiet`](Self::quiet), and the latest request had no body, so
    /// hyper is between requests: its buffers can be dropped and the socket
    /// handed to a new session.
    pub(super) fn between_requests(&self) -> bool {
        self.quiet() && !self.body.load(Ordering::Relaxed)
    }
}

/// A response in flight; dropped with its body (or with the request, if
/// the handler never answered).
#[derive(Debug)]
pub(super) struct InFlight(Arc<ConnState>);

impl InFlight {
    /// The connection's state.
    pub(super) fn state(&self) -> &ConnState {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, with bytes to replay before reading it again.
#[derive(Debug)]
pub(super) struct ConnIo {
    stream: TcpStream,
    replay: Bytes,
    state: Arc<ConnState>,
}

impl ConnIo {
    /// `stream`, reading `replay` first.
    pub(super) fn new(stream: TcpStream, replay: Bytes, state: Arc<ConnState>) -> Self {
        Self {
            stream,
            replay,
            state,
        }
    }

    /// The socket back, with what hyper had read but not used (`unread`,
    /// from hyper's parts) followed by what it never asked for. Copied:
    /// `unread` is a view into hyper's read buffer, which would otherwise
    /// stay allocated (even when the view is empty) while the connection
    /// waits.
    pub(super) fn into_parts(self, unread: Bytes) -> (TcpStream, Bytes) {
        let replay = if unread.is_empty() && self.replay.is_empty() {
            Bytes::new()
        } else {
            [unread, self.replay].concat().into()
        };
        (self.stream, replay)
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replay.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.replay.len().min(buf.remaining());
        buf.put_slice(&self.replay[..n]);
        self.replay.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.unflushed.store(true, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.unflushed.store(true, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.state.unflushed.store(false, Ordering::Relaxed);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
