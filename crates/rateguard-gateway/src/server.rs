//! The accept loop: bounded, HTTP/1.1 keep-alive, graceful drain.
//!
//! [`serve_http`] takes a listener that is already bound (tests bind
//! `127.0.0.1:0` and read the port) and a shutdown future. On shutdown it
//! stops accepting, lets in-flight requests finish (idle keep-alive
//! connections are closed at once), and gives up after the grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Accept-loop settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub grace: Duration,
    /// Open-connections gauge to maintain, if any.
    pub connections: Option<Gauge>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            grace: Duration::from_secs(10),
            connections: None,
        }
    }
}

/// Serves HTTP/1.1 on `listener` with `handler` until `shutdown` resolves,
/// then drains. Returns once every connection has closed or the grace
/// period has passed. The response body type is the handler's (the gateway
/// answers [`crate::response::Body`]; the mock backend streams its own).
pub async fn serve_http<H, F, B>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    // Tells connections that have not sent anything yet to close.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("semaphore never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %err, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let mut stopping = stopping_rx.clone();
        let gauge = options.connections.clone();
        let task = async move {
            if let Some(g) = &gauge {
                g.inc();
            }
            // hyper allocates its buffers as soon as it serves a connection;
            // a client that connects and stays silent costs only its socket
            // until it sends something.
            let mut first_byte = [0u8; 1];
            let ready = tokio::select! {
                // `readable()` reports a fresh socket ready at once; a
                // one-byte peek really waits for the first byte (0 = EOF).
                r = stream.peek(&mut first_byte) => matches!(r, Ok(n) if n > 0),
                _ = stopping.wait_for(|s| *s) => false,
            };
            if ready {
                // The request future is boxed: hyper keeps the service future
                // inside each connection, so an unboxed one would make every
                // idle keep-alive connection as large as the biggest
                // in-flight request (store call + upstream call).
                let service = service_fn(move |req| {
                    let fut = Box::pin(handler(req, peer));
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                if let Err(err) = conn.await {
                    tracing::trace!(%peer, error = %err, "Connection ended with an error.");
                }
            }
            if let Some(g) = gauge {
                g.dec();
            }
            drop(permit);
        };
        tokio::spawn(task);
    }
    let _ = stopping_tx.send(true);
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("All connections drained."),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace = ?options.grace, "Shutdown grace period over; dropping open connections.");
        }
    }
}
