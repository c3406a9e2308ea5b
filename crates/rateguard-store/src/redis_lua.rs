//! [`RedisLuaStore`] (`redis-lua`): one `EVALSHA` of the token-bucket
//! script per decision (over all of a request's limits), over one
//! multiplexed connection.

use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision, MultiDecision, Peek, Quota};

use crate::breaker::Breaker;
use crate::redis_admin;
use crate::redis_conn::{ping, retry_refused, RedisConn};
use crate::script::{self, SCRIPT};
use crate::{check_distinct_keys, AcquireRequest, BucketStore, RedisOptions, StoreError};

/// Buckets in one Redis server, decided atomically by `token_bucket.lua`
/// with Redis `TIME` as the clock, so any number of gateway replicas share
/// one exact limit.
///
/// Cheap to clone; clones share the connection and the circuit breaker.
/// The connection is a redis-rs `ConnectionManager`: commands from all
/// callers are multiplexed on one TCP (or TLS) connection, and it
/// reconnects by itself after a connection loss.
#[derive(Clone)]
pub struct RedisLuaStore {
    conn: RedisConn,
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
    /// Connects lazily: if Redis is down it still returns `Ok`, calls fail
    /// with [`StoreError::Unavailable`] (then [`StoreError::CircuitOpen`])
    /// and the client reconnects by itself once Redis is back. Call
    /// [`ping`](BucketStore::ping) to check reachability. When Redis is up,
    /// the connection is opened and the script loaded here, so the first
    /// decision pays no set-up cost.
    ///
    /// Errors: a malformed URL, and a Redis that answers but refuses us for
    /// good (wrong password, missing ACL permission, untrusted TLS
    /// certificate), with a message naming the cause.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let breaker = Arc::new(Breaker::new(opts));
        let conn = RedisConn::new(opts, &breaker)?;
        conn.warm_up(opts).await?;
        Ok(Self {
            conn,
            timeout: opts.timeout,
            breaker,
            test_now: script::TestNow::default(),
        })
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

    /// The one connection, breaker and budget, for the admin calls.
    fn on(&self) -> redis_admin::On<'_> {
        redis_admin::On {
            conn: &self.conn,
            breaker: &self.breaker,
            timeout: self.timeout,
        }
    }

    /// [`peek`](Self::peek) at the fixed time `now_us`: for tests that
    /// compare the script with the core.
    #[cfg(feature = "test-util")]
    pub async fn peek_at(
        &self,
        key: &BucketKey,
        quota: &Quota,
        now_us: u64,
    ) -> Result<Peek, StoreError> {
        redis_admin::peek(self.on(), key, quota, Some(now_us)).await
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
        self.eval_script(&SCRIPT, keys, args).await
    }

    async fn eval_script(
        &self,
        script: &redis::Script,
        keys: impl IntoIterator<Item = &BucketKey>,
        args: Vec<u64>,
    ) -> Result<Vec<i64>, StoreError> {
        let conn = &self.conn;
        let timeout = self.timeout;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key.as_str());
        }
        invocation.arg(args);
        let invocation = &invocation;
        let result = self
            .breaker
            .call(
                timeout,
                retry_refused(conn, timeout, |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                }),
            )
            .await;
        conn.observe(&result);
        result
    }
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

    /// `peek.lua` at Redis `TIME` (the mirror of `rateguard_core::peek`).
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        redis_admin::peek(self.on(), key, quota, self.test_now.get()).await
    }

    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        redis_admin::reset(self.on(), key).await
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        redis_admin::resets(self.on()).await
    }
}
