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

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::io::{ConnIo, ConnState, InFlight};

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

/// How one connection is served.
#[derive(Clone)]
pub(super) struct Connection<H> {
    /// The request handler.
    pub(super) handler: H,
    /// hyper's HTTP/1 settings.
    pub(super) builder: http1::Builder,
    /// Closed after this long without a request head.
    pub(super) idle_timeout: Duration,
    /// How often a serving connection is looked at ([`tick`]).
    pub(super) tick: Duration,
    /// Turns true on shutdown.
    pub(super) stopping: watch::Receiver<bool>,
}

/// How a serving phase ended.
enum Phase {
    /// hyper is between requests: wait for the next one without it.
    Released(TcpStream, Bytes),
    /// The connection is over.
    Closed,
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
        let mut replay = Bytes::new();
        let mut idle_since = Instant::now();
        loop {
            if !self.wait_for_bytes(&stream, idle_since).await {
                return;
            }
            match self
                .serve(stream, replay, peer, &state, &mut idle_since)
                .await
            {
                Phase::Released(s, r) => (stream, replay) = (s, r),
                Phase::Closed => return,
            }
        }
    }

    /// Waits for a byte to read (`false`: EOF, shutdown or idle deadline).
    async fn wait_for_bytes(&mut self, stream: &TcpStream, idle_since: Instant) -> bool {
        let mut byte = [0u8; 1];
        tokio::select! {
            // `readable()` reports a fresh socket ready at once; a one-byte
            // peek really waits for a byte (0 = EOF).
            r = stream.peek(&mut byte) => matches!(r, Ok(n) if n > 0),
            _ = self.stopping.wait_for(|s| *s) => false,
            () = tokio::time::sleep_until(idle_since + self.idle_timeout) => false,
        }
    }

    /// Serves requests with a hyper session until it is between requests
    /// for a whole tick, or the connection ends.
    async fn serve(
        &mut self,
        stream: TcpStream,
        replay: Bytes,
        peer: SocketAddr,
        state: &Arc<ConnState>,
        idle_since: &mut Instant,
    ) -> Phase {
        let io = TokioIo::new(ConnIo::new(stream, replay, state.clone()));
        let (handler, counts) = (self.handler.clone(), state.clone());
        let service = service_fn(move |req: Request<Incoming>| {
            let in_flight = counts.request_started(!req.body().is_end_stream());
            // Boxed: hyper keeps the service future inside the session, so
            // an unboxed one would make every session as large as the
            // biggest request (store call + upstream call).
            let answer = Box::pin(handler(req, peer));
            async move {
                Ok::<_, Infallible>(answer.await.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        });
        let mut session = Box::new(self.builder.serve_connection(io, service));
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
                    return Phase::Closed;
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
                    } else if state.between_requests() && !draining {
                        break;
                    } else if idle_since.elapsed() >= self.idle_timeout {
                        return Phase::Closed;
                    }
                }
            }
        }
        state.released();
        let parts = session.into_parts();
        let (stream, replay) = parts.io.into_inner().into_parts(parts.read_buf);
        Phase::Released(stream, replay)
    }
}

/// A response body that marks its response done when hyper drops it.
struct Tracked<B> {
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
