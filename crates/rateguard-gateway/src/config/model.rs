//! The checked configuration the gateway runs on: [`ValidConfig`].

use std::net::SocketAddr;
use std::time::Duration;

use http::header::HeaderName;
use http::uri::Authority;
use ipnet::IpNet;
use rateguard_core::Quota;

use super::{EncodedSlashes, OnError, RuntimeMode, StoreKind};

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
}

/// `[server]`, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Value of `X-RateGuard-Replica`.
    pub replica_id: String,
    /// Drain bound on shutdown.
    pub shutdown_grace: Duration,
    /// Connection limit.
    pub max_connections: usize,
    /// How the binary runs its async runtime(s).
    pub runtime: RuntimeMode,
    /// Runtime threads (0 = one per core).
    pub threads: usize,
    /// What request paths may do with encoded slashes ([`crate::path`]).
    pub encoded_slashes: EncodedSlashes,
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

/// `[store]`, checked.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The kind.
    pub kind: StoreKind,
    /// Redis URLs (empty for memory).
    pub urls: Vec<String>,
    /// Budget of one decision.
    pub timeout: Duration,
    /// Failure rule.
    pub on_error: OnError,
    /// Pipelined store: most decisions per pipeline.
    pub batch_max: usize,
    /// Pipelined store: how long a batch waits to fill.
    pub batch_wait: Duration,
    /// Redis stores: longest pause between probes of a failing store.
    pub breaker_max_cooldown: Duration,
}

/// `[identity]`, checked.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The API-key header.
    pub api_key_header: HeaderName,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// One policy, checked.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Name (1-64 of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// Path prefix; `None` for the default policy.
    pub path_prefix: Option<String>,
    /// Bucket shape.
    pub quota: Quota,
    /// Shadow mode (`shadow = true`): the bucket is evaluated and consumed
    /// as usual, but a denial is only counted (`decision="shadow_denied"`)
    /// and the request is forwarded, for rolling out a new limit safely.
    pub shadow: bool,
}
