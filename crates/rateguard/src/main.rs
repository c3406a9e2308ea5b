//! `rateguard`: the binary. Parses the command line, reads `.env` and the
//! `RATEGUARD_*` environment, sets up tracing, picks the store kind, and
//! hands over to `rateguard_gateway`. The only place that knows about clap,
//! anyhow and the environment.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rateguard_gateway::config::{self, RawConfig, StoreKind, ValidConfig};
use rateguard_gateway::{bind, bind_addr, run, run_mock_backend, ConfigErrors};
use rateguard_store::{
    FredClusterStore, MemoryStore, RedisLuaStore, RedisOptions, RedisPipelinedStore,
};

mod cli;

use cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    // Before any thread exists: dotenvy sets process variables. Variables
    // already set win over the file.
    let _ = dotenvy::dotenv();
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
    RawConfig::from_table(table)?.validate()
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

fn serve(path: &Path, listen: Option<String>, replica_id: Option<String>) -> anyhow::Result<()> {
    let config = load_config(
        path,
        &[("server.listen", listen), ("server.replica_id", replica_id)],
    )
    .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
    runtime()?.block_on(async move {
        let listeners = bind(&config.server).await?;
        match config.store.kind {
            StoreKind::Memory => {
                let store = MemoryStore::new();
                store.spawn_eviction(Duration::from_secs(30));
                run(listeners, &config, store, shutdown_signal()).await;
            }
            StoreKind::RedisLua => {
                let store = RedisLuaStore::connect(&redis_options(&config)).await?;
                run(listeners, &config, store, shutdown_signal()).await;
            }
            StoreKind::RedisPipelined => {
                let store = RedisPipelinedStore::connect(&redis_options(&config)).await?;
                run(listeners, &config, store, shutdown_signal()).await;
            }
            StoreKind::FredCluster => {
                let store = FredClusterStore::connect(&redis_options(&config)).await?;
                run(listeners, &config, store, shutdown_signal()).await;
            }
        }
        Ok(())
    })
}

fn redis_options(config: &ValidConfig) -> RedisOptions {
    RedisOptions {
        urls: config.store.urls.clone(),
        timeout: config.store.timeout,
        batch_max: config.store.batch_max,
        batch_wait: config.store.batch_wait,
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
