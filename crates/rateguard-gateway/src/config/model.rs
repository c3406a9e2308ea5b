//! The checked configuration the gateway runs on: [`ValidConfig`].

use std::time::Duration;

use std::collections::HashSet;
use std::sync::Arc;

use http::header::HeaderName;
use http::uri::Authority;
use http::Method;
use ipnet::IpNet;
use rateguard_contract::LimitKey;
use rateguard_core::Quota;

use super::{RawConfig, ServerConfig, StoreConfig};

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Listeners and replica identity.
    pub server: ServerConfig,
    /// The backend.
    pub upstream: UpstreamConfig,
    /// The bucket store.
    pub store: StoreConfig,
    /// Client identification.
    pub identity: IdentityConfig,
    /// Policies in file order.
    pub policies: Vec<PolicyConfig>,
    /// The file as read (overrides applied), which this was checked from:
    /// what `GET /config` shows and a reload compares.
    pub raw: RawConfig,
}

/// `[upstream]`, checked.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The URL as written.
    pub url: String,
    /// `host:port` requests are sent to.
    pub authority: Authority,
    /// Path prepended to every request path (`""` for none).
    pub base_path: String,
    /// Time allowed for response headers.
    pub timeout: Duration,
    /// Idle pooled connections kept.
    pub pool_max_idle: usize,
}

/// `[identity]`, checked.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The API-key header.
    pub api_key_header: HeaderName,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// SHA-256 digests of the known API keys (`identity.api_keys_file`);
    /// `None`: every key is believed.
    pub known_api_keys: Option<Arc<HashSet<[u8; 32]>>>,
}

/// One policy, checked.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Name (1-64 of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// Path prefix; `None` for the default policy.
    pub path_prefix: Option<String>,
    /// The methods it applies to; `None`: every method.
    pub methods: Option<Vec<Method>>,
    /// Tokens one request spends from each limit (at most every limit's capacity).
    pub cost: u32,
    /// Its limits, in file order (at least one, distinct names): a
    /// request is allowed only if every limit that applies to it allows it.
    /// The single-limit form is one limit named `client`, keyed by client.
    pub limits: Vec<LimitConfig>,
    /// Shadow mode (`shadow = true`): the buckets are evaluated and consumed
    /// as usual, but a denial is only counted (`decision="shadow_denied"`)
    /// and the request is forwarded, for rolling out a new limit safely.
    pub shadow: bool,
}

impl PolicyConfig {
    /// A default policy (no prefix, every method, cost 1) with one limit
    /// keyed by client, as the single-limit form of the file gives it.
    pub fn single(name: impl Into<String>, quota: Quota) -> Self {
        Self {
            name: name.into(),
            path_prefix: None,
            methods: None,
            cost: 1,
            limits: vec![LimitConfig {
                name: rateguard_core::key::DEFAULT_LIMIT.to_owned(),
                key: LimitKey::Client,
                quota,
            }],
            shadow: false,
        }
    }
}

impl PolicyConfig {
    /// One line for the start-up log:
    /// `login(/api/login POST: per-client 5/50s, per-ip 20/20s; cost 1)`.
    pub fn summary(&self) -> String {
        let methods = self.methods.as_ref().map_or(String::new(), |m| {
            let names: Vec<&str> = m.iter().map(Method::as_str).collect();
            format!(" {}", names.join(","))
        });
        let limits: Vec<String> = self
            .limits
            .iter()
            .map(|l| {
                format!(
                    "{} by {} {}/{}s",
                    l.name,
                    l.key,
                    l.quota.capacity(),
                    l.quota.fill_time().as_secs_f64()
                )
            })
            .collect();
        format!(
            "{}({}{methods}: {}; cost {}{})",
            self.name,
            self.path_prefix.as_deref().unwrap_or("*"),
            limits.join(", "),
            self.cost,
            if self.shadow { ", shadow" } else { "" }
        )
    }
}

/// One limit of a policy, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitConfig {
    /// Name (1-64 of `[A-Za-z0-9_.-]`), unique in its policy.
    pub name: String,
    /// What it counts requests by.
    pub key: LimitKey,
    /// Bucket shape.
    pub quota: Quota,
}
