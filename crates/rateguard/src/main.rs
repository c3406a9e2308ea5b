//! `rateguard`: the binary. Parses the command line, reads `.env` and the
//! `RATEGUARD_*` environment, sets up tracing, and hands over to
//! `rateguard_gateway::serve`. The only place that knows about clap, anyhow
//! and the environment.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use rateguard_gateway::config::{self, ValidConfig};
use rateguard_gateway::{serve_mock_backend, shutdown_signal, ConfigErrors};

mod cli;

use cli::{Cli, Command, LogFormat};

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
        Command::MockBackend { listen, name } => {
            report(serve_mock_backend(listen, &name, shutdown_signal()).map_err(Into::into))
        }
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

/// The config file, then `RATEGUARD_*` variables (`.env` included), then
/// flags; validated.
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
                c.store.kind,
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

fn serve(path: &Path, listen: Option<String>, replica_id: Option<String>) -> anyhow::Result<()> {
    let config = load_config(
        path,
        &[("server.listen", listen), ("server.replica_id", replica_id)],
    )
    .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
    Ok(rateguard_gateway::serve(config, shutdown_signal())?)
}
