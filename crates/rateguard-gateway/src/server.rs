//! The accept loop: bounded, HTTP/1.1 keep-alive and h2c (HTTP/2 with
//! prior knowledge) on the same port, graceful drain, idle connections
//! closed, upgraded connections ([`Tunnel`]) relayed.
//!
//! [`serve_http`] takes a listener that is already bound (tests bind
//! `127.0.0.1:0` and read the port) and a shutdown future. On shutdown it
//! stops accepting, lets in-flight requests finish (idle keep-alive
//! connections are closed at once), and gives up after the grace period.
//!
//! Each connection runs in `connection`: it holds hyper's buffers only
//! while busy (an idle keep-alive connection costs its socket and a small
//! task), and is closed once it has sent no request head for
//! [`ServeOptions::idle_timeout`]. An h2c connection (told apart by its
//! first bytes) is one hyper HTTP/2 session for its life; a `101` with a
//! [`Tunnel`] turns an HTTP/1.1 connection into that tunnel, which still
//! counts towards `max_connections` and is closed `grace` after shutdown
//! begins.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use connection::{Connection, Upgrades};
pub use tunnel::Tunnel;

mod connection;
mod h2c;
mod io;
mod tunnel;

/// Accept-loop settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub grace: Duration,
    /// Open-connections gauge to maintain, if any.
    pub connections: Option<Gauge>,
    /// How long a connection may stay without sending a request head
    /// (`server.idle_timeout_ms`).
    pub idle_timeout: Duration,
    /// How long an upgraded connection may pass no byte either way
    /// (`server.upgrade_idle_timeout_ms`); `None`: no limit.
    pub upgrade_idle_timeout: Option<Duration>,
    /// Open-upgraded-connections gauge to maintain, if any.
    pub upgraded: Option<Gauge>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            grace: Duration::from_secs(10),
            connections: None,
            idle_timeout: Duration::from_secs(60),
            upgrade_idle_timeout: None,
            upgraded: None,
        }
    }
}

/// Serves HTTP/1.1 and h2c on `listener` with `handler` until `shutdown` resolves,
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
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Every connection holds a permit; all of them back means drained.
    let permits = u32::try_from(options.max_connections).unwrap_or(u32::MAX);
    let limit = Arc::new(Semaphore::new(permits as usize));
    let mut builder = http1::Builder::new();
    // The idle timeout is the connection loop's (see `connection`), so no
    // timer is set per request.
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    // Tells waiting connections to close and serving ones to finish.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let connection = Connection {
        handler,
        builder,
        http2: h2,
        idle_timeout: options.idle_timeout,
        tick: connection::tick(options.idle_timeout),
        stopping,
        upgrades: Upgrades {
            grace: options.grace,
            quiet_timeout: options.upgrade_idle_timeout,
            open: options.upgraded.clone(),
        },
    };
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
        let connection = connection.clone();
        let gauge = options.connections.clone();
        tokio::spawn(async move {
            if let Some(g) = &gauge {
                g.inc();
            }
            connection.run(stream, peer).await;
            if let Some(g) = gauge {
                g.dec();
            }
            drop(permit);
        });
    }
    let _ = stopping_tx.send(true);
    drop(listener);
    tokio::select! {
        _ = limit.acquire_many(permits) => tracing::debug!("All connections drained."),
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!(grace = ?options.grace, "Shutdown grace period over; dropping open connections.");
        }
    }
}

#[cfg(test)]
mod tests;
