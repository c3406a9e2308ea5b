//! `rateguard`: the binary. Parses the command line, reads `.env` and the
//! `RATEGUARD_*` environment, sets up tracing, and hands over to
//! `rateguard_gateway::serve_reloading` (or `rateguard_rls::serve_reloading`),
//! each a frontend of `rateguard_runtime`'s one replica lifecycle, with a
//! reload source for `SIGHUP`: the same file read again with the same
//! overrides. The only place that knows about clap, anyhow and the
//! environment.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use rateguard_gateway::config::ValidConfig;
use rateguard_rls::RlsConfig;
use rateguard_runtime::config;
use rateguard_runtime::{shutdown_signal, ConfigError, ConfigErrors, ReloadSource};

mod bucket;
mod cli;
mod keys;

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
        Command::Rls { config, listen } => report(rls(&config, listen)),
        Command::Bucket { action } => report(bucket::run(action)),
        Command::Keys { config, action } => report(keys::run(config.as_deref(), action)),
        Command::MockBackend { listen, name } => report(
            rateguard_mock_backend::run_blocking(listen, &name, shutdown_signal())
                .map_err(Into::into),
        ),
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
/// flags, as a table.
fn read_config(path: &Path, flags: &[(&str, Option<String>)]) -> Result<toml::Table, ConfigErrors> {
    read_with(path, &overrides(flags))
}

/// The `RATEGUARD_*` variables (`.env` included), then the flags given: the
/// overrides, in the order they apply.
fn overrides(flags: &[(&str, Option<String>)]) -> Vec<(String, String)> {
    let mut all = cli::env_overrides(std::env::vars());
    for (key, value) in flags {
        if let Some(value) = value {
            all.push(((*key).to_owned(), value.clone()));
        }
    }
    all
}

/// The config file with `overrides` applied, as a table.
fn read_with(path: &Path, overrides: &[(String, String)]) -> Result<toml::Table, ConfigErrors> {
    let mut table = config::read_table(path)?;
    for (key, value) in overrides {
        config::apply_override(&mut table, key, value)?;
    }
    Ok(table)
}

/// [`read_config`], validated for `serve`, and how to read it again for a
/// reload: the same file with the same overrides, collected now (the
/// environment a reload sees is the one the process started with).
fn load_config(
    path: &Path,
    flags: &[(&str, Option<String>)],
) -> Result<(ValidConfig, ReloadSource<ValidConfig>), ConfigErrors> {
    let overrides = overrides(flags);
    let config = rateguard_gateway::config::load_table(read_with(path, &overrides)?)?;
    let path = path.to_owned();
    let reload = ReloadSource::new(move || {
        rateguard_gateway::config::load_table(read_with(&path, &overrides)?)
    });
    Ok((config, reload))
}

/// [`read_config`], validated for `rls` (limits files relative to the
/// config file's directory), and how to read it again (file, limits
/// files and the overrides collected now) for a reload.
fn load_rls_config(
    path: &Path,
    flags: &[(&str, Option<String>)],
) -> Result<(RlsConfig, ReloadSource<RlsConfig>), ConfigErrors> {
    let overrides = overrides(flags);
    let load = move |path: &Path| {
        config::load_table_with(read_with(path, &overrides)?, |raw| {
            rateguard_rls::config::validate(raw, config_dir(path))
        })
    };
    let config = load(path)?;
    let path = path.to_owned();
    Ok((config, ReloadSource::new(move || load(&path))))
}

fn config_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Checks what the file configures: the gateway (`upstream.url`, or no
/// `[rls]` limits), the Rate Limit Service (`[rls] limits`), or both;
/// every problem found, reading and checking. A valid gateway config may
/// still get warnings (`warning: ...` on stderr, exit code 0) for what it
/// allows that was likely not meant.
fn check_config(path: &Path) -> ExitCode {
    let (raw, read_errors) = match read_config(path, &[]) {
        Ok(table) => config::read(table),
        Err(errors) => return print_errors(&errors.0),
    };
    let mut errors = read_errors;
    let mut ok = Vec::new();
    let mut warnings = Vec::new();
    if let Some(raw) = raw {
        if !raw.upstream.url.is_empty() || raw.rls.limits.is_empty() {
            match rateguard_gateway::config::validate(&raw) {
                Ok(c) => {
                    warnings = rateguard_gateway::config::warnings(&c);
                    ok.push(format!(
                        "store {}, {} policies, upstream {}",
                        c.store.kind,
                        c.policies.len(),
                        c.upstream.url
                    ));
                }
                Err(more) => config::add_unreported(&mut errors, more),
            }
        }
        if !raw.rls.limits.is_empty() {
            match rateguard_rls::config::validate(&raw, config_dir(path)) {
                Ok(c) => ok.push(format!(
                    "rls: store {}, {} domains, {} rules in {} limits files",
                    c.store.kind,
                    c.limits.domains().count(),
                    c.limits.rules().len(),
                    c.limit_files.len()
                )),
                Err(more) => {
                    // [server] and [store] problems were reported above already.
                    let fresh: Vec<ConfigError> =
                        more.0.into_iter().filter(|e| !errors.contains(e)).collect();
                    errors.extend(fresh);
                }
            }
        }
    }
    if !errors.is_empty() {
        return print_errors(&errors);
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    for line in ok {
        println!("{}: ok ({line})", path.display());
    }
    ExitCode::SUCCESS
}

fn print_errors(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    ExitCode::FAILURE
}

fn serve(path: &Path, listen: Option<String>, replica_id: Option<String>) -> anyhow::Result<()> {
    let (config, reload) = load_config(
        path,
        &[("server.listen", listen), ("server.replica_id", replica_id)],
    )
    .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
    Ok(rateguard_gateway::serve_reloading(
        config,
        Some(reload),
        shutdown_signal(),
    )?)
}

fn rls(path: &Path, listen: Option<String>) -> anyhow::Result<()> {
    let (config, reload) = load_rls_config(path, &[("server.listen", listen)])
        .map_err(|e| anyhow::anyhow!("invalid config {}:\n{e}", path.display()))?;
    Ok(rateguard_rls::serve_reloading(
        config,
        Some(reload),
        shutdown_signal(),
    )?)
}
