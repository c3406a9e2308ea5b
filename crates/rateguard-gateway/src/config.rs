//! The configuration file: serde structs that mirror the TOML, loading,
//! overrides, and validation into a [`ValidConfig`].
//!
//! Parsing is two steps. [`RawConfig`] mirrors the file exactly
//! (`deny_unknown_fields` everywhere, so a typo is an error, never silently
//! ignored), keeping numbers and addresses loose enough that validation can
//! report the offending value (`policies[1].capacity: must be > 0, got -5`).
//! [`RawConfig::validate`] then checks everything at once and builds the
//! typed [`ValidConfig`] the gateway runs on.
//!
//! This module never reads the environment: the binary collects `RATEGUARD_*`
//! variables and command-line flags and passes them in as overrides
//! (see [`apply_override`]).

use std::path::Path;

use serde::Deserialize;

use crate::error::{ConfigError, ConfigErrors};

mod validate;

pub use validate::{
    IdentityConfig, OnError, PolicyConfig, RuntimeMode, ServerConfig, StoreConfig, StoreKind,
    UpstreamConfig, ValidConfig,
};

/// The whole file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: listeners and replica identity.
    #[serde(default)]
    pub server: RawServer,
    /// `[upstream]`: where allowed requests go.
    pub upstream: RawUpstream,
    /// `[store]`: where buckets live.
    #[serde(default)]
    pub store: RawStore,
    /// `[identity]`: how clients are told apart.
    #[serde(default)]
    pub identity: RawIdentity,
    /// `[[policies]]`: the limits.
    #[serde(default)]
    pub policies: Vec<RawPolicy>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Public listener, `host:port`.
    pub listen: String,
    /// Admin listener (`/healthz`, `/metrics`), `host:port`.
    pub admin_listen: String,
    /// Sent as `X-RateGuard-Replica`; defaults to the host name.
    pub replica_id: Option<String>,
    /// Longest time in-flight requests may take to finish on shutdown.
    pub shutdown_grace_ms: i64,
    /// Most client connections served at once; more wait in the accept queue.
    pub max_connections: i64,
    /// `per-core` (one single-threaded runtime per core sharing the port
    /// with `SO_REUSEPORT`) or `multi-thread` (one work-stealing runtime).
    pub runtime: String,
    /// Runtime threads; 0 = one per available core.
    pub threads: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            replica_id: None,
            shutdown_grace_ms: 10_000,
            max_connections: 20_000,
            runtime: "per-core".into(),
            threads: 0,
        }
    }
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` of the backend (or of its load balancer).
    pub url: String,
    /// Time allowed for the backend's response headers.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: i64,
    /// Idle keep-alive connections kept open to the upstream.
    #[serde(default = "default_pool_idle")]
    pub pool_max_idle: i64,
}

fn default_upstream_timeout() -> i64 {
    10_000
}

fn default_pool_idle() -> i64 {
    512
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `memory`, `redis-lua`, `redis-pipelined` or `fred-cluster`.
    pub kind: String,
    /// Redis URLs (cluster: any seed nodes); empty for `memory`.
    pub urls: Vec<String>,
    /// Time budget of one store decision.
    pub timeout_ms: i64,
    /// `allow` (fail open) or `deny` (fail closed, 503).
    pub on_error: String,
    /// `redis-pipelined`: most decisions per pipeline.
    pub batch_max: i64,
    /// `redis-pipelined`: how long a batch may wait to fill, in microseconds.
    pub batch_wait_us: i64,
    /// Redis stores: longest pause between probes of a store that keeps
    /// failing (the circuit breaker's cooldown doubles up to this). Bounds how
    /// long enforcement takes to resume after Redis returns.
    pub breaker_max_cooldown_ms: i64,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            kind: "memory".into(),
            urls: Vec::new(),
            timeout_ms: 50,
            on_error: "allow".into(),
            batch_max: 128,
            batch_wait_us: 200,
            breaker_max_cooldown_ms: 2000,
        }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIdentity {
    /// Header naming the client's API key.
    pub api_key_header: String,
    /// CIDRs (or plain addresses) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
}

impl Default for RawIdentity {
    fn default() -> Self {
        Self {
            api_key_header: "x-api-key".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// One `[[policies]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name used in headers, metrics and bucket keys.
    pub name: String,
    /// Requests whose path starts with this (longest wins); none = the default policy.
    pub path_prefix: Option<String>,
    /// Bucket size (the burst).
    pub capacity: i64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
    /// Shadow mode: evaluate and consume as usual, but never block.
    #[serde(default)]
    pub shadow: bool,
}

/// Keys whose value is a list: an override given as plain text is split at commas.
const LIST_KEYS: &[&str] = &["store.urls", "identity.trusted_proxies"];

/// Sets `key` (`section.name`, e.g. `store.timeout_ms`) to `value` in a parsed
/// TOML table, before [`RawConfig::from_table`] reads it.
///
/// `value` is read as a TOML value when it is one (`50`, `true`,
/// `["a", "b"]`) and as a string otherwise; for list keys, plain text is
/// split at commas. Only `[section]` keys can be overridden, not policies.
pub fn apply_override(table: &mut toml::Table, key: &str, value: &str) -> Result<(), ConfigError> {
    let Some((section, name)) = key.split_once('.') else {
        return Err(ConfigError::invalid(key, "override must be section.key"));
    };
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let value = match parsed {
        Some(v) if !LIST_KEYS.contains(&key) || v.is_array() => v,
        _ if LIST_KEYS.contains(&key) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_owned()),
    };
    let entry = table
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(section_table) = entry else {
        return Err(ConfigError::invalid(section, "expected a table"));
    };
    section_table.insert(name.to_owned(), value);
    Ok(())
}

/// Parses TOML text into a table (for [`apply_override`]).
pub fn parse_table(text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().to_owned()))
}

/// Reads a file into a table.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    parse_table(&text)
}

impl RawConfig {
    /// Reads the structs from a table; errors name the key path
    /// (`server.listn: unknown field ...`).
    pub fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // The TOML deserializer appends "in `key`" lines; the path says it.
            let inner = inner.lines().next().unwrap_or("").trim_end();
            let key = |name: &str| {
                if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                }
            };
            if let Some(missing) = inner
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                return ConfigError::invalid(key(missing), "required key is missing");
            }
            let message = inner
                .replace("unknown field", "unknown key")
                .replace("expected i64", "expected an integer")
                .replace("expected f64", "expected a number");
            if path == "." {
                ConfigError::Syntax(message)
            } else {
                ConfigError::invalid(path, message)
            }
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_table(parse_table(text)?)
    }
}

/// Parses and validates TOML text in one go (tests, `check-config`).
pub fn load_str(text: &str) -> Result<ValidConfig, ConfigErrors> {
    RawConfig::from_toml(text)?.validate()
}

#[cfg(test)]
mod tests;
