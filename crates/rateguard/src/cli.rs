//! Command-line arguments and the `RATEGUARD_*` environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use rateguard_runtime::config::env_key;

/// RateGuard: a distributed rate-limiting HTTP gateway.
#[derive(Debug, Parser)]
#[command(name = "rateguard", version, about)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "RATEGUARD_LOG_FORMAT"
    )]
    pub(crate) log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a gateway replica.
    Serve {
        /// The TOML config file.
        #[arg(long, env = "RATEGUARD_CONFIG")]
        config: PathBuf,
        /// Public listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Replica id (overrides server.replica_id).
        #[arg(long)]
        replica_id: Option<String>,
    },
    /// Run an Envoy Rate Limit Service (gRPC) on the same stores, with
    /// envoyproxy/ratelimit's limits files (`[rls] limits`).
    Rls {
        /// The TOML config file.
        #[arg(long, env = "RATEGUARD_CONFIG")]
        config: PathBuf,
        /// gRPC listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate a config file (and its `[rls]` limits files); exit 1 with
    /// one line per problem.
    CheckConfig {
        /// The TOML config file.
        #[arg(long, env = "RATEGUARD_CONFIG")]
        config: PathBuf,
    },
    /// See or reset one bucket through a replica's admin API (`/buckets`,
    /// which needs `[admin] token_file` on the replica).
    Bucket {
        /// `show` (read without spending) or `reset` (full again).
        #[command(subcommand)]
        action: BucketAction,
    },
    /// Provision API keys and their plans: in the store's Redis with
    /// `identity.keys = "redis"` (every replica sees a change within a
    /// second), else print the `identity.api_keys_file` line.
    Keys {
        /// The TOML config file (its `[store]`, `[identity]`, `[[plans]]`).
        #[arg(long, env = "RATEGUARD_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Run the demo backend: JSON naming this backend, for any path.
    MockBackend {
        /// Listen address.
        #[arg(long)]
        listen: SocketAddr,
        /// Name reported in the body and the `X-Backend` header.
        #[arg(long)]
        name: String,
    },
}

/// The `RATEGUARD_<SECTION>_<KEY>` variables among `vars` as sorted config
/// overrides: `RATEGUARD_STORE_TIMEOUT_MS=75` → `("store.timeout_ms", "75")`.
pub(crate) fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .filter_map(|(name, value)| Some((env_key(&name)?, value)))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_section_variables_become_overrides() {
        let vars = [
            ("RATEGUARD_STORE_TIMEOUT_MS", "75"),
            ("RATEGUARD_SERVER_REPLICA_ID", "gw-9"),
            ("RATEGUARD_CONFIG", "x.toml"),
            ("RATEGUARD_LOG_FORMAT", "json"),
            ("RATEGUARD_STORE_", "x"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            env_overrides(vars.into_iter()),
            [
                ("server.replica_id".to_owned(), "gw-9".to_owned()),
                ("store.timeout_ms".to_owned(), "75".to_owned()),
            ]
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// `rateguard bucket …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BucketAction {
    /// Print the bucket as the requester's quota sees it (spends nothing).
    Show(BucketArgs),
    /// Make the bucket full again, on every replica (deny caches included).
    Reset(BucketArgs),
}

/// Which bucket, on which replica, with which token.
#[derive(Debug, clap::Args)]
pub(crate) struct BucketArgs {
    /// The replica's admin URL (`server.admin_listen`).
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub(crate) admin: String,
    /// The policy's name.
    #[arg(long)]
    pub(crate) policy: String,
    /// The limit's name (optional for a policy with one limit).
    #[arg(long)]
    pub(crate) limit: Option<String>,
    /// The API key, in clear (sent to the admin API only, never logged).
    #[arg(long, group = "who")]
    pub(crate) key: Option<String>,
    /// Read the API key from the first line of stdin (keeps it out of the
    /// shell history and the process list).
    #[arg(long, group = "who")]
    pub(crate) key_stdin: bool,
    /// The client address, for limits keyed by `ip` (or `client` without a key).
    #[arg(long, group = "who")]
    pub(crate) ip: Option<String>,
    /// The header value, for a `header:<name>` limit.
    #[arg(long, group = "who")]
    pub(crate) header: Option<String>,
    /// A file holding the admin token; else `RATEGUARD_ADMIN_TOKEN`.
    #[arg(long)]
    pub(crate) token_file: Option<PathBuf>,
}

/// `rateguard keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// Register a new key (on `--plan`, or on none).
    Add(KeyArgs),
    /// Move a registered key to `--plan` (or to none).
    SetPlan(KeyArgs),
    /// Unregister a key (its requests are then limited as their IP).
    Remove(KeyArgs),
    /// Print one key's digest and plan, as JSON.
    Show(KeyArgs),
    /// Print every registered digest and its plan (`-` for none).
    List,
}

/// One key (in clear: only its SHA-256 is stored) and a plan.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArgs {
    /// The API key, in clear.
    #[arg(long, group = "the_key")]
    pub(crate) key: Option<String>,
    /// Read the API key from the first line of stdin.
    #[arg(long, group = "the_key")]
    pub(crate) key_stdin: bool,
    /// A plan of the config's `[[plans]]` (add, set-plan).
    #[arg(long)]
    pub(crate) plan: Option<String>,
}
