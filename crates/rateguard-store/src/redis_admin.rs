//! The admin API's store calls on the standalone Redis stores' connection
//! (`redis-lua`, `redis-pipelined`): [`peek`] (`peek.lua`, read-only),
//! [`reset`] (delete the bucket, then raise the reset generation, in one
//! script) and [`resets`] (read the generation, [`RESETS_KEY`]).

use std::sync::LazyLock;
use std::time::Duration;

use rateguard_core::{BucketKey, Peek, Quota};

use crate::breaker::Breaker;
use crate::redis_conn::{retry_refused, RedisConn};
use crate::script::{self, PEEK_SCRIPT};
use crate::{StoreError, RESETS_KEY};

/// Deletes every key but the last (the bucket, and `redis-leased`'s share
/// ledger beside it), then `INCR`s the last (the reset generation),
/// atomically; returns the new generation.
pub(crate) const RESET_LUA: &str = "for i = 1, #KEYS - 1 do redis.call('DEL', KEYS[i]) end\n\
                                    return redis.call('INCR', KEYS[#KEYS])\n";

static RESET_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESET_LUA));

/// One standalone store's connection, breaker and time budget.
pub(crate) struct On<'a> {
    pub(crate) conn: &'a RedisConn,
    pub(crate) breaker: &'a Breaker,
    pub(crate) timeout: Duration,
}

impl On<'_> {
    /// Runs `script` on `keys` with `args`, through the breaker.
    async fn eval<T: redis::FromRedisValue + Send>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: Vec<u64>,
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        invocation.arg(args);
        let invocation = &invocation;
        let result = self
            .breaker
            .call(
                self.timeout,
                retry_refused(self.conn, self.timeout, |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                }),
            )
            .await;
        self.conn.observe(&result);
        result
    }
}

/// The bucket `key` under `quota` at `now_us` (tests) or Redis `TIME`.
pub(crate) async fn peek(
    on: On<'_>,
    key: &BucketKey,
    quota: &Quota,
    now_us: Option<u64>,
) -> Result<Peek, StoreError> {
    let reply: Vec<i64> = on
        .eval(
            &PEEK_SCRIPT,
            &[key.as_str()],
            script::peek_args(quota, now_us),
        )
        .await?;
    script::peek_from_reply(&reply)
}

/// Deletes `key`'s bucket and raises the reset generation, atomically.
pub(crate) async fn reset(on: On<'_>, key: &BucketKey) -> Result<(), StoreError> {
    reset_with(on, &[key.as_str()]).await
}

/// Deletes `keys` (a bucket and what belongs to it) and raises the reset
/// generation, atomically.
pub(crate) async fn reset_with(on: On<'_>, keys: &[&str]) -> Result<(), StoreError> {
    let mut all = keys.to_vec();
    all.push(RESETS_KEY);
    on.eval::<i64>(&RESET_SCRIPT, &all, Vec::new())
        .await
        .map(drop)
}

/// The reset generation (0 before any reset).
pub(crate) async fn resets(on: On<'_>) -> Result<u64, StoreError> {
    let result = on
        .breaker
        .call(
            on.timeout,
            retry_refused(on.conn, on.timeout, |mut conn| async move {
                redis::cmd("GET")
                    .arg(RESETS_KEY)
                    .query_async::<Option<u64>>(&mut conn)
                    .await
            }),
        )
        .await;
    on.conn.observe(&result);
    Ok(result?.unwrap_or(0))
}
