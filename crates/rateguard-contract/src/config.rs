//! The gateway's TOML file as written: raw serde structs, both ways.
//!
//! Every struct is `deny_unknown_fields`, so a typo in a key is an error,
//! never silently ignored. Numbers and addresses stay loose (`i64`,
//! `String`) so the gateway's validation can report the offending value
//! (`policies[1].capacity: must be > 0, got -5`); closed sets of names
//! ([`StoreKind`], [`OnError`], [`RuntimeMode`], [`EncodedSlashes`]) are enums, parsed by serde
//! with an error listing the valid names.
//!
//! Adding a key is one field here with its default (in the section's
//! `Default` impl, or a `default = ...` function for `[upstream]` and
//! `[[policies]]`); the gateway's overrides (`RATEGUARD_STORE_URLS`, ...)
//! and the list of expected keys in error messages follow from the struct.
//!
//! A policy holds its limits in one of two forms: `capacity` and
//! `refill_per_sec` on the policy itself (one limit keyed by client, the
//! form from before layered limits), or a list of `[[policies.limits]]`
//! ([`RawLimit`]), each with its own [`LimitKey`]. The gateway's validation
//! says which combinations are wrong; the raw structs hold what was written.
//!
//! ```
//! use rateguard_contract::{LimitKey, RawConfig, RawLimit, RawPolicy, StoreKind};
//!
//! let mut config = RawConfig::new("http://127.0.0.1:9000");
//! config.store.kind = StoreKind::RedisLua;
//! config.store.urls = vec!["redis://127.0.0.1:6379".into()];
//! config.policies.push(RawPolicy::new("default", 100, 50.0));
//! config.policies.push(RawPolicy {
//!     path_prefix: Some("/api/login".into()),
//!     methods: Some(vec!["POST".into()]),
//!     ..RawPolicy::layered(
//!         "login",
//!         vec![
//!             RawLimit::new(LimitKey::Client, 5, 0.1).named("per-client"),
//!             RawLimit::new(LimitKey::Ip, 20, 1.0).named("per-ip"),
//!         ],
//!     )
//! });
//! assert_eq!(config.server.listen, "127.0.0.1:8080");
//! ```

use serde::{Deserialize, Serialize};

use crate::headers;
use crate::{LimitKey, StoreKind};

crate::vocabulary! {
    /// What to do when the store fails or times out (`store.on_error`).
    pub enum OnError ("value") {
        /// Let the request through (fail open).
        Allow = "allow",
        /// Answer `503` (fail closed).
        Deny = "deny",
        /// Enforce every limit in this replica's own memory, each capacity
        /// and refill rate divided by `store.replicas_hint`, until the store
        /// answers again (approximate limits, not none).
        Local = "local",
    }
}

crate::vocabulary! {
    /// How the gateway lays out its async runtime(s) (`server.runtime`).
    pub enum RuntimeMode ("value") {
        /// One current-thread runtime per core, each with its own
        /// `SO_REUSEPORT` listener (measured faster for this proxy on 2 cores).
        PerCore = "per-core",
        /// One multi-thread, work-stealing Tokio runtime.
        MultiThread = "multi-thread",
    }
}

crate::vocabulary! {
    /// What `rateguard rls` asks Envoy to add to responses (`rls.response_headers`).
    pub enum ResponseHeaders ("value") {
        /// Nothing beyond what Envoy derives from the statuses itself.
        None = "none",
        /// `RateLimit-Policy` and `RateLimit` (the IETF draft, as `serve` sends them).
        Ietf = "ietf",
    }
}

crate::vocabulary! {
    /// What the gateway does with an encoded slash or backslash (`%2F`,
    /// `%5C`) or a raw `\` in a request path (`server.encoded_slashes`).
    pub enum EncodedSlashes ("value") {
        /// Refuse the request with `400` (the default).
        Reject = "reject",
        /// Keep them as data inside a path segment (uppercased, never decoded).
        Keep = "keep",
    }
}

crate::vocabulary! {
    /// How the gateway talks to the backend (`upstream.protocol`).
    #[derive(Default)]
    pub enum UpstreamProtocol ("value") {
        /// HTTP/1.1 over pooled keep-alive connections (upgrades such as
        /// WebSocket pass through).
        #[default]
        Http1 = "http1",
        /// HTTP/2 without TLS, prior knowledge (gRPC backends).
        H2c = "h2c",
    }
}

crate::vocabulary! {
    /// Where the known API keys and their plans come from (`identity.keys`).
    pub enum KeySource ("value") {
        /// `identity.api_keys_file` (every key believed without it).
        File = "file",
        /// The store's Redis (`rateguard keys …`): every replica sees a
        /// change within a second, without a reload.
        Redis = "redis",
    }
}

impl KeySource {
    /// Whether it is the default, [`KeySource::File`] (left out of `/config`).
    pub fn is_file(&self) -> bool {
        *self == KeySource::File
    }
}

crate::vocabulary! {
    /// The gRPC status a denied gRPC call gets (`server.grpc_denied_status`).
    pub enum GrpcDeniedStatus ("value") {
        /// `RESOURCE_EXHAUSTED` (8): gRPC clients do not retry it by themselves.
        ResourceExhausted = "resource-exhausted",
        /// `UNAVAILABLE` (14): for clients that should retry (with backoff).
        Unavailable = "unavailable",
    }
}

impl GrpcDeniedStatus {
    /// The numeric `grpc-status`.
    pub const fn code(self) -> u8 {
        match self {
            GrpcDeniedStatus::ResourceExhausted => 8,
            GrpcDeniedStatus::Unavailable => 14,
        }
    }
}

/// The whole file. `serve` reads every section but `[rls]`; `rls` reads
/// `[server]`, `[store]` and `[rls]`, so one file can hold both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: listeners and replica identity.
    #[serde(default)]
    pub server: RawServer,
    /// `[upstream]`: where allowed requests go (`serve` requires `url`;
    /// `rls` does not read it).
    #[serde(default)]
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
    /// `[[plans]]`: per-consumer quotas that replace a policy limit's own
    /// for the API keys on the plan (`serve` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<RawPlan>,
    /// `[rls]`: the Envoy Rate Limit Service (`rateguard rls`).
    #[serde(default)]
    pub rls: RawRls,
    /// `[admin]`: who may use the admin API's bucket endpoints.
    #[serde(default, skip_serializing_if = "RawAdmin::is_default")]
    pub admin: RawAdmin,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// A file holding the bearer token of the admin API's `/buckets`
    /// endpoints (one line, surrounding whitespace ignored). None: those
    /// endpoints are off (`/healthz`, `/readyz`, `/metrics`, `/config` need
    /// no token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

impl RawAdmin {
    /// Whether nothing is set (the section is then left out of `/config`).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl RawConfig {
    /// Every section at its defaults, forwarding to `upstream_url`, no policies.
    pub fn new(upstream_url: impl Into<String>) -> Self {
        Self {
            server: RawServer::default(),
            upstream: RawUpstream::new(upstream_url),
            store: RawStore::default(),
            identity: RawIdentity::default(),
            policies: Vec::new(),
            plans: Vec::new(),
            rls: RawRls::default(),
            admin: RawAdmin::default(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Public listener, `host:port`.
    pub listen: String,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`), `host:port`.
    pub admin_listen: String,
    /// Sent as `X-RateGuard-Replica`; defaults to the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
    /// Longest time in-flight requests may take to finish on shutdown.
    pub shutdown_grace_ms: i64,
    /// Most client connections served at once; more wait in the accept queue.
    pub max_connections: i64,
    /// A client connection that sends no request head for this long
    /// (before its first request or between two) is closed; an upgraded
    /// one (WebSocket) only by `upgrade_idle_timeout_ms`.
    pub idle_timeout_ms: i64,
    /// The runtime layout.
    pub runtime: RuntimeMode,
    /// Runtime threads; 0 = one per available core.
    pub threads: i64,
    /// `%2F`, `%5C` and `\` in request paths: refused or kept as data.
    pub encoded_slashes: EncodedSlashes,
    /// Reload when the config file (or a file it names: `api_keys_file`,
    /// the `rls` limits files) changes, checked every second, as well as
    /// on `SIGHUP`.
    pub watch_config: bool,
    /// An upgraded connection (WebSocket) with no bytes either way for
    /// this long is closed; none: never (`idle_timeout_ms` does not apply
    /// to upgraded connections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_idle_timeout_ms: Option<i64>,
    /// The `grpc-status` of a denied gRPC call.
    pub grpc_denied_status: GrpcDeniedStatus,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            replica_id: None,
            shutdown_grace_ms: 10_000,
            max_connections: 20_000,
            idle_timeout_ms: 60_000,
            runtime: RuntimeMode::PerCore,
            threads: 0,
            encoded_slashes: EncodedSlashes::Reject,
            watch_config: false,
            upgrade_idle_timeout_ms: None,
            grpc_denied_status: GrpcDeniedStatus::ResourceExhausted,
        }
    }
}

/// `[upstream]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` of the backend (or of its load balancer).
    #[serde(default)]
    pub url: String,
    /// Time allowed for the backend's response headers.
    #[serde(default = "RawUpstream::default_timeout_ms")]
    pub timeout_ms: i64,
    /// Idle keep-alive connections kept open to the upstream.
    #[serde(default = "RawUpstream::default_pool_max_idle")]
    pub pool_max_idle: i64,
    /// HTTP/1.1 or h2c (HTTP/2 with prior knowledge) to the backend.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
}

impl Default for RawUpstream {
    /// No `url` (which `serve` reports as missing).
    fn default() -> Self {
        Self::new("")
    }
}

impl RawUpstream {
    /// `url` with every other key at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_ms: Self::default_timeout_ms(),
            pool_max_idle: Self::default_pool_max_idle(),
            protocol: UpstreamProtocol::Http1,
        }
    }

    fn default_timeout_ms() -> i64 {
        10_000
    }

    fn default_pool_max_idle() -> i64 {
        512
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// Which store.
    pub kind: StoreKind,
    /// Redis URLs (cluster: any seed nodes); empty for `memory`.
    pub urls: Vec<String>,
    /// Time budget of one store decision.
    pub timeout_ms: i64,
    /// Fail open or closed.
    pub on_error: OnError,
    /// `redis-pipelined`: most decisions per pipeline.
    pub batch_max: i64,
    /// `redis-pipelined`: how long a batch may wait to fill, in microseconds.
    pub batch_wait_us: i64,
    /// Redis stores: longest pause between probes of a store that keeps
    /// failing (the circuit breaker's cooldown doubles up to this). Bounds how
    /// long enforcement takes to resume after Redis returns.
    pub breaker_max_cooldown_ms: i64,
    /// Redis stores: answer requests the store certainly denies from a
    /// local cache of its denials (exact), keeping floods off Redis.
    pub deny_cache: bool,
    /// Most denials the cache holds per replica.
    pub deny_cache_size: i64,
    /// `on_error = "local"`: how many replicas share the limits; while the
    /// store fails, each enforces `1/replicas_hint` of every limit locally.
    pub replicas_hint: i64,
    /// `rediss://` URLs: a PEM file of the CA certificates to trust
    /// instead of the system roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// `rediss://` URLs, mutual TLS: the client's PEM certificate chain
    /// (with `tls_key_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<String>,
    /// `rediss://` URLs, mutual TLS: the client's PEM private key (with
    /// `tls_cert_file`). A path, shown in `/config`; the key itself never is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<String>,
    /// `rediss://` URLs: do not verify the server's certificate at all (an
    /// explicit, logged opt-out; prefer `tls_ca_file`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_insecure_skip_verify: bool,
    /// `redis-lua` and `redis-pipelined`: `urls` are Redis Sentinels, and
    /// the store uses the master they monitor under this name, following
    /// failovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel_master: Option<String>,
    /// `redis-leased`: the lease period Δ in milliseconds; a lease is the
    /// tokens a bucket refills in Δ (at most what this replica saw of the
    /// key in one period), so a hot key costs about one call per Δ.
    pub lease_period_ms: i64,
    /// `redis-leased`: requests per second one replica must see for a key
    /// before it leases tokens of it; slower keys stay one exact script
    /// call per request. 0: every key leases.
    pub lease_hot_rate: i64,
    /// `redis-leased`: most keys a replica tracks (hot-key detector and
    /// leases); beyond it the least recently seen are dropped (their
    /// leases' tokens are lost: under-admission only).
    pub lease_keys: i64,
}

impl RawStore {
    /// The default `breaker_max_cooldown_ms`: at most four probes per
    /// second of a Redis that is down, enforcement back within about a
    /// quarter of a second once it returns.
    pub const DEFAULT_BREAKER_MAX_COOLDOWN_MS: i64 = 250;
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            urls: Vec::new(),
            timeout_ms: 50,
            on_error: OnError::Allow,
            batch_max: 128,
            batch_wait_us: 200,
            breaker_max_cooldown_ms: Self::DEFAULT_BREAKER_MAX_COOLDOWN_MS,
            deny_cache: true,
            deny_cache_size: 100_000,
            replicas_hint: 1,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_insecure_skip_verify: false,
            sentinel_master: None,
            lease_period_ms: 50,
            lease_hot_rate: 100,
            lease_keys: 10_000,
        }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIdentity {
    /// Header naming the client's API key.
    pub api_key_header: String,
    /// CIDRs (or plain addresses) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// A file of known API keys, one SHA-256 hex digest per line: a key not
    /// in it is limited as its IP. None: every key is believed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys_file: Option<String>,
    /// Where the known keys come from: `file` (`api_keys_file`) or `redis`
    /// (the store's Redis, provisioned with `rateguard keys`; read at start).
    #[serde(skip_serializing_if = "KeySource::is_file")]
    pub keys: KeySource,
    /// `keys = "redis"`: how long a replica may go without reading the
    /// key registry before `store.on_error = "deny"` refuses requests with
    /// a key (503); `allow` and `local` keep the last answers read.
    #[serde(skip_serializing_if = "RawIdentity::is_default_stale")]
    pub keys_max_stale_ms: i64,
    /// An IPv6 client is counted as its network of this many bits (one
    /// customer's allocation is usually a /64 or larger).
    pub ipv6_prefix: i64,
    /// An IPv4 client is counted as its network of this many bits.
    pub ipv4_prefix: i64,
}

impl RawIdentity {
    /// The default `keys_max_stale_ms`.
    pub const DEFAULT_KEYS_MAX_STALE_MS: i64 = 5000;

    fn is_default_stale(ms: &i64) -> bool {
        *ms == Self::DEFAULT_KEYS_MAX_STALE_MS
    }
}

impl Default for RawIdentity {
    fn default() -> Self {
        Self {
            api_key_header: headers::DEFAULT_API_KEY.into(),
            trusted_proxies: Vec::new(),
            api_keys_file: None,
            keys: KeySource::File,
            keys_max_stale_ms: Self::DEFAULT_KEYS_MAX_STALE_MS,
            ipv6_prefix: 64,
            ipv4_prefix: 32,
        }
    }
}

/// `[rls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRls {
    /// Limits files in envoyproxy/ratelimit's YAML format, one domain per
    /// file; relative paths are relative to the config file's directory.
    pub limits: Vec<String>,
    /// Extra response headers.
    pub response_headers: ResponseHeaders,
}

impl Default for RawRls {
    fn default() -> Self {
        Self {
            limits: Vec::new(),
            response_headers: ResponseHeaders::None,
        }
    }
}

/// One `[[policies]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Name used in headers, metrics and bucket keys.
    pub name: String,
    /// Requests whose path starts with this (longest wins); none = the default policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Request methods the policy applies to (uppercase); none = every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Tokens one request spends from each of the policy's limits.
    #[serde(
        default = "RawPolicy::default_cost",
        skip_serializing_if = "RawPolicy::is_default_cost"
    )]
    pub cost: i64,
    /// The single-limit form: bucket size (the burst) of one limit keyed by client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// The single-limit form: tokens added per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_per_sec: Option<f64>,
    /// Shadow mode: evaluate and consume as usual, but never block.
    #[serde(default)]
    pub shadow: bool,
    /// The layered form: several limits, each with its own key, applied
    /// together (all or nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<RawLimit>,
}

impl RawPolicy {
    /// The default policy (no `path_prefix`) `name` in the single-limit
    /// form (one limit keyed by client), enforced.
    pub fn new(name: impl Into<String>, capacity: i64, refill_per_sec: f64) -> Self {
        Self {
            capacity: Some(capacity),
            refill_per_sec: Some(refill_per_sec),
            ..Self::layered(name, Vec::new())
        }
    }

    /// The default policy `name` with the layered `limits`, enforced.
    pub fn layered(name: impl Into<String>, limits: Vec<RawLimit>) -> Self {
        Self {
            name: name.into(),
            path_prefix: None,
            methods: None,
            cost: Self::default_cost(),
            capacity: None,
            refill_per_sec: None,
            shadow: false,
            limits,
        }
    }

    /// Its limits in the layered form: `limits` as written, or the
    /// single-limit form as one limit keyed by client (none when either
    /// `capacity` or `refill_per_sec` is missing).
    ///
    /// ```
    /// use rateguard_contract::{LimitKey, RawLimit, RawPolicy};
    ///
    /// let single = RawPolicy::new("data", 20, 0.5);
    /// assert_eq!(single.limit_list(), [RawLimit::new(LimitKey::Client, 20, 0.5)]);
    /// ```
    pub fn limit_list(&self) -> Vec<RawLimit> {
        match (self.limits.is_empty(), self.capacity, self.refill_per_sec) {
            (true, Some(capacity), Some(rate)) => {
                vec![RawLimit::new(LimitKey::Client, capacity, rate)]
            }
            _ => self.limits.clone(),
        }
    }

    fn default_cost() -> i64 {
        1
    }

    fn is_default_cost(cost: &i64) -> bool {
        *cost == Self::default_cost()
    }
}

/// One `[[policies.limits]]` entry: a bucket per distinct value of `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Name in headers, metrics and bucket keys; default: the key's
    /// [`LimitKey::default_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What requests are counted by.
    pub key: LimitKey,
    /// Bucket size (the burst).
    pub capacity: i64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

impl RawLimit {
    /// A limit on `key`, named by default.
    pub fn new(key: LimitKey, capacity: i64, refill_per_sec: f64) -> Self {
        Self {
            name: None,
            key,
            capacity,
            refill_per_sec,
        }
    }

    /// The same limit named `name`.
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..self
        }
    }
}

/// One `[[plans]]` entry: a named set of quotas for the API keys on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    /// Name in the 429 body and the `plan` metric label, and what a key
    /// names in `identity.api_keys_file`.
    pub name: String,
    /// The limits whose quota the plan replaces.
    #[serde(default)]
    pub limits: Vec<RawPlanLimit>,
}

/// One `[[plans.limits]]` entry: the quota of a policy limit for the
/// plan's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlanLimit {
    /// The name of a limit in a policy (`client` for a single-limit policy).
    pub limit: String,
    /// Only that limit of this policy; none: that limit in every policy
    /// (an entry naming the policy wins over one that does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Bucket size for the plan's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    /// Tokens added per second for the plan's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_per_sec: Option<f64>,
    /// The limit does not apply to the plan's keys (an internal service).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlimited: bool,
}

impl RawPlanLimit {
    /// The quota `capacity` / `refill_per_sec` for `limit` in every policy.
    pub fn new(limit: impl Into<String>, capacity: i64, refill_per_sec: f64) -> Self {
        Self {
            limit: limit.into(),
            policy: None,
            capacity: Some(capacity),
            refill_per_sec: Some(refill_per_sec),
            unlimited: false,
        }
    }

    /// No limit `limit` (in every policy) for the plan's keys.
    pub fn unlimited(limit: impl Into<String>) -> Self {
        Self {
            limit: limit.into(),
            policy: None,
            capacity: None,
            refill_per_sec: None,
            unlimited: true,
        }
    }

    /// The same entry, only for `policy`.
    pub fn in_policy(self, policy: impl Into<String>) -> Self {
        Self {
            policy: Some(policy.into()),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_survive_toml_both_ways() {
        let mut config = RawConfig::new("http://127.0.0.1:9000");
        config.policies.push(RawPolicy::new("data", 3, 1.0));
        config.plans.push(RawPlan {
            name: "pro".into(),
            limits: vec![
                RawPlanLimit::new("client", 10, 5.0).in_policy("data"),
                RawPlanLimit::unlimited("per-ip"),
            ],
        });
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("[[plans.limits]]"), "{text}");
        assert!(text.contains("unlimited = true"), "{text}");
        assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), config);
    }

    #[test]
    fn a_config_survives_toml_both_ways() {
        let mut config = RawConfig::new("http://127.0.0.1:9000");
        config.server.replica_id = Some("gw-1".into());
        config.server.runtime = RuntimeMode::MultiThread;
        config.store.kind = StoreKind::FredCluster;
        config.store.on_error = OnError::Deny;
        config.store.urls = vec!["rediss://127.0.0.1:7000".into()];
        config.store.tls_ca_file = Some("ca.pem".into());
        config.store.tls_insecure_skip_verify = true;
        config.policies.push(RawPolicy::new("default", 100, 50.0));
        config.policies.push(RawPolicy {
            path_prefix: Some("/api".into()),
            shadow: true,
            ..RawPolicy::new("api", 5, 0.5)
        });
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("kind = \"fred-cluster\""), "{text}");
        assert!(text.contains("runtime = \"multi-thread\""), "{text}");
        assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), config);
    }

    #[test]
    fn layered_limits_survive_toml_both_ways() {
        let mut config = RawConfig::new("http://127.0.0.1:9000");
        config.identity.api_keys_file = Some("keys.txt".into());
        config.store.deny_cache = false;
        config.policies.push(RawPolicy {
            path_prefix: Some("/api/login".into()),
            methods: Some(vec!["POST".into()]),
            cost: 5,
            ..RawPolicy::layered(
                "login",
                vec![
                    RawLimit::new(LimitKey::Client, 5, 0.1).named("per-client"),
                    RawLimit::new(LimitKey::Header("x-tenant".into()), 20, 1.0),
                    RawLimit::new(LimitKey::Global, 1000, 100.0),
                ],
            )
        });
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("[[policies.limits]]"), "{text}");
        assert!(text.contains("key = \"header:x-tenant\""), "{text}");
        assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), config);
    }

    #[test]
    fn a_minimal_file_takes_the_defaults() {
        let text = "[upstream]\nurl = \"http://127.0.0.1:9000\"\n";
        let config: RawConfig = toml::from_str(text).unwrap();
        assert_eq!(config, RawConfig::new("http://127.0.0.1:9000"));
    }

    #[test]
    fn enum_values_are_checked_by_serde() {
        let text = "[upstream]\nurl = \"u\"\n[store]\non_error = \"maybe\"\n";
        let err = toml::from_str::<RawConfig>(text).unwrap_err().to_string();
        assert!(
            err.contains("unknown value \"maybe\", expected one of allow, deny, local"),
            "{err}"
        );
    }
}
