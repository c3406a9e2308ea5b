//! `rateguard`: the binary. Parses the command line, reads `.env` and the
//! `RATEGUARD_*` environment, sets up tracing, picks the store kind, and
//! hands over to `rateguard_gateway`. The only place that knows about clap,
//! anyhow and the environment.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rateguard_gateway::config::{self, RuntimeMode, StoreKind, ValidConfig};
use rateguard_gateway::{
    bind, bind_addr, bind_socket, log_startup, run, run_mock_backend, serve_admin, serve_public,
    ConfigErrors, Gateway, Listeners,
};
use rateguard_store::{
    BucketStore, FredClusterStore, MemoryStore, RedisLuaStore, RedisOptions, RedisPipelinedStore,
};

mod cli;

use cli::{Cli, Command, LogFormat};
use tokio::sync::{oneshot, watch};

fn main() -> ExitCode {
    // Before any thread exists: dotenvy sets process variables. Variables
    // already set win over the file.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            eprintln!("error: cannot read .env: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve {
            config,
            listen,
            replica_id,
        } => report(serve(&config, listen, replica_id)),
        Command::MockBackend { listen, name } => report(runtime().and_then(|rt| {
            rt.block_on(async {
                let listener = bind_addr(listen)?;
                tracing::info!(%listen, %name, "Mock backend started.");
                run_mock_backend(listener, &name, shutdown_signal()).await;
                Ok(())
            })
        })),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RATEGUARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The config file, then `RATEGUARD_*` variables, then flags; validated.
fn load_config(path: &Path, flags: &[(&str, Option<String>)]) -> Result<ValidConfig, ConfigErrors> {
    let mut table = config::read_table(path)?;
    for (key, value) in cli::env_overrides(std::env::vars()) {
        config::apply_override(&mut table, &key, &value)?;
    }
    for (key, value) in flags {
        if let Some(value) = value {
            config::apply_override(&mut table, key, value)?;
        }
    }
    config::load_table(table)
}

fn check_config(path: &Path) -> ExitCode {
    match load_config(path, &[]) {
        Ok(c) => {
            println!(
                "{}: ok (store {}, {} policies, upstream {})",
                path.display(),
                c.store.kind.as_str(),
                c.policies.len(),
                c.upstream.url
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")
}

fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn serve(path: &Path, listen: Option<String>, replica_id: Option<String>) -> anyhow::Result<()> {
    let config = load_config(
        path,
        &[("server.listen", listen), ("server.replica_id", replica_id)],
    )
    .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
    let threads = match config.server.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    match config.server.runtime {
        RuntimeMode::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .context("cannot start the Tokio runtime")?
            .block_on(start(config, None)),
        RuntimeMode::PerCore => current_thread_runtime()
            .context("cannot start the Tokio runtime")?
            .block_on(start(config, Some(threads))),
    }
}

/// Connects the configured store, then serves with it.
async fn start(config: ValidConfig, per_core: Option<usize>) -> anyhow::Result<()> {
    match config.store.kind {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            store.spawn_eviction(Duration::from_secs(30));
            launch(config, store, per_core).await
        }
        StoreKind::RedisLua => {
            let store = RedisLuaStore::connect(&redis_options(&config)).await?;
            launch(config, store, per_core).await
        }
        StoreKind::RedisPipelined => {
            let store = RedisPipelinedStore::connect(&redis_options(&config)).await?;
            launch(config, store, per_core).await
        }
        StoreKind::FredCluster => {
            let store = FredClusterStore::connect(&redis_options(&config)).await?;
            launch(config, store, per_core).await
        }
    }
}

/// Serves one replica: on this multi-thread runtime (`per_core = None`), or
/// on this current-thread runtime plus `n - 1` more threads, each with its
/// own runtime and `SO_REUSEPORT` listener, all sharing one [`Gateway`].
async fn launch<S: BucketStore>(
    config: ValidConfig,
    store: S,
    per_core: Option<usize>,
) -> anyhow::Result<()> {
    let Some(threads) = per_core else {
        let listeners = bind(&config.server).await?;
        run(listeners, &config, store, shutdown_signal()).await;
        return Ok(());
    };
    let listeners = Listeners {
        public: bind_socket(config.server.listen, true)?,
        admin: bind_addr(config.server.admin_listen)?,
    };
    // Port 0 in the config: every runtime joins the port the first one got.
    let addr = listeners.public.local_addr()?;
    log_startup(&listeners, &config, store.name());
    tracing::info!(threads, "Runtime: one current-thread runtime per core.");
    let gateway = Arc::new(Gateway::new(&config, store));
    let max_per_runtime = (config.server.max_connections / threads).max(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut finished = Vec::new();
    for i in 1..threads {
        let (gateway, server, rx) = (gateway.clone(), config.server.clone(), stop_rx.clone());
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("rateguard-rt-{i}"))
            .spawn(move || {
                let result = current_thread_runtime()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        rt.block_on(async move {
                            let listener = bind_socket(addr, true)?;
                            serve_public(gateway, listener, &server, max_per_runtime, stopped(rx))
                                .await;
                            Ok(())
                        })
                    });
                let _ = done_tx.send(result);
            })
            .context("cannot start a runtime thread")?;
        finished.push(done_rx);
    }
    let admin = tokio::spawn(serve_admin(
        gateway.clone(),
        listeners.admin,
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutdown requested; draining in-flight requests.");
        let _ = stop_tx.send(true);
    });
    serve_public(
        gateway,
        listeners.public,
        &config.server,
        max_per_runtime,
        stopped(stop_rx),
    )
    .await;
    for done in finished {
        done.await.context("runtime thread died")??;
    }
    let _ = admin.await;
    tracing::info!("Gateway stopped.");
    Ok(())
}

fn redis_options(config: &ValidConfig) -> RedisOptions {
    RedisOptions {
        urls: config.store.urls.clone(),
        timeout: config.store.timeout,
        batch_max: config.store.batch_max,
        batch_wait: config.store.batch_wait,
        breaker_max_cooldown: config.store.breaker_max_cooldown,
        ..RedisOptions::default()
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
