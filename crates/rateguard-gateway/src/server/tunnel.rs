//! [`Tunnel`]: what an HTTP/1.1 connection becomes after a
//! `101 Switching Protocols` (a WebSocket, or any protocol an `Upgrade`
//! names): the client's socket and the backend's, copied both ways byte for
//! byte (`tokio::io::copy`) until either side closes; its close is passed
//! on (a FIN) and both sockets are closed, so a peer that never closes its
//! end cannot hold a tunnel to one that has gone. No framing is parsed.
//!
//! A handler that relays a `101` attaches a [`Tunnel`] to it (see
//! [`Tunnel::attach`]); the connection loop ([`super::connection`]) takes
//! it off the response before hyper writes it and, once hyper hands the
//! socket over, runs it in the connection's own task: the connection keeps
//! its `max_connections` permit, is never taken apart as idle, is not
//! closed by `idle_timeout_ms` (only by its own optional quiet timeout),
//! and is closed `shutdown_grace_ms` after a shutdown begins.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// Both halves of an upgrade: the client's connection (from the request,
/// `hyper::upgrade::on(&mut request)`) and the backend's (from its `101`).
#[derive(Clone)]
pub struct Tunnel {
    client: OnUpgrade,
    backend: OnUpgrade,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tunnel")
    }
}

impl Tunnel {
    /// The tunnel between the client side of an upgrade request and the
    /// backend side of its `101` response.
    pub fn new(client: OnUpgrade, backend: OnUpgrade) -> Self {
        Self { client, backend }
    }

    /// Attaches the tunnel to `res` (a `101`), for the connection loop.
    pub fn attach<B>(self, res: &mut Response<B>) {
        res.extensions_mut().insert(self);
    }

    /// The tunnel attached to `res`, if it is a `101` with one.
    pub(super) fn take<B>(res: &mut Response<B>) -> Option<Self> {
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            return None;
        }
        res.extensions_mut().remove::<Self>()
    }

    /// Copies bytes both ways until either side closes, or until neither
    /// has sent a byte for `quiet_timeout` (if any).
    pub(super) async fn run(self, quiet_timeout: Option<Duration>) -> io::Result<()> {
        let (client, backend) =
            tokio::try_join!(self.client, self.backend).map_err(io::Error::other)?;
        let activity = AtomicU64::new(0);
        // Every byte either way passes the backend side: counting there
        // sees all traffic.
        let backend = Counted {
            io: TokioIo::new(backend),
            activity: &activity,
        };
        let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(client));
        let (mut backend_read, mut backend_write) = tokio::io::split(backend);
        let up = pass(&mut client_read, &mut backend_write);
        let down = pass(&mut backend_read, &mut client_write);
        let quiet = async {
            match quiet_timeout {
                Some(timeout) => quiet_for(&activity, timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            passed = up => passed,
            passed = down => passed,
            () = quiet => {
                tracing::trace!(?quiet_timeout, "Upgraded connection quiet; closing it.");
                Ok(())
            }
        }
    }
}

/// Copies `from` to `to` until `from` ends, then passes the end on.
async fn pass<R, W>(from: &mut R, to: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    tokio::io::copy(from, to).await?;
    to.shutdown().await
}

/// Resolves once `activity` has not moved for `timeout` (checked every
/// quarter of it, so after between `timeout` and 1.25 × `timeout`).
async fn quiet_for(activity: &AtomicU64, timeout: Duration) {
    let tick = (timeout / 4).max(Duration::from_millis(1));
    let mut seen = activity.load(Ordering::Relaxed);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = activity.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            since = Instant::now();
        } else if since.elapsed() >= timeout {
            return;
        }
    }
}

/// An I/O object that counts the bytes through it in `activity`.
struct Counted<'a, T> {
    io: T,
    activity: &'a AtomicU64,
}

impl<T> Counted<'_, T> {
    fn count(&self, n: usize) {
        self.activity.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) {
            self.count(buf.filled().len() - before);
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.count(n);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
