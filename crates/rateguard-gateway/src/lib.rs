//! The RateGuard gateway: a reverse proxy that enforces token-bucket limits
//! per client and route before forwarding, generic over the bucket store.
//!
//! # Layout
//! - [`config`]: the TOML file (`deny_unknown_fields`), overrides, validation.
//! - [`policy`]: longest-prefix policy matching, precomputed headers.
//! - [`identity`]: API key or client IP (trusted-proxy `X-Forwarded-For` rules).
//! - [`enforce`]: store call with a time budget, fail-open / fail-closed.
//! - [`response`]: the 429 and error responses, `RateLimit*` header values.
//! - [`proxy`]: the pooled upstream client and the reverse-proxy header rules.
//! - [`service`]: [`Gateway`], one request's path through all of the above.
//! - [`server`]: the accept loop with connection limit and graceful drain.
//! - [`admin`] and [`metrics`]: `/healthz` (liveness), `/readyz` (store
//!   reachability), `/metrics` on their own port.
//! - [`mock_backend`]: the demo backend the tests and the lab run.
//! - [`error`]: typed errors.
//!
//! # Example: one replica in-process
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rateguard_gateway::{bind, config, run};
//! use rateguard_store::MemoryStore;
//!
//! let config = config::load_str(r#"
//!     [upstream]
//!     url = "http://127.0.0.1:9000"
//!     [[policies]]
//!     name = "default"
//!     capacity = 100
//!     refill_per_sec = 50.0
//! "#)?;
//! let listeners = bind(&config.server).await?;
//! run(listeners, &config, MemoryStore::new(), std::future::pending()).await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use rateguard_store::BucketStore;
use tokio::net::{TcpListener, TcpSocket};

pub mod admin;
pub mod config;
pub mod enforce;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod mock_backend;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod response;
pub mod server;
pub mod service;

pub use config::ValidConfig;
pub use error::{ConfigError, ConfigErrors, ProxyError, ServeError};
pub use service::Gateway;

use config::ServerConfig;
use server::{serve_http, ServeOptions};

/// The two bound listeners of a replica.
#[derive(Debug)]
pub struct Listeners {
    /// The public (proxy) listener.
    pub public: TcpListener,
    /// The admin (`/healthz`, `/readyz`, `/metrics`) listener.
    pub admin: TcpListener,
}

/// Binds `addr` with a deep accept backlog (bursts of thousands of
/// connections). With `reuse_port`, several listeners (one per runtime in
/// the per-core mode) can share the port and the kernel spreads connections.
pub fn bind_socket(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, ServeError> {
    let bind_err = |source| ServeError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true).map_err(bind_err)?;
    }
    socket.bind(addr).map_err(bind_err)?;
    socket.listen(4096).map_err(bind_err)
}

/// [`bind_socket`] without port sharing.
pub fn bind_addr(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    bind_socket(addr, false)
}

/// Binds both listeners of `server`.
pub async fn bind(server: &ServerConfig) -> Result<Listeners, ServeError> {
    Ok(Listeners {
        public: bind_addr(server.listen)?,
        admin: bind_addr(server.admin_listen)?,
    })
}

/// Runs one replica on already-bound listeners until `shutdown` resolves,
/// then drains in-flight requests (bounded by `server.shutdown_grace_ms`).
pub async fn run<S: BucketStore>(
    listeners: Listeners,
    config: &ValidConfig,
    store: S,
    shutdown: impl Future<Output = ()> + Send,
) {
    let gateway = Arc::new(Gateway::new(config, store));
    log_startup(&listeners, config, gateway.store().name());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin = tokio::spawn(serve_admin(gateway.clone(), listeners.admin, async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    serve_public(
        gateway,
        listeners.public,
        &config.server,
        config.server.max_connections,
        async move {
            shutdown.await;
            tracing::info!("Shutdown requested; draining in-flight requests.");
        },
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = admin.await;
    tracing::info!("Gateway stopped.");
}

/// Serves the public port with a shared `gateway` until `shutdown`, then
/// drains. The per-core mode runs one of these per runtime, each on its own
/// `SO_REUSEPORT` listener, all sharing one [`Gateway`] (store, pool, metrics).
pub async fn serve_public<S: BucketStore>(
    gateway: Arc<Gateway<S>>,
    listener: TcpListener,
    server: &ServerConfig,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let connections = gateway.metrics().connections().clone();
    serve_http(
        listener,
        move |req, peer| {
            let gateway = gateway.clone();
            async move { gateway.handle(req, peer).await }
        },
        shutdown,
        ServeOptions {
            max_connections,
            grace: server.shutdown_grace,
            connections: Some(connections),
        },
    )
    .await;
}

/// Serves `/healthz`, `/readyz` and `/metrics` for `gateway` until `shutdown`.
pub async fn serve_admin<S: BucketStore>(
    gateway: Arc<Gateway<S>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    serve_http(
        listener,
        move |req, _peer| admin::handle(gateway.clone(), req),
        shutdown,
        ServeOptions {
            max_connections: 256,
            grace: std::time::Duration::from_secs(1),
            connections: None,
        },
    )
    .await;
}

/// Runs the demo backend named `name` on `listener` until `shutdown` resolves.
pub async fn run_mock_backend(
    listener: TcpListener,
    name: &str,
    shutdown: impl Future<Output = ()> + Send,
) {
    mock_backend::serve(listener, mock_backend::Backend::new(name), shutdown).await;
}

/// Logs the effective config (passwords in URLs redacted) at `info`.
pub fn log_startup(listeners: &Listeners, config: &ValidConfig, store: &str) {
    let public = listeners.public.local_addr().ok();
    let admin = listeners.admin.local_addr().ok();
    let urls: Vec<String> = config.store.urls.iter().map(|u| redact_url(u)).collect();
    let policies: Vec<String> = config
        .policies
        .iter()
        .map(|p| {
            format!(
                "{}({}: {}/{}s{})",
                p.name,
                p.path_prefix.as_deref().unwrap_or("*"),
                p.quota.capacity(),
                p.quota.fill_time().as_secs_f64(),
                if p.shadow { ", shadow" } else { "" }
            )
        })
        .collect();
    tracing::info!(
        listen = ?public,
        admin_listen = ?admin,
        replica_id = %config.server.replica_id,
        upstream = %config.upstream.url,
        store,
        store_urls = ?urls,
        store_timeout = ?config.store.timeout,
        on_error = ?config.store.on_error,
        api_key_header = %config.identity.api_key_header,
        trusted_proxies = ?config.identity.trusted_proxies,
        policies = ?policies,
        "Gateway started."
    );
}

/// `url` with any password replaced by `***` (for logs).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        use super::redact_url;
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("rediss://u:p@w@h:1"), "rediss://u:***@h:1");
    }
}
