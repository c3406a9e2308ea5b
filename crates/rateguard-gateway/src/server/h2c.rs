//! An h2c connection (the client sent the HTTP/2 preface): one hyper HTTP/2
//! session for the connection's life. hyper multiplexes the streams; the
//! loop only closes the connection (GOAWAY, open streams finish first) on
//! shutdown, or once it has had no stream open and started none for
//! `idle_timeout`. A long gRPC stream is a response in flight, so it keeps
//! its connection open however quiet it is.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

use super::connection::Connection;
use super::io::{ConnIo, ConnState};

impl<H, F, B> Connection<H>
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: HttpBody + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Serves an h2c connection from `peer` (`replay`: bytes already read)
    /// until it closes, idles out, or the server stops.
    pub(super) async fn serve_http2(
        mut self,
        stream: TcpStream,
        replay: Bytes,
        peer: SocketAddr,
        state: &Arc<ConnState>,
    ) {
        let io = TokioIo::new(ConnIo::new(stream, replay, state.clone()));
        let session = self.http2.serve_connection(io, self.service(peer, state));
        tokio::pin!(session);
        let period = self.tick;
        let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seen = state.requests();
        let mut idle_since = Instant::now();
        let mut closing = false;
        loop {
            tokio::select! {
                biased;
                ended = session.as_mut() => {
                    if let Err(err) = ended {
                        tracing::trace!(%peer, error = %err, "HTTP/2 connection ended with an error.");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|s| *s), if !closing => {
                    closing = true;
                    session.as_mut().graceful_shutdown();
                }
                _ = ticks.tick() => {
                    let requests = state.requests();
                    if requests != seen || !state.quiet() {
                        seen = requests;
                        idle_since = Instant::now();
                    } else if !closing && idle_since.elapsed() >= self.idle_timeout {
                        closing = true;
                        session.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}
