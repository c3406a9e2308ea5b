//! [`RedisLuaStore`] (`redis-lua`): one `EVALSHA` of the token-bucket
//! script per decision, over one multiplexed connection.

use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision, Quota};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::breaker::Breaker;
use crate::script::{self, SCRIPT};
use crate::{BucketStore, RedisOptions, StoreError};

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
        let reply = self.eval(key, quota, cost, count, Some(now_us)).await?;
        script::batch_from_reply(&reply, quota, cost, count)
    }

    async fn eval(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
        count: u32,
        now_us: Option<u64>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn.clone();
        let timeout = self.timeout;
        self.breaker
            .call(timeout, async move {
                SCRIPT
                    .key(key.as_str())
                    .arg(script::args(quota, cost, count, now_us))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| script::from_redis(&e, timeout))
            })
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
        // One quick retry per (re)connection: our breaker does the backing off.
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(5));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| StoreError::Backend(format!("Redis client for {url:?}: {e}")))
}

/// `PING` through `conn`, bounded by the breaker and the timeout.
pub(crate) async fn ping(
    conn: &ConnectionManager,
    breaker: &Breaker,
    timeout: Duration,
) -> Result<(), StoreError> {
    let mut conn = conn.clone();
    breaker
        .call(timeout, async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| script::from_redis(&e, timeout))
        })
        .await
}

impl BucketStore for RedisLuaStore {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::RedisLua
    }

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let reply = self.eval(key, quota, cost, 1, None).await?;
        script::decision_from_reply(&reply, quota, cost)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.conn, &self.breaker, self.timeout).await
    }
}
