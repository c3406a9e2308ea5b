//! The checked configuration the gateway runs on: [`ValidConfig`].

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use http::header::HeaderName;
use http::uri::Authority;
use http::Method;
use ipnet::IpNet;
use rateguard_contract::LimitKey;
use rateguard_core::Quota;

use super::{RawConfig, ServerConfig, StoreConfig, UpstreamProtocol};

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
    /// Plans in file order (a key's plan is an index into it).
    pub plans: Vec<PlanConfig>,
    /// `identity.keys = "redis"`: the known keys and their plans come from
    /// the store's Redis ([`crate::registry`]); the value is
    /// `identity.keys_max_stale_ms`. `None`: from `api_keys_file`, if any.
    pub key_registry: Option<Duration>,
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
    /// HTTP/1.1 or h2c to the backend.
    pub protocol: UpstreamProtocol,
}

/// `[identity]`, checked.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The API-key header.
    pub api_key_header: HeaderName,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// SHA-256 digests of the known API keys (`identity.api_keys_file`),
    /// each with its plan (an index into [`ValidConfig::plans`]) if the
    /// file names one; `None`: every key is believed, none has a plan.
    pub known_api_keys: Option<Arc<KnownKeys>>,
    /// The network sizes a client address is counted as.
    pub ip_prefixes: IpPrefixes,
}

/// The known API keys: SHA-256 digest → plan index (`None`: the
/// policies' own quotas).
pub type KnownKeys = HashMap<[u8; 32], Option<usize>>;

/// One `[[plans]]` entry, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    /// Name (1-64 of `[A-Za-z0-9_.-]`), unique among plans.
    pub name: String,
    /// The limits whose quota it replaces, in file order.
    pub limits: Vec<PlanLimitConfig>,
}

/// One `[[plans.limits]]` entry, checked: it names an existing limit.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanLimitConfig {
    /// The limit's name.
    pub limit: String,
    /// Only in this policy; `None`: in every policy with such a limit.
    pub policy: Option<String>,
    /// The quota for the plan's keys; `None`: `unlimited = true`.
    pub quota: Option<Quota>,
}

impl PlanConfig {
    /// What the plan gives limit `limit` of policy `policy`: `None` when
    /// the plan does not name it (the policy's own quota applies), else
    /// `Some(None)` for unlimited or `Some(Some(quota))`. An entry naming
    /// the policy wins over one for every policy.
    pub fn quota_for(&self, policy: &str, limit: &str) -> Option<Option<Quota>> {
        let named = |l: &&PlanLimitConfig| l.limit == limit;
        self.limits
            .iter()
            .filter(named)
            .find(|l| l.policy.as_deref() == Some(policy))
            .or_else(|| {
                self.limits
                    .iter()
                    .filter(named)
                    .find(|l| l.policy.is_none())
            })
            .map(|l| l.quota)
    }
}

/// `identity.ipv4_prefix` and `identity.ipv6_prefix`: a client address
/// counts as its network of this many leading bits ([`crate::identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefixes {
    /// Bits of an IPv4 address kept (8-32).
    pub v4: u8,
    /// Bits of an IPv6 address kept (32-128).
    pub v6: u8,
}

impl Default for IpPrefixes {
    /// Whole IPv4 addresses, IPv6 /64s.
    fn default() -> Self {
        Self { v4: 32, v6: 64 }
    }
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
