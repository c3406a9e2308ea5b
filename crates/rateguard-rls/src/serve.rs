//! Running `rateguard rls`: the gRPC listener on `[server] listen`, the
//! admin listener (`/healthz`, `/readyz`, `/metrics`, `/config`, the
//! gateway's) on `admin_listen`, the store `[store]` names, until shutdown;
//! `SIGHUP` reloads the `[rls] limits` files.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rateguard_gateway::admin::AdminSource;
use rateguard_gateway::reload::{self, ReloadSource};
use rateguard_gateway::{
    bind_addr, multi_thread, redact_url, serve_admin, thread_count, with_store, Listeners,
    ServeError, StoreUser,
};
use rateguard_store::BucketStore;
use tokio::sync::watch;

use crate::config::RlsConfig;
use crate::server::serve_grpc;
use crate::service::RateLimiter;

/// Why `rateguard rls` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RlsServeError {
    /// Listeners, runtime or store (as for `serve`).
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Runs the service on a multi-thread runtime (`server.threads` workers)
/// until `shutdown` resolves. Blocks the calling thread.
pub fn serve(
    config: RlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RlsServeError> {
    serve_reloading(config, None, shutdown)
}

/// [`serve`], reloading the limits files from `reload` on each `SIGHUP`
/// (the gateway's mechanism, [`rateguard_gateway::reload`]); the binary
/// passes the file with its overrides.
pub fn serve_reloading(
    config: RlsConfig,
    reload: Option<ReloadSource<RlsConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RlsServeError> {
    multi_thread(thread_count(config.server.threads))?.block_on(async {
        let listeners = Listeners {
            public: bind_addr(config.server.listen)?,
            admin: bind_addr(config.server.admin_listen)?,
        };
        run(config, listeners, reload, shutdown).await
    })
}

/// Connects the store and serves on bound `listeners` until `shutdown`,
/// reloading from `reload` (if any) on `SIGHUP`.
pub async fn run(
    config: RlsConfig,
    listeners: Listeners,
    reload: Option<ReloadSource<RlsConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RlsServeError> {
    let store = config.store.clone();
    with_store(
        &store,
        Service {
            config,
            listeners,
            reload,
            shutdown,
        },
    )
    .await?
}

struct Service<F> {
    config: RlsConfig,
    listeners: Listeners,
    reload: Option<ReloadSource<RlsConfig>>,
    shutdown: F,
}

impl<F: Future<Output = ()> + Send + 'static> StoreUser for Service<F> {
    type Output = Result<(), RlsServeError>;

    async fn run<S: BucketStore>(self, store: S) -> Self::Output {
        let Self {
            config,
            listeners,
            reload,
            shutdown,
        } = self;
        log_startup(&config, &listeners, store.kind().as_str());
        let grace = config.server.shutdown_grace;
        let watch = config.server.watch_config.then_some(reload::WATCH_EVERY);
        let limiter = Arc::new(RateLimiter::from_config(config, store));
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Some(source) = reload {
            reload::spawn_reloader(limiter.clone(), source, watch, stopped(stop_rx.clone()))
                .map_err(ServeError::from)?;
        }
        let admin = tokio::spawn(serve_admin(
            limiter.clone(),
            listeners.admin,
            stopped(stop_rx.clone()),
        ));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let grpc = serve_grpc(limiter, listeners.public, stopped(stop_rx.clone()));
        let result = tokio::select! {
            result = grpc => result.map_err(RlsServeError::from),
            // Envoy keeps its HTTP/2 connections open: bound the drain.
            () = async { stopped(stop_rx).await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "Drain took longer than server.shutdown_grace_ms; stopping.");
                Ok(())
            }
        };
        let _ = admin.await;
        tracing::info!("Rate limit service stopped.");
        result
    }
}

fn log_startup(config: &RlsConfig, listeners: &Listeners, store: &str) {
    let urls: Vec<String> = config.store.urls.iter().map(|u| redact_url(u)).collect();
    let mut domains: Vec<&str> = config.limits.domains().collect();
    domains.sort_unstable();
    tracing::info!(
        listen = ?listeners.public.local_addr().ok(),
        admin_listen = ?listeners.admin.local_addr().ok(),
        replica_id = %config.server.replica_id,
        store,
        store_urls = ?urls,
        store_timeout = ?config.store.timeout,
        on_error = %config.store.on_error,
        domains = ?domains,
        rules = config.limits.rules().len(),
        "Rate limit service started."
    );
}

impl<S: BucketStore> AdminSource for RateLimiter<S> {
    type Store = S;

    fn store(&self) -> &S {
        RateLimiter::store(self)
    }

    fn replica(&self) -> &str {
        &self.options().replica_id
    }

    fn store_timeout(&self) -> Duration {
        self.options().store_timeout
    }

    fn encode_metrics(&self) -> String {
        self.metrics().encode()
    }

    fn active_config(&self) -> Option<serde_json::Value> {
        self.live().config().map(|c| c.to_json())
    }
}
