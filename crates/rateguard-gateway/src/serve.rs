//! Serving a gateway replica: [`serve`] (the binary's one call), [`Server`]
//! and [`HttpFrontend`], the gateway's part of the runtime's replica
//! lifecycle ([`rateguard_runtime::replica`]: layout, listeners, store,
//! reload, admin, shutdown).
//!
//! A replica is two parts: [`Shared`] (policies, identity rules, the
//! decision layer over the store, metrics), built once, and per runtime a
//! [`Gateway`] holding the shared part and an upstream client with its own
//! connection pool, so a request and the upstream connection it uses run
//! on the same thread.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rateguard_runtime::layout::{spawn_runtimes, Layout};
use rateguard_runtime::{
    run_replica, Frontend, Public, ReloadSource, Replica, Running, ServeError, ServerConfig, Stop,
    StoreConfig,
};
use rateguard_store::{BucketStore, RedisKeys};
use tokio::net::TcpListener;

use crate::config::ValidConfig;
use crate::proxy::Proxy;
use crate::registry::KeyRegistry;
use crate::server::{serve_http, ServeOptions};
use crate::service::{Gateway, Shared};

mod startup;

/// Runs one replica as `config.server` lays it out, until `shutdown`
/// resolves, then drains in-flight requests (bounded by
/// `server.shutdown_grace_ms`). Blocks the calling thread; `shutdown` is
/// polled on the replica's first runtime (see
/// [`shutdown_signal`](rateguard_runtime::shutdown_signal)).
pub fn serve(
    config: ValidConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_reloading(config, None, shutdown)
}

/// [`serve`], reloading the config from `reload` on each `SIGHUP` (see
/// [`rateguard_runtime::reload`]); the binary passes the file with its
/// overrides.
pub fn serve_reloading(
    config: ValidConfig,
    reload: Option<ReloadSource<ValidConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run_replica::<HttpFrontend>(config, reload, shutdown)
}

/// A gateway replica with its listeners bound, ready to run on the current
/// runtime.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use rateguard_gateway::{config, Server};
///
/// let mut config = config::load_str(r#"
///     [upstream]
///     url = "http://127.0.0.1:9000"
///     [[policies]]
///     name = "default"
///     capacity = 100
///     refill_per_sec = 50.0
/// "#)?;
/// config.server.listen = "127.0.0.1:0".parse()?;
/// config.server.admin_listen = "127.0.0.1:0".parse()?;
/// let server = Server::bind(config)?;
/// println!("serving on {}", server.public_addr());
/// server.run(std::future::pending()).await?;
/// # Ok(()) }
/// ```
pub type Server = Replica<HttpFrontend>;

/// The HTTP gateway as a frontend of the replica runtime.
#[derive(Debug)]
pub enum HttpFrontend {}

impl Frontend for HttpFrontend {
    type Config = ValidConfig;
    type Error = ServeError;

    fn server(config: &ValidConfig) -> &ServerConfig {
        &config.server
    }

    fn store(config: &ValidConfig) -> &StoreConfig {
        &config.store
    }

    async fn run<S: BucketStore>(
        config: ValidConfig,
        store: S,
        running: Running<ValidConfig>,
    ) -> Result<(), ServeError> {
        startup::log_startup(running.listeners(), &config, store.kind());
        if let Layout::PerCore { threads } = running.layout() {
            tracing::info!(threads, "Runtime: one current-thread runtime per core.");
        }
        let registry = match config.key_registry {
            Some(max_stale) => Some(key_registry(&config, max_stale).await?),
            None => None,
        };
        let shared = Arc::new(Shared::with_registry(&config, store, registry));
        let live = shared.live_slot().clone();
        let public = {
            let shared = shared.clone();
            move |public: Public| serve_runtimes(shared, config, public)
        };
        let result = running.serve(shared, live, public).await;
        tracing::info!("Gateway stopped.");
        result
    }
}

/// `identity.keys = "redis"`: the registry on the store's Redis, read
/// once (a failure is logged: no key is known until a read succeeds) and
/// then polled.
async fn key_registry(
    config: &ValidConfig,
    max_stale: Duration,
) -> Result<Arc<KeyRegistry>, ServeError> {
    let source =
        RedisKeys::connect(&config.store.redis_options()).map_err(|source| ServeError::Store {
            kind: config.store.kind,
            source,
        })?;
    let registry = Arc::new(KeyRegistry::new(max_stale));
    if let Err(error) = registry.refresh(&source).await {
        tracing::warn!(%error, "Cannot read the key registry at start; every key is limited as its IP until it can be read.");
    }
    registry.spawn_polling(source);
    Ok(registry)
}

/// Serves the public port on every runtime of the layout until the
/// replica stops, then drains; the first runtime is the caller's.
async fn serve_runtimes<S: BucketStore>(
    shared: Arc<Shared<S>>,
    config: ValidConfig,
    public: Public,
) -> Result<(), ServeError> {
    let Public {
        listener,
        layout,
        stop,
    } = public;
    let runtimes = layout.runtimes();
    // Each runtime's handler: the shared part and an upstream client of
    // its own. A pooled connection's task lives on the runtime that
    // opened it, so a pool shared across runtimes would make a request
    // on one wake a connection task on another (a cross-thread wake-up
    // per request, measured by `just perf` as context switches).
    let runtime_gateway = || Arc::new(Gateway::new(shared.clone(), Proxy::new(&config.upstream)));
    let options = PublicOptions {
        max_connections: (config.server.max_connections / runtimes).max(1),
        grace: config.server.shutdown_grace,
        idle_timeout: config.server.idle_timeout,
        upgrade_idle_timeout: config.server.upgrade_idle_timeout,
    };
    // Port 0 in the config: every runtime joins the port the first one got.
    let addr = listener.local_addr()?;
    let others = spawn_runtimes(
        runtimes,
        addr,
        || {
            let (gateway, options) = (runtime_gateway(), options.clone());
            move |listener: TcpListener, stop: Stop| serve_public(gateway, listener, options, stop)
        },
        &stop,
    )?;
    serve_public(runtime_gateway(), listener, options, stop).await;
    let mut result = Ok(());
    for finished in others {
        let outcome = finished.await.unwrap_or(Err(ServeError::RuntimeDied));
        if let Err(err) = outcome {
            tracing::error!(error = %err, "A runtime thread failed.");
            result = Err(err);
        }
    }
    result
}

/// One runtime's share of the public listener's settings.
#[derive(Debug, Clone)]
struct PublicOptions {
    max_connections: usize,
    grace: Duration,
    idle_timeout: Duration,
    upgrade_idle_timeout: Option<Duration>,
}

/// Serves the public port with `gateway` until `stop`, then drains.
async fn serve_public<S: BucketStore>(
    gateway: Arc<Gateway<S>>,
    listener: TcpListener,
    options: PublicOptions,
    stop: Stop,
) {
    let connections = gateway.shared().metrics().connections().clone();
    let upgraded = gateway.shared().metrics().upgrades().open().clone();
    serve_http(
        listener,
        move |req, peer| {
            let gateway = gateway.clone();
            async move { gateway.handle(req, peer).await }
        },
        stop.stopped(),
        ServeOptions {
            max_connections: options.max_connections,
            grace: options.grace,
            connections: Some(connections),
            idle_timeout: options.idle_timeout,
            upgrade_idle_timeout: options.upgrade_idle_timeout,
            upgraded: Some(upgraded),
        },
    )
    .await;
}
