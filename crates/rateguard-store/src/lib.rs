//! Where buckets live: the [`BucketStore`] trait and its implementations.
//!
//! # Layout
//! - [`BucketStore`], [`AcquireRequest`] and [`StoreError`] (this file).
//!   [`BucketStore::acquire_all`] decides a request over several limits,
//!   all or nothing (`rateguard_core::multi`).
//! - [`memory`]: [`MemoryStore`], the embedded, per-process default.
//! - [`redis_lua`]: [`RedisLuaStore`] (`redis-lua`), one `EVALSHA` per decision.
//! - [`redis_pipelined`]: [`RedisPipelinedStore`] (`redis-pipelined`), decisions
//!   coalesced into one pipeline per round trip.
//! - [`redis_leased`]: [`RedisLeasedStore`] (`redis-leased`), `redis-lua`'s
//!   exact decisions plus token leases of hot keys spent locally, never
//!   over the limit (`docs/leases.md`).
//! - [`fred_cluster`]: [`FredClusterStore`] (`fred-cluster`), on a Redis Cluster.
//! - [`deny_cache`]: [`DenyCache`], a wrapper that answers certain denials
//!   locally (exact: see its docs), keeping floods of over-limit clients off Redis.
//! - `capabilities`: [`Capabilities`], what a store declares of itself
//!   (shared across replicas, refunds), and [`Grouping`], what a caller
//!   declares of a request's buckets; the deny cache reads both.
//! - `connect`: [`connect`], the one `match` from a [`StoreKind`] to a
//!   connected store of its own type, handed to a [`StoreUser`].
//! - `options` ([`RedisOptions`]), `breaker` (circuit breaker) and `script`
//!   (`token_bucket.lua`, shared by the three Redis stores).
//! - `access` ([`RedisAccess`]: TLS and Sentinel, checked from `[store]`),
//!   `tls` ([`TlsOptions`], rustls for both clients), `redis_conn` (the
//!   redis-rs connection of the standalone stores, direct or through
//!   Sentinel).
//! - [`keys`]: [`RedisKeys`], the key registry of `identity.keys =
//!   "redis"` (digest → plan, and a version every write raises).
//! - `redis_admin`: peek, reset and the reset generation on the standalone
//!   Redis stores' connection (the admin API's store calls).
//! - `conformance` (feature `test-util`): one behaviour suite every store runs.
//!
//! # Invariants
//! The bucket math lives in `rateguard_core::bucket` and `::multi`; a store
//! only applies it atomically (in process, or in Redis through the Lua
//! mirror of it): per key, and across the keys of one `acquire_all` (except
//! `fred-cluster` with keys in several slots, see its docs). A denied
//! request spends nothing on any of its buckets.
//! A store never panics on a backend failure: it returns [`StoreError`], and
//! the caller applies its fail-open or fail-closed policy.

use std::future::Future;
use std::time::Duration;

pub use rateguard_contract::metrics::StoreErrorKind;
pub use rateguard_contract::StoreKind;
pub use rateguard_core::{BucketKey, Decision, Limit, MultiDecision, Peek, Quota};

mod access;
mod breaker;
mod capabilities;
mod connect;
pub mod deny_cache;
pub mod fred_cluster;
pub mod keys;
pub mod lease_scripts;
pub mod memory;
mod options;
mod redis_admin;
mod redis_conn;
pub mod redis_leased;
pub mod redis_lua;
pub mod redis_pipelined;
mod script;
mod shards;
mod tls;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use access::{redact_url, ConfigIssue, RedisAccess, StoreKey};
pub use capabilities::{Capabilities, Grouping};
pub use connect::{connect, StoreUser};
pub use deny_cache::DenyCache;
pub use fred_cluster::FredClusterStore;
pub use keys::RedisKeys;
pub use lease_scripts::{LeaseRequest, LeaseScripts, LEASE_LUA, SHARE_LUA};
pub use memory::MemoryStore;
pub use options::{LeaseOptions, RedisOptions};
pub use redis_leased::RedisLeasedStore;
pub use redis_lua::RedisLuaStore;
pub use redis_pipelined::RedisPipelinedStore;
pub use script::{PEEK_LUA, TOKEN_BUCKET_LUA};
pub use tls::TlsOptions;

/// Why a store could not decide. Each variant says what happened, so the
/// gateway can count it and apply its `on_error` rule.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer within its time budget.
    #[error("store timed out after {0:?}")]
    Timeout(Duration),
    /// The store could not be reached (connection refused, reset, closed).
    #[error("store unreachable: {0}")]
    Unavailable(String),
    /// Calls are being refused locally after repeated failures, to avoid
    /// hammering a store that is down; the next probe is due in the given time.
    #[error("store circuit open after repeated failures; next probe in {0:?}")]
    CircuitOpen(Duration),
    /// The store answered with an error or an unexpected reply.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Which kind of failure it is (`rateguard_store_errors_total{error}`).
    pub const fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Timeout(_) => StoreErrorKind::Timeout,
            StoreError::Unavailable(_) => StoreErrorKind::Unavailable,
            StoreError::CircuitOpen(_) => StoreErrorKind::CircuitOpen,
            StoreError::Backend(_) => StoreErrorKind::Backend,
        }
    }
}

/// One limit of a request: `cost` tokens from the bucket `key` under
/// `quota`; a shadow limit (`enforced: false`) never denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireRequest {
    /// The bucket.
    pub key: BucketKey,
    /// The bucket's shape.
    pub quota: Quota,
    /// Tokens to spend (1 for one request).
    pub cost: u32,
    /// Whether a denial by this limit denies the request (`false`: shadow).
    pub enforced: bool,
}

impl AcquireRequest {
    /// An enforced limit.
    pub fn new(key: BucketKey, quota: Quota, cost: u32) -> Self {
        Self {
            key,
            quota,
            cost,
            enforced: true,
        }
    }

    /// A shadow limit: evaluated and spent when it fits, never denies.
    pub fn shadow(key: BucketKey, quota: Quota, cost: u32) -> Self {
        Self {
            enforced: false,
            ..Self::new(key, quota, cost)
        }
    }

    /// The limit without its key, as the core decides it.
    pub fn limit(&self) -> Limit {
        Limit {
            quota: self.quota,
            cost: self.cost,
            enforced: self.enforced,
        }
    }
}

/// Shared, atomic storage of token buckets.
///
/// Implementations must apply each decision atomically: however many
/// callers (tasks, processes, gateway replicas) share the store, the number
/// of tokens granted never exceeds what one bucket would grant, and a
/// request denied by one of its limits spends nothing on any of them.
///
/// The gateway is generic over this trait (`Gateway<S: BucketStore>`), so the
/// futures are concrete and nothing on the hot path is boxed.
pub trait BucketStore: Send + Sync + 'static {
    /// Which kind of store this is.
    fn kind(&self) -> StoreKind;

    /// The kind's id as used in config files and reports (`redis-lua`, ...).
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// What this store can do, for the layers above it (the deny cache,
    /// `on_error`): declared by each store, never derived from its kind.
    fn capabilities(&self) -> Capabilities;

    /// Decides one request over all its limits, all or nothing, in one
    /// store round trip: allowed iff every enforced limit allows it; then
    /// every limit that fits spends, else nothing is spent anywhere
    /// (`rateguard_core::multi`). Decision `i` answers limit `i`.
    ///
    /// The keys must be distinct ([`StoreError::Backend`] otherwise); no
    /// limits at all is allowed without a round trip.
    fn acquire_all(
        &self,
        limits: &[AcquireRequest],
    ) -> impl Future<Output = Result<MultiDecision, StoreError>> + Send;

    /// Spends `cost` tokens from `key`'s bucket, or says when they will be
    /// there: [`acquire_all`](Self::acquire_all) with one enforced limit.
    fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send {
        let request = AcquireRequest::new(key.clone(), *quota, cost);
        async move { only_decision(self.acquire_all(std::slice::from_ref(&request)).await?) }
    }

    /// Decides several single-limit requests; result `i` answers request
    /// `i`. Requests for the same key are decided in order. The default
    /// loops over [`acquire`](Self::acquire); batch-capable stores override it.
    fn acquire_many(
        &self,
        requests: &[AcquireRequest],
    ) -> impl Future<Output = Vec<Result<Decision, StoreError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(requests.len());
            for r in requests {
                out.push(self.acquire(&r.key, &r.quota, r.cost).await);
            }
            out
        }
    }

    /// Checks that the store can answer (for `/healthz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The bucket `key` under `quota` now, read without spending
    /// (`rateguard_core::peek`; the Redis stores run its Lua mirror,
    /// `peek.lua`). Every store kind answers it; the default refuses
    /// (test doubles).
    fn peek(
        &self,
        key: &BucketKey,
        quota: &Quota,
    ) -> impl Future<Output = Result<Peek, StoreError>> + Send {
        let _ = (key, quota);
        async move { Err(unsupported(self.name(), "peek")) }
    }

    /// Makes `key`'s bucket full again (its stored state is deleted), then
    /// raises the store's reset generation ([`resets`](Self::resets)), in
    /// that order: whoever reads the new generation finds the bucket
    /// reset. Every store kind answers it; the default refuses.
    fn reset(&self, key: &BucketKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = key;
        async move { Err(unsupported(self.name(), "reset")) }
    }

    /// The store's reset generation: how many resets it has seen (0 before
    /// any). A reset moves a bucket's stored time backwards, which is the
    /// one thing a [`DenyCache`] cannot see by itself; each replica polls
    /// this number and drops its cached denials when it changes
    /// ([`DenyCache::observe_resets`]). The default: always 0.
    fn resets(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async { Ok(0) }
    }
}

/// Where the Redis stores keep their reset generation ([`BucketStore::resets`]).
pub const RESETS_KEY: &str = "rateguard:resets";

/// The error of a store that cannot `what` (a test double).
fn unsupported(store: &str, what: &str) -> StoreError {
    StoreError::Backend(format!("the {store} store cannot {what} a bucket"))
}

/// The one decision of a single-limit [`MultiDecision`].
pub(crate) fn only_decision(decision: MultiDecision) -> Result<Decision, StoreError> {
    match decision.limits() {
        [Some(d)] => Ok(*d),
        other => Err(StoreError::Backend(format!(
            "expected one decision, got {other:?}"
        ))),
    }
}

/// Refuses a request that names one bucket twice: each limit needs its own.
pub(crate) fn check_distinct_keys(limits: &[AcquireRequest]) -> Result<(), StoreError> {
    for (i, a) in limits.iter().enumerate() {
        if limits[..i].iter().any(|b| b.key == a.key) {
            return Err(StoreError::Backend(format!(
                "acquire_all: key {} appears twice; each limit needs its own bucket",
                a.key
            )));
        }
    }
    Ok(())
}
