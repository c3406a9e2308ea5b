//! One replica's life, whatever its frontend: [`run_replica`] (the
//! binary's one call) and [`Replica`].
//!
//! Bind both listeners (the public port shared across the per-core
//! runtimes with `SO_REUSEPORT`, or not) → connect the store `[store]`
//! names ([`rateguard_store::connect`]) → the [`Frontend`] builds its
//! service on it → [`Running::serve`]: the reloader (`SIGHUP`,
//! `watch_config`), the admin listener, the deny cache's reset poll
//! ([`admin::watch_resets`]), the shutdown fan-out ([`Stop`])
//! and the frontend's public listener until it has drained.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use rateguard_contract::RuntimeMode;
use rateguard_store::{BucketStore, StoreUser};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, AdminSource};
use crate::config::{ServerConfig, StoreConfig};
use crate::error::ServeError;
use crate::layout::{current_thread, multi_thread, thread_count, Layout};
use crate::listen::{bind_addr, bind_socket, Listeners};
use crate::reload::{self, Reload, ReloadSource};
use crate::shutdown::Stop;

/// What a frontend (the HTTP gateway, the gRPC Rate Limit Service) adds to
/// a replica: its config, its service on the store, its public listener.
pub trait Frontend: 'static {
    /// Its checked config (`[server]` and `[store]` included).
    type Config: Send + 'static;
    /// Why it stops with an error (a replica's start-up errors included).
    type Error: From<ServeError> + Send + 'static;

    /// `[server]`.
    fn server(config: &Self::Config) -> &ServerConfig;

    /// `[store]`.
    fn store(config: &Self::Config) -> &StoreConfig;

    /// The runtime layout it runs on; `server.runtime` unless it has only one.
    fn runtime(config: &Self::Config) -> RuntimeMode {
        Self::server(config).runtime
    }

    /// Builds its service on the connected `store` and serves it through
    /// `running` ([`Running::serve`]) until shutdown.
    fn run<S: BucketStore>(
        config: Self::Config,
        store: S,
        running: Running<Self::Config>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Runs one replica of `F` as `config.server` lays it out, reloading from
/// `reload` (if any), until `shutdown` resolves, then drains. Blocks the
/// calling thread; `shutdown` is polled on the replica's first runtime
/// (see [`shutdown_signal`]).
pub fn run_replica<F: Frontend>(
    config: F::Config,
    reload: Option<ReloadSource<F::Config>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), F::Error> {
    let threads = thread_count(F::server(&config).threads);
    match F::runtime(&config) {
        RuntimeMode::MultiThread => multi_thread(threads)?.block_on(async {
            let replica = Replica::<F>::bind(config)?.reloading(reload);
            replica.run(shutdown).await
        }),
        RuntimeMode::PerCore => current_thread()?.block_on(async {
            let replica = Replica::<F>::bind_per_core(config, threads)?.reloading(reload);
            replica.run(shutdown).await
        }),
    }
}

/// A replica with its listeners bound, ready to run on the current runtime.
pub struct Replica<F: Frontend> {
    config: F::Config,
    listeners: Listeners,
    layout: Layout,
    reload: Option<ReloadSource<F::Config>>,
}

impl<F: Frontend> std::fmt::Debug for Replica<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("listeners", &self.listeners)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<F: Frontend> Replica<F> {
    /// Binds `config.server`'s listeners. Must be called inside a Tokio runtime.
    pub fn bind(config: F::Config) -> Result<Self, ServeError> {
        let server = F::server(&config);
        let listeners = Listeners {
            public: bind_addr(server.listen)?,
            admin: bind_addr(server.admin_listen)?,
        };
        Ok(Self::with_listeners(config, listeners))
    }

    /// Like [`bind`](Self::bind), the public port open to sharing with
    /// `threads - 1` more runtimes, one per thread.
    fn bind_per_core(config: F::Config, threads: usize) -> Result<Self, ServeError> {
        let server = F::server(&config);
        let listeners = Listeners {
            public: bind_socket(server.listen, true)?,
            admin: bind_addr(server.admin_listen)?,
        };
        Ok(Self {
            layout: Layout::PerCore { threads },
            ..Self::with_listeners(config, listeners)
        })
    }

    /// A replica on listeners bound by the caller (`server.listen` and
    /// `admin_listen` are then not used).
    pub fn with_listeners(config: F::Config, listeners: Listeners) -> Self {
        Self {
            config,
            listeners,
            layout: Layout::OneRuntime,
            reload: None,
        }
    }

    /// Reloads from `source` on `SIGHUP` (and, with `watch_config`, when
    /// what it reads changes).
    pub fn reloading(self, source: Option<ReloadSource<F::Config>>) -> Self {
        Self {
            reload: source,
            ..self
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

    /// Connects the configured store, then serves until `shutdown`
    /// resolves and drains.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), F::Error> {
        let kind = F::store(&self.config).kind;
        let options = F::store(&self.config).redis_options();
        let connected = Connected {
            replica: self,
            shutdown,
        };
        rateguard_store::connect(kind, &options, connected)
            .await
            .map_err(|source| ServeError::Store { kind, source })?
    }

    /// Serves with `store` (of any kind; tests pass their own) until
    /// `shutdown` resolves, then drains.
    pub fn run_with_store<S: BucketStore>(
        self,
        store: S,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), F::Error>> + Send {
        let Self {
            config,
            listeners,
            layout,
            reload,
        } = self;
        let running = Running {
            watch_config: F::server(&config).watch_config,
            admin_token: F::server(&config).admin_token.clone(),
            listeners,
            layout,
            reload,
            shutdown: Box::pin(shutdown),
        };
        F::run(config, store, running)
    }
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound TCP listener has an address")
}

/// [`Replica::run`]'s use of the store once connected.
struct Connected<F: Frontend, D> {
    replica: Replica<F>,
    shutdown: D,
}

impl<F: Frontend, D: Future<Output = ()> + Send + 'static> StoreUser for Connected<F, D> {
    type Output = Result<(), F::Error>;

    fn run<S: BucketStore>(self, store: S) -> impl Future<Output = Self::Output> + Send {
        self.replica.run_with_store(store, self.shutdown)
    }
}

/// A replica on its connected store, for its frontend to serve.
pub struct Running<C> {
    listeners: Listeners,
    layout: Layout,
    watch_config: bool,
    admin_token: Option<admin::AdminToken>,
    reload: Option<ReloadSource<C>>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<C> std::fmt::Debug for Running<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("listeners", &self.listeners)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<C: Send + 'static> Running<C> {
    /// The bound listeners.
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Where the public listener is served.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Runs the admin listener on `service`, the reloader on `live` (if
    /// there is a reload source) and `public` (the frontend's listener)
    /// until shutdown; returns once `public` has drained and the admin
    /// listener stopped.
    pub async fn serve<A, R, P, F, E>(
        self,
        service: Arc<A>,
        live: Arc<R>,
        public: P,
    ) -> Result<(), E>
    where
        A: AdminSource,
        R: Reload<Config = C>,
        P: FnOnce(Public) -> F,
        F: Future<Output = Result<(), E>>,
        E: From<ServeError>,
    {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = Stop::new(stop_rx);
        if let Some(source) = self.reload {
            let watch = self.watch_config.then_some(reload::WATCH_EVERY);
            reload::spawn_reloader(live, source, watch, stop.clone().stopped())
                .map_err(ServeError::from)?;
        }
        tokio::spawn(admin::watch_resets(service.clone(), stop.clone().stopped()));
        let admin = tokio::spawn(admin::serve(
            service,
            self.listeners.admin,
            self.admin_token,
            stop.clone().stopped(),
        ));
        let shutdown = self.shutdown;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("Shutdown requested; draining in-flight requests.");
            let _ = stop_tx.send(true);
        });
        let result = public(Public {
            listener: self.listeners.public,
            layout: self.layout,
            stop,
        })
        .await;
        let _ = admin.await;
        result
    }
}

/// The public listener, for the frontend to serve until [`Stop`].
#[derive(Debug)]
pub struct Public {
    /// The listener (the first runtime's, in the per-core layout).
    pub listener: TcpListener,
    /// Where it is served.
    pub layout: Layout,
    /// Resolves when the replica is to shut down.
    pub stop: Stop,
}
