//! One client connection, from accept to close, holding hyper's buffers
//! only while it is busy.
//!
//! hyper keeps ~16 KiB of read and write buffers for every HTTP/1
//! connection it serves, idle keep-alive ones included. So a connection
//! alternates between two phases:
//! 1. **waiting**: no hyper session, no buffers; a one-byte peek waits for
//!    the next request (or EOF, shutdown, the idle deadline);
//! 2. **serving**: a hyper session on the socket ([`ConnIo`]). Every
//!    [`tick`] the loop looks at it; once a whole tick has passed with no
//!    request started, no response in flight and nothing unflushed, the
//!    session is taken apart (`into_parts`), its unread bytes kept for the
//!    next session, and the connection waits again.
//!
//! The idle deadline counts from the last tick that saw activity, so a
//! connection that sends no complete request head for `idle_timeout` is
//! closed whichever phase it is in (a slow client trickling a head
//! included), without a timer per request.
//!
//! Two things change a connection's course:
//! - its first bytes: the HTTP/2 connection preface (h2c with prior
//!   knowledge, as gRPC clients and nginx's `grpc_pass` send it) makes it an
//!   HTTP/2 connection for life ([`super::h2c`]); anything else is
//!   HTTP/1.1 as above. The first look is the same one-byte-or-more peek,
//!   so telling them apart costs an HTTP/1.1 connection nothing;
//! - a `101 Switching Protocols` carrying a [`Tunnel`]: once hyper has
//!   written it and handed the socket over, the connection is that tunnel
//!   until either side closes ([`Connection::relay`]).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::io::{ConnIo, ConnState, InFlight};
use super::tunnel::Tunnel;

/// Longest interval between two looks at a serving connection. Short, so a
/// burst of connections that each send one request and fall silent never
/// holds many sessions at once; 40 looks a second at a busy connection cost
/// nothing measurable next to its requests.
const TICK: Duration = Duration::from_millis(25);

/// How often a serving connection is looked at: [`TICK`], or less for an
/// idle timeout under two ticks.
pub(super) fn tick(idle_timeout: Duration) -> Duration {
    TICK.min(idle_timeout / 2).max(Duration::from_millis(1))
}

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How one connection is served.
#[derive(Clone)]
pub(super) struct Connection<H> {
    /// The request handler.
    pub(super) handler: H,
    /// hyper's HTTP/1 settings.
    pub(super) builder: http1::Builder,
    /// hyper's HTTP/2 settings (h2c connections).
    pub(super) http2: http2::Builder<TokioExecutor>,
    /// Closed after this long without a request head.
    pub(super) idle_timeout: Duration,
    /// How often a serving connection is looked at ([`tick`]).
    pub(super) tick: Duration,
    /// Turns true on shutdown.
    pub(super) stopping: watch::Receiver<bool>,
    /// How upgraded connections are kept.
    pub(super) upgrades: Upgrades,
}

/// How upgraded connections (tunnels) are kept.
#[derive(Debug, Clone, Default)]
pub(super) struct Upgrades {
    /// How long one stays open once a shutdown has begun.
    pub(super) grace: Duration,
    /// Closed after this long without a byte either way; `None`: never.
    pub(super) quiet_timeout: Option<Duration>,
    /// Open upgraded connections, if counted.
    pub(super) open: Option<Gauge>,
}

/// How a serving phase ended.
enum Phase {
    /// hyper is between requests: wait for the next one without it.
    Released(TcpStream, Bytes),
    /// hyper answered `101` and handed the socket over.
    Upgraded(Tunnel),
    /// The connection is over.
    Closed,
}

/// What a connection speaks, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// The protocol the bytes seen so far decide, if they do: anything that
/// leaves the preface is HTTP/1.1.
fn decide(seen: &[u8]) -> Option<Protocol> {
    if !PREFACE.starts_with(seen) {
        Some(Protocol::Http1)
    } else if seen.len() == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

impl<H, F, B> Connection<H>
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: HttpBody + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Serves `stream` from `peer` until it closes, idles out or the
    /// server stops.
    pub(super) async fn run(self, stream: TcpStream, peer: SocketAddr) {
        self.run_with(stream, peer, Arc::default()).await;
    }

    /// [`run`](Self::run), recording what happens in `state`.
    pub(super) async fn run_with(
        mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        state: Arc<ConnState>,
    ) {
        let mut idle_since = Instant::now();
        let Some((protocol, mut replay)) = self.first_bytes(&mut stream, idle_since).await else {
            return;
        };
        if protocol == Protocol::Http2 {
            return self.serve_http2(stream, replay, peer, &state).await;
        }
        loop {
            match self
                .serve(stream, replay, peer, &state, &mut idle_since)
                .await
            {
                Phase::Released(s, r) => (stream, replay) = (s, r),
                Phase::Upgraded(tunnel) => return self.relay(tunnel).await,
                Phase::Closed => return,
            }
            if !self.wait_for_bytes(&stream, idle_since).await {
                return;
            }
        }
    }

    /// Waits for the connection's first bytes and tells its protocol, with
    /// the bytes read to decide it (usually none: a peek decides); `None`:
    /// EOF, shutdown or idle deadline first.
    async fn first_bytes(
        &mut self,
        stream: &mut TcpStream,
        idle_since: Instant,
    ) -> Option<(Protocol, Bytes)> {
        let deadline = idle_since + self.idle_timeout;
        let mut head = [0u8; PREFACE.len()];
        let n = self.until(deadline, stream.peek(&mut head)).await?;
        if let Some(protocol) = decide(&head[..n]) {
            return Some((protocol, Bytes::new()));
        }
        // Rare: the bytes so far begin the preface and stop short (a peek
        // would see them again at once). Read them, and more, never past
        // the preface's length, until it is decided; they are replayed.
        let mut got = 0;
        loop {
            got += self.until(deadline, stream.read(&mut head[got..])).await?;
            if let Some(protocol) = decide(&head[..got]) {
                return Some((protocol, Bytes::copy_from_slice(&head[..got])));
            }
        }
    }

    /// Waits for a byte to read (`false`: EOF, shutdown or idle deadline).
    async fn wait_for_bytes(&mut self, stream: &TcpStream, idle_since: Instant) -> bool {
        let mut byte = [0u8; 1];
        // `readable()` reports a fresh socket ready at once; a one-byte
        // peek really waits for a byte (0 = EOF).
        let deadline = idle_since + self.idle_timeout;
        self.until(deadline, stream.peek(&mut byte)).await.is_some()
    }

    /// The bytes `read` got, unless EOF (or an error), shutdown or
    /// `deadline` come first.
    async fn until(
        &mut self,
        deadline: Instant,
        read: impl Future<Output = io::Result<usize>>,
    ) -> Option<usize> {
        tokio::select! {
            r = read => r.ok().filter(|&n| n > 0),
            _ = self.stopping.wait_for(|s| *s) => None,
            () = tokio::time::sleep_until(deadline) => None,
        }
    }

    /// The hyper service for requests from `peer`: the handler, each
    /// response tracked in `state` until hyper drops its body, and the
    /// tunnel of a `101` kept in `state` for [`relay`](Self::relay).
    pub(super) fn service(
        &self,
        peer: SocketAddr,
        state: &Arc<ConnState>,
    ) -> impl Service<
        Request<Incoming>,
        Response = Response<Tracked<B>>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone {
        let (handler, counts) = (self.handler.clone(), state.clone());
        service_fn(move |req: Request<Incoming>| {
            let in_flight = counts.request_started(!req.body().is_end_stream());
            // Boxed: hyper keeps the service future inside the session, so
            // an unboxed one would make every session as large as the
            // biggest request (store call + upstream call).
            let answer = Box::pin(handler(req, peer));
            async move {
                let mut res = answer.await;
                if let Some(tunnel) = Tunnel::take(&mut res) {
                    in_flight.state().upgrading(tunnel);
                }
                Ok::<_, Infallible>(res.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        })
    }

    /// Serves requests with a hyper session until it is between requests
    /// for a whole tick, or the connection ends (or is upgraded).
    async fn serve(
        &mut self,
        stream: TcpStream,
        replay: Bytes,
        peer: SocketAddr,
        state: &Arc<ConnState>,
        idle_since: &mut Instant,
    ) -> Phase {
        let io = TokioIo::new(ConnIo::new(stream, replay, state.clone()));
        let service = self.service(peer, state);
        let mut session = Box::new(self.builder.serve_connection(io, service).with_upgrades());
        let period = self.tick;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seen = state.requests();
        let mut draining = false;
        loop {
            tokio::select! {
                biased;
                ended = Pin::new(&mut *session) => {
                    if let Err(err) = ended {
                        tracing::trace!(%peer, error = %err, "Connection ended with an error.");
                    }
                    return match state.take_tunnel() {
                        Some(tunnel) => Phase::Upgraded(tunnel),
                        None => Phase::Closed,
                    };
                }
                _ = self.stopping.wait_for(|s| *s), if !draining => {
                    // Finish the request in flight, then close.
                    draining = true;
                    Pin::new(&mut *session).graceful_shutdown();
                }
                _ = ticks.tick() => {
                    let requests = state.requests();
                    if requests != seen || !state.quiet() {
                        seen = requests;
                        *idle_since = Instant::now();
                    } else if state.between_requests() && !draining && !state.is_upgrading() {
                        break;
                    } else if idle_since.elapsed() >= self.idle_timeout {
                        return Phase::Closed;
                    }
                }
            }
        }
        let Some(parts) = session.into_parts() else {
            // Upgraded meanwhile (never between requests; for completeness).
            return Phase::Closed;
        };
        state.released();
        let (stream, replay) = parts.io.into_inner().into_parts(parts.read_buf);
        Phase::Released(stream, replay)
    }

    /// Relays an upgraded connection until either side closes, it is quiet
    /// for [`Upgrades::quiet_timeout`], or [`Upgrades::grace`] after a
    /// shutdown began.
    async fn relay(mut self, tunnel: Tunnel) {
        let Upgrades {
            grace,
            quiet_timeout,
            open,
        } = self.upgrades.clone();
        if let Some(open) = &open {
            open.inc();
        }
        let stopping = self.stopping.wait_for(|s| *s);
        tokio::select! {
            relayed = tunnel.run(quiet_timeout) => {
                if let Err(err) = relayed {
                    tracing::trace!(error = %err, "Upgraded connection ended with an error.");
                }
            }
            () = async { let _ = stopping.await; tokio::time::sleep(grace).await } => {
                tracing::debug!(?grace, "Shutdown grace period over; closing an upgraded connection.");
            }
        }
        if let Some(open) = &open {
            open.dec();
        }
    }
}

/// A response body that marks its response done when hyper drops it.
pub(super) struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
