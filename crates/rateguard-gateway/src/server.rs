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

use crate::response::Body;

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
/// period has passed.
pub async fn serve_http<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
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
        let service = service_fn(move |req| {
            let fut = handler(req, peer);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let gauge = options.connections.clone();
        if let Some(g) = &gauge {
            g.inc();
        }
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::trace!(%peer, error = %err, "Connection ended with an error.");
            }
            if let Some(g) = gauge {
                g.dec();
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("All connections drained."),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace = ?options.grace, "Shutdown grace period over; dropping open connections.");
        }
    }
}
