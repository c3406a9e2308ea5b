//! The checked `[server]` and `[store]` sections every command runs on:
//! [`ServerConfig`], [`StoreConfig`].

use std::net::SocketAddr;
use std::time::Duration;

use rateguard_contract::{EncodedSlashes, GrpcDeniedStatus, OnError, RuntimeMode, StoreKind};
use rateguard_store::{LeaseOptions, RedisAccess, RedisOptions};

use crate::admin::AdminToken;

/// `[server]`, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public listener (HTTP for `serve`, gRPC for `rls`).
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Value of `X-RateGuard-Replica`.
    pub replica_id: String,
    /// Drain bound on shutdown.
    pub shutdown_grace: Duration,
    /// Connection limit.
    pub max_connections: usize,
    /// Idle client connections are closed after this.
    pub idle_timeout: Duration,
    /// How the binary runs its async runtime(s).
    pub runtime: RuntimeMode,
    /// Runtime threads (0 = one per core).
    pub threads: usize,
    /// What request paths may do with encoded slashes (the gateway's).
    pub encoded_slashes: EncodedSlashes,
    /// Reload when the files change, not only on `SIGHUP` ([`crate::reload`]).
    pub watch_config: bool,
    /// Upgraded connections (WebSocket) quiet for this long are closed;
    /// `None`: never (the gateway's).
    pub upgrade_idle_timeout: Option<Duration>,
    /// What a denied gRPC call is answered (the gateway's).
    pub grpc_denied_status: GrpcDeniedStatus,
    /// `[admin] token_file`'s token: the admin API's `/buckets` endpoints
    /// answer requests bearing it; `None`: they are off.
    pub admin_token: Option<AdminToken>,
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
    /// Redis stores: the local deny cache's size (`None`: no cache,
    /// `store.deny_cache = false`).
    pub deny_cache: Option<usize>,
    /// `on_error = "local"`: the share of each limit a replica enforces
    /// alone while the store fails is `1/replicas_hint`.
    pub replicas_hint: u32,
    /// Redis stores: TLS material (`tls_*`) and the Sentinel master
    /// (`sentinel_master`), as [`RedisAccess::from_raw`] checked them.
    pub access: RedisAccess,
    /// `redis-leased`: lease period, hot-key rate, keys tracked.
    pub lease: LeaseOptions,
}

impl StoreConfig {
    /// `[store]` as the Redis stores take it, TLS and Sentinel included
    /// (breaker threshold and first cooldown at their defaults).
    pub fn redis_options(&self) -> RedisOptions {
        RedisOptions {
            urls: self.urls.clone(),
            timeout: self.timeout,
            batch_max: self.batch_max,
            batch_wait: self.batch_wait,
            breaker_max_cooldown: self.breaker_max_cooldown,
            access: self.access.clone(),
            lease: self.lease,
            ..RedisOptions::default()
        }
    }
}
