//! Serving a replica: [`serve`] (the binary's one call) and [`Server`].
//!
//! [`serve`] owns everything between a checked config and a stopped
//! process: the runtime layout (`server.runtime`: one current-thread runtime
//! per core sharing the port with `SO_REUSEPORT`, or one multi-thread
//! runtime), the listeners, the store (`store.kind` → a monomorphised
//! [`Gateway<S>`]), the admin listener, the start-up log and the drain.
//!
//! A replica is two parts: [`Shared`] (policies, identity rules, store,
//! metrics), built once, and per runtime a [`Gateway`] holding the shared
//! part and an upstream client with its own connection pool, so a request
//! and the upstream connection it uses run on the same thread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rateguard_store::BucketStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, AdminSource};
use crate::config::{RuntimeMode, ValidConfig};
use crate::error::ServeError;
use crate::listen::{bind_addr, bind_socket, Listeners};
use crate::mock_backend;
use crate::proxy::Proxy;
use crate::reload::{self, ReloadSource};
use crate::server::{serve_http, ServeOptions};
use crate::service::{Gateway, Shared};

mod runtimes;
mod startup;
mod stores;

pub use rateguard_store::StoreUser;
use runtimes::Layout;
pub use runtimes::{multi_thread, thread_count};
pub use startup::redact_url;
pub use stores::{redis_options, with_store};

/// Runs one replica as `config.server` lays it out, until `shutdown`
/// resolves, then drains in-flight requests (bounded by
/// `server.shutdown_grace_ms`). Blocks the calling thread; `shutdown` is
/// polled on the replica's first runtime (see [`shutdown_signal`]).
pub fn serve(
    config: ValidConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_reloading(config, None, shutdown)
}

/// [`serve`], reloading the config from `reload` on each `SIGHUP` (see
/// [`crate::reload`]); the binary passes the file with its overrides.
pub fn serve_reloading(
    config: ValidConfig,
    reload: Option<ReloadSource<ValidConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let threads = runtimes::thread_count(config.server.threads);
    match config.server.runtime {
        RuntimeMode::MultiThread => runtimes::multi_thread(threads)?.block_on(async {
            let mut server = Server::bind(config)?;
            server.reload = reload;
            server.run(shutdown).await
        }),
        RuntimeMode::PerCore => runtimes::current_thread()?.block_on(async {
            let mut server = Server::bind_shared_port(config)?;
            server.layout = Layout::PerCore { threads };
            server.reload = reload;
            server.run(shutdown).await
        }),
    }
}

/// A replica with its listeners bound, ready to run on the current runtime.
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
#[derive(Debug)]
pub struct Server {
    config: ValidConfig,
    listeners: Listeners,
    layout: Layout,
    reload: Option<ReloadSource<ValidConfig>>,
}

impl Server {
    /// Binds `config.server`'s listeners. Must be called inside a Tokio runtime.
    pub fn bind(config: ValidConfig) -> Result<Self, ServeError> {
        let listeners = Listeners {
            public: bind_addr(config.server.listen)?,
            admin: bind_addr(config.server.admin_listen)?,
        };
        Ok(Self::with_listeners(config, listeners))
    }

    /// Like [`bind`](Self::bind), the public port open to sharing with the
    /// per-core runtimes.
    fn bind_shared_port(config: ValidConfig) -> Result<Self, ServeError> {
        let listeners = Listeners {
            public: bind_socket(config.server.listen, true)?,
            admin: bind_addr(config.server.admin_listen)?,
        };
        Ok(Self::with_listeners(config, listeners))
    }

    /// A server on listeners bound by the caller (`config.server.listen`
    /// and `admin_listen` are then not used).
    pub fn with_listeners(config: ValidConfig, listeners: Listeners) -> Self {
        Self {
            config,
            listeners,
            layout: Layout::OneRuntime,
            reload: None,
        }
    }

    /// The bound public address (the real port when the config said 0).
    pub fn public_addr(&self) -> SocketAddr {
        local_addr(&self.listeners.public)
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        local_addr(&self.listeners.admin)
    }

    /// Connects the configured store, then serves until `shutdown` resolves
    /// and drains.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        stores::connect_and_run(self, shutdown).await
    }

    /// Serves with `store` (of any kind; tests pass their own) until
    /// `shutdown` resolves, then drains.
    pub async fn run_with_store<S: BucketStore>(
        self,
        store: S,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            config,
            listeners,
            layout,
            reload,
        } = self;
        startup::log_startup(&listeners, &config, store.kind());
        let runtimes = layout.runtimes();
        if let Layout::PerCore { threads } = layout {
            tracing::info!(threads, "Runtime: one current-thread runtime per core.");
        }
        let shared = Arc::new(Shared::new(&config, store));
        // Each runtime's handler: the shared part and an upstream client of
        // its own. A pooled connection's task lives on the runtime that
        // opened it, so a pool shared across runtimes would make a request
        // on one wake a connection task on another (a cross-thread wake-up
        // per request, measured by `just perf` as context switches).
        let runtime_gateway =
            || Arc::new(Gateway::new(shared.clone(), Proxy::new(&config.upstream)));
        let options = PublicOptions {
            max_connections: (config.server.max_connections / runtimes).max(1),
            grace: config.server.shutdown_grace,
            idle_timeout: config.server.idle_timeout,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        // Port 0 in the config: every runtime joins the port the first one got.
        let addr = listeners.public.local_addr()?;
        if let Some(source) = reload {
            let watch = config.server.watch_config.then_some(reload::WATCH_EVERY);
            reload::spawn_reloader(shared.clone(), source, watch, stopped(stop_rx.clone()))?;
        }
        let others = runtimes::spawn_runtimes(runtimes, addr, runtime_gateway, &options, &stop_rx)?;
        let admin = tokio::spawn(serve_admin(
            shared.clone(),
            listeners.admin,
            stopped(stop_rx.clone()),
        ));
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("Shutdown requested; draining in-flight requests.");
            let _ = stop_tx.send(true);
        });
        serve_public(
            runtime_gateway(),
            listeners.public,
            options,
            stopped(stop_rx),
        )
        .await;
        let mut result = Ok(());
        for finished in others {
            let outcome = finished.await.unwrap_or(Err(ServeError::RuntimeDied));
            if let Err(err) = outcome {
                tracing::error!(error = %err, "A runtime thread failed.");
                result = Err(err);
            }
        }
        let _ = admin.await;
        tracing::info!("Gateway stopped.");
        result
    }
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound TCP listener has an address")
}

/// One runtime's share of the public listener's settings.
#[derive(Debug, Clone)]
struct PublicOptions {
    max_connections: usize,
    grace: Duration,
    idle_timeout: Duration,
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves the public port with `gateway` until `shutdown`, then drains.
async fn serve_public<S: BucketStore>(
    gateway: Arc<Gateway<S>>,
    listener: TcpListener,
    options: PublicOptions,
    shutdown: impl Future<Output = ()>,
) {
    let connections = gateway.shared().metrics().connections().clone();
    serve_http(
        listener,
        move |req, peer| {
            let gateway = gateway.clone();
            async move { gateway.handle(req, peer).await }
        },
        shutdown,
        ServeOptions {
            max_connections: options.max_connections,
            grace: options.grace,
            connections: Some(connections),
            idle_timeout: options.idle_timeout,
        },
    )
    .await;
}

/// Serves `/healthz`, `/readyz` and `/metrics` for `shared` until `shutdown`.
pub async fn serve_admin<A: AdminSource>(
    shared: Arc<A>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    serve_http(
        listener,
        move |req, _peer| admin::handle(shared.clone(), req),
        shutdown,
        ServeOptions {
            max_connections: 256,
            grace: Duration::from_secs(1),
            ..ServeOptions::default()
        },
    )
    .await;
}

/// Runs the demo backend `name` on `listener` until `shutdown` resolves.
pub async fn run_mock_backend(
    listener: TcpListener,
    name: &str,
    shutdown: impl Future<Output = ()> + Send,
) {
    mock_backend::serve(listener, mock_backend::Backend::new(name), shutdown).await;
}

/// Runs the demo backend `name` on `listen` on its own multi-thread runtime
/// until `shutdown` resolves. Blocks the calling thread.
pub fn serve_mock_backend(
    listen: SocketAddr,
    name: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    runtimes::multi_thread(runtimes::thread_count(0))?.block_on(async {
        let listener = bind_addr(listen)?;
        tracing::info!(%listen, %name, "Mock backend started.");
        run_mock_backend(listener, name, shutdown).await;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere). Poll it inside a runtime.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
