//! Running `rateguard rls` ([`GrpcFrontend`], a frontend of the replica
//! runtime): the gRPC listener on `[server] listen`, the runtime's admin
//! listener (`/healthz`, `/readyz`, `/metrics`, `/config`) on
//! `admin_listen`, the store `[store]` names, until shutdown; `SIGHUP`
//! reloads the `[rls] limits` files.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rateguard_contract::RuntimeMode;
use rateguard_runtime::{
    redact_url, run_replica, AdminSource, Decider, Frontend, Listeners, Public, ReloadSource,
    Replica, Running, ServeError, ServerConfig, StoreConfig,
};
use rateguard_store::BucketStore;

use crate::config::RlsConfig;
use crate::quota::{QuotaService, ShareStore};
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
/// ([`rateguard_runtime::reload`]); the binary passes the file with its
/// overrides.
pub fn serve_reloading(
    config: RlsConfig,
    reload: Option<ReloadSource<RlsConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RlsServeError> {
    run_replica::<GrpcFrontend>(config, reload, shutdown)
}

/// An `rls` replica with its listeners bound, ready to run on the current
/// runtime.
pub type RlsServer = Replica<GrpcFrontend>;

/// The Envoy Rate Limit Service as a frontend of the replica runtime.
#[derive(Debug)]
pub enum GrpcFrontend {}

impl Frontend for GrpcFrontend {
    type Config = RlsConfig;
    type Error = RlsServeError;

    fn server(config: &RlsConfig) -> &ServerConfig {
        &config.server
    }

    fn store(config: &RlsConfig) -> &StoreConfig {
        &config.store
    }

    /// One multi-thread runtime: tonic spreads the HTTP/2 streams.
    fn runtime(_config: &RlsConfig) -> RuntimeMode {
        RuntimeMode::MultiThread
    }

    async fn run<S: BucketStore>(
        config: RlsConfig,
        store: S,
        running: Running<RlsConfig>,
    ) -> Result<(), RlsServeError> {
        log_startup(&config, running.listeners(), store.kind().as_str());
        let grace = config.server.shutdown_grace;
        let kind = config.store.kind;
        let shares = ShareStore::for_config(&config.store)
            .await
            .map_err(|source| ServeError::Store { kind, source })?;
        let limiter = Arc::new(RateLimiter::from_config(config, store));
        let quota = QuotaService::new(limiter.clone(), shares);
        let public = {
            let limiter = limiter.clone();
            move |public: Public| serve_public(limiter, quota, public, grace)
        };
        let result = running.serve(limiter.clone(), limiter, public).await;
        tracing::info!("Rate limit service stopped.");
        result
    }
}

/// Serves gRPC until the replica stops, then drains, for at most `grace`
/// (Envoy keeps its HTTP/2 connections open).
async fn serve_public<S: BucketStore>(
    limiter: Arc<RateLimiter<S>>,
    quota: QuotaService<S>,
    public: Public,
    grace: Duration,
) -> Result<(), RlsServeError> {
    let stop = public.stop;
    let grpc = serve_grpc(
        limiter,
        Some(quota),
        public.listener,
        stop.clone().stopped(),
    );
    tokio::select! {
        result = grpc => result.map_err(RlsServeError::from),
        () = async { stop.stopped().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "Drain took longer than server.shutdown_grace_ms; stopping.");
            Ok(())
        }
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
        replicas_hint = config.store.replicas_hint,
        deny_cache = ?config.store.deny_cache,
        domains = ?domains,
        rules = config.limits.rules().len(),
        "Rate limit service started."
    );
}

/// No `/buckets`: a descriptor's bucket key hashes the whole request's
/// descriptor entries, which an operator would have to spell exactly
/// (see docs/plans.md); the default answer says so.
impl<S: BucketStore> AdminSource for RateLimiter<S> {
    type Store = S;

    fn decider(&self) -> &Decider<S> {
        RateLimiter::decider(self)
    }

    fn replica(&self) -> &str {
        &self.options().replica_id
    }

    fn store_timeout(&self) -> Duration {
        self.options().store.budget
    }

    fn encode_metrics(&self) -> String {
        self.metrics().encode()
    }

    fn active_config(&self) -> Option<serde_json::Value> {
        self.live().config().map(|c| c.to_json())
    }
}
