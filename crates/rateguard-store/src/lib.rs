//! Where buckets live: the [`BucketStore`] trait and its implementations.
//!
//! # Layout
//! - [`BucketStore`], [`AcquireRequest`] and [`StoreError`] (this file).
//! - [`memory`]: [`MemoryStore`], the embedded, per-process default.
//! - [`redis_lua`]: [`RedisLuaStore`] (`redis-lua`), one `EVALSHA` per decision.
//! - [`redis_pipelined`]: [`RedisPipelinedStore`] (`redis-pipelined`), decisions
//!   coalesced into one pipeline per round trip.
//! - [`fred_cluster`]: [`FredClusterStore`] (`fred-cluster`), on a Redis Cluster.
//! - `options` ([`RedisOptions`]), `breaker` (circuit breaker) and `script`
//!   (`token_bucket.lua`, shared by the three Redis stores).
//! - `conformance` (feature `test-util`): one behaviour suite every store runs.
//!
//! # Invariants
//! The bucket math lives in `rateguard_core::bucket`; a store only applies it
//! atomically per key (in process, or in Redis through the Lua mirror of it).
//! A store never panics on a backend failure: it returns [`StoreError`], and
//! the caller applies its fail-open or fail-closed policy.

use std::future::Future;
use std::time::Duration;

pub use rateguard_contract::StoreKind;
pub use rateguard_core::{BucketKey, Decision, Quota};

mod breaker;
pub mod fred_cluster;
pub mod memory;
mod options;
pub mod redis_lua;
pub mod redis_pipelined;
mod script;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use fred_cluster::FredClusterStore;
pub use memory::MemoryStore;
pub use options::RedisOptions;
pub use redis_lua::RedisLuaStore;
pub use redis_pipelined::RedisPipelinedStore;
pub use script::TOKEN_BUCKET_LUA;

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

/// One acquire in a batch: `cost` tokens from the bucket `key` under `quota`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireRequest {
    /// The bucket.
    pub key: BucketKey,
    /// The bucket's shape.
    pub quota: Quota,
    /// Tokens to spend (1 for one request).
    pub cost: u32,
}

/// Shared, atomic storage of token buckets.
///
/// Implementations must apply each decision atomically per key: however many
/// callers (tasks, processes, gateway replicas) share the store, the number
/// of tokens granted never exceeds what one bucket would grant.
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

    /// Spends `cost` tokens from `key`'s bucket, or says when they will be there.
    fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send;

    /// Decides several requests; result `i` answers request `i`. Requests for
    /// the same key are decided in order. The default loops over
    /// [`acquire`](Self::acquire); batch-capable stores override it.
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
}
