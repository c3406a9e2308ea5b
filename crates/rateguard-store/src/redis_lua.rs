//! [`RedisLuaStore`] (`redis-lua`): one `EVALSHA` of the token-bucket
//! script per decision (over all of a request's limits), over one
//! multiplexed connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision, MultiDecision, Quota};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::breaker::Breaker;
use crate::script::{self, SCRIPT};
use crate::{check_distinct_keys, AcquireRequest, BucketStore, RedisOptions, StoreError};

/// Buckets in one Redis server, decided atomically by `token_bucket.lua`
/// with Redis `TIME` as the clock, so any number of gateway replicas share
/// one exact limit.
///
/// Cheap to clone; clones share the connection and the circuit breaker.
/// The connection is a redis-rs `ConnectionManager`: commands from all
/// callers are multiplexed on one TCP connection, and it reconnects by itself
/// after a connection loss.
#[derive(Clone)]
pub struct RedisLuaStore {
    conn: ConnectionManager,
    timeout: Duration,
    breaker: Arc<Breaker>,
    test_now: script::TestNow,
}

impl std::fmt::Debug for RedisLuaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLuaStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLuaStore {
    /// A store on `opts.urls[0]`.
    ///
    /// Connects lazily: this fails only on a malformed URL. If Redis is down
    /// it still returns `Ok`, calls fail with [`StoreError::Unavailable`]
    /// (then [`StoreError::CircuitOpen`]) and the client reconnects by itself
    /// once Redis is back. Call [`ping`](BucketStore::ping) to check
    /// reachability. When Redis is up, the connection is opened and the
    /// script loaded here, so the first decision pays no set-up cost.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let conn = connection_manager(opts)?;
        let store = Self {
            conn,
            timeout: opts.timeout,
            breaker: Arc::new(Breaker::new(opts)),
            test_now: script::TestNow::default(),
        };
        store.warm_up().await;
        Ok(store)
    }

    /// Loads the script once; failure is logged, not fatal (see `connect`).
    async fn warm_up(&self) {
        let mut conn = self.conn.clone();
        let load = SCRIPT.load_async(&mut conn);
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), load).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Redis not ready at start; will retry."),
            Err(_) => tracing::warn!("Redis did not answer at start; will retry."),
        }
    }

    /// Decides `count` requests of `cost` at the fixed time `now_us` instead
    /// of Redis `TIME`: for tests that compare the script with the core.
    #[cfg(feature = "test-util")]
    pub async fn acquire_batch_at(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
        count: u32,
        now_us: u64,
    ) -> Result<rateguard_core::bucket::Batch, StoreError> {
        let args = script::args(quota, cost, count, Some(now_us));
        let reply = self.eval(std::iter::once(key), args).await?;
        script::batch_from_reply(&reply, quota, cost, count)
    }

    /// Decides `count` identical multi-limit requests at the fixed time
    /// `now_us` instead of Redis `TIME`: for tests that compare the script
    /// with the core.
    #[cfg(feature = "test-util")]
    pub async fn acquire_all_at(
        &self,
        limits: &[AcquireRequest],
        count: u32,
        now_us: u64,
    ) -> Result<rateguard_core::multi::MultiBatch, StoreError> {
        check_distinct_keys(limits)?;
        let spec: Vec<_> = limits.iter().map(AcquireRequest::limit).collect();
        let args = script::multi_args(&spec, count, Some(now_us));
        let reply = self.eval(limits.iter().map(|r| &r.key), args).await?;
        script::multi_batch_from_reply(&reply, &spec, count)
    }

    /// From now on every script call passes `clock`'s time instead of
    /// letting the script read Redis `TIME`: tests pin "now" with it.
    #[cfg(feature = "test-util")]
    pub fn with_test_clock(self, clock: rateguard_core::clock::ManualClock) -> Self {
        self.test_now.pin(clock);
        self
    }

    async fn eval(
        &self,
        keys: impl IntoIterator<Item = &BucketKey>,
        args: Vec<u64>,
    ) -> Result<Vec<i64>, StoreError> {
        let conn = &self.conn;
        let timeout = self.timeout;
        let mut invocation = SCRIPT.prepare_invoke();
        for key in keys {
            invocation.key(key.as_str());
        }
        invocation.arg(args);
        let invocation = &invocation;
        self.breaker
            .call(
                timeout,
                retry_refused(timeout, || {
                    let mut conn = conn.clone();
                    async move { invocation.invoke_async(&mut conn).await }
                }),
            )
            .await
    }
}

/// A lazily connecting, self-reconnecting client for `opts.urls[0]`.
pub(crate) fn connection_manager(opts: &RedisOptions) -> Result<ConnectionManager, StoreError> {
    let url = opts
        .urls
        .first()
        .ok_or_else(|| StoreError::Backend("no Redis URL configured".to_owned()))?;
    let client = redis::Client::open(url.as_str())
        .map_err(|e| StoreError::Backend(format!("invalid Redis URL {url:?}: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(opts.timeout))
        .set_response_timeout(Some(opts.timeout))
        // One attempt per (re)connection: the breaker does the backing off,
        // so a dead Redis sees one connection attempt per probe
        // (`retry_refused` adds the reconnect that its failure starts).
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| StoreError::Backend(format!("Redis client for {url:?}: {e}")))
}

/// `PING` through `conn`, bounded by the breaker and the timeout.
pub(crate) async fn ping(
    conn: &ConnectionManager,
    breaker: &Breaker,
    timeout: Duration,
) -> Result<(), StoreError> {
    breaker
        .call(
            timeout,
            retry_refused(timeout, || {
                let mut conn = conn.clone();
                async move { redis::cmd("PING").query_async::<String>(&mut conn).await }
            }),
        )
        .await
        .map(drop)
}

/// Runs `attempt` once more if its connection was refused, mapping the
/// outcome to a [`StoreError`] (a timeout as `timeout`).
///
/// A refused connection sent nothing, so the second attempt cannot spend
/// twice. It is what makes a probe reconnect eagerly: `ConnectionManager`
/// hands every caller the outcome of its latest connection attempt and
/// starts a new one when that failed, so after an outage the first call
/// gets the refusal from when Redis was still down; measured (see
/// `tests/redis_stores/recovery.rs`), that cost a whole extra breaker
/// cooldown. The second attempt waits for the fresh connection instead.
pub(crate) async fn retry_refused<T, F, Fut>(timeout: Duration, attempt: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let result = match attempt().await {
        Err(e) if e.is_connection_refusal() => attempt().await,
        other => other,
    };
    // The caller's breaker bounds both attempts by the one `timeout`.
    result.map_err(|e| script::from_redis(&e, timeout))
}

impl BucketStore for RedisLuaStore {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::RedisLua
    }

    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::SHARED
    }

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let args = script::args(quota, cost, 1, self.test_now.get());
        let reply = self.eval(std::iter::once(key), args).await?;
        script::decision_from_reply(&reply, quota, cost)
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        check_distinct_keys(limits)?;
        if limits.is_empty() {
            return Ok(MultiDecision::new(Vec::new(), &[]));
        }
        let spec: Vec<_> = limits.iter().map(AcquireRequest::limit).collect();
        let args = script::multi_args(&spec, 1, self.test_now.get());
        let reply = self.eval(limits.iter().map(|r| &r.key), args).await?;
        Ok(script::multi_batch_from_reply(&reply, &spec, 1)?.decision(0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.conn, &self.breaker, self.timeout).await
    }
}
