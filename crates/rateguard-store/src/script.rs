//! The one Lua script the Redis stores share, and its Rust-side glue:
//! arguments in, `Decision`s out (built by `rateguard_core::bucket`, so a
//! `Decision` is formatted in one place only).

use std::sync::LazyLock;

use rateguard_core::bucket::{self, Batch};
use rateguard_core::multi::{self, MultiBatch};
use rateguard_core::{Decision, Limit, Peek, Quota};

use crate::StoreError;

/// The source of `token_bucket.lua`, the mirror of
/// `rateguard_core::multi::acquire_all`.
pub const TOKEN_BUCKET_LUA: &str = include_str!("token_bucket.lua");

/// The source of `refund.lua`: gives spent tokens back (`fred-cluster`,
/// when a later slot denies a multi-limit request).
pub(crate) const REFUND_LUA: &str = include_str!("refund.lua");

/// The source of `peek.lua`, the mirror of `rateguard_core::peek::peek`:
/// a bucket read without spending (the admin API's view).
pub const PEEK_LUA: &str = include_str!("peek.lua");

/// `peek.lua` as redis-rs runs it.
pub(crate) static PEEK_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(PEEK_LUA));

/// `peek.lua`'s `ARGV`: interval, capacity and, in tests only, "now".
pub(crate) fn peek_args(quota: &Quota, now_us: Option<u64>) -> Vec<u64> {
    let mut args = vec![quota.interval_us(), u64::from(quota.capacity())];
    args.extend(now_us);
    args
}

/// The [`Peek`] of `peek.lua`'s reply `{capacity, remaining,
/// reset_after_us, retry_after_us}`.
pub(crate) fn peek_from_reply(reply: &[i64]) -> Result<Peek, StoreError> {
    let wrong = || StoreError::Backend(format!("peek script returned {reply:?}"));
    let &[limit, remaining, reset_after, retry_after] = reply else {
        return Err(wrong());
    };
    let micros = |v: i64| u64::try_from(v).map(std::time::Duration::from_micros);
    Ok(Peek {
        limit: u32::try_from(limit).map_err(|_| wrong())?,
        remaining: u32::try_from(remaining).map_err(|_| wrong())?,
        reset_after: micros(reset_after).map_err(|_| wrong())?,
        retry_after: micros(retry_after).map_err(|_| wrong())?,
    })
}

/// The script as redis-rs runs it (EVALSHA, reloaded on NOSCRIPT).
pub(crate) static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(TOKEN_BUCKET_LUA));

/// The script's `ARGV` for one bucket: interval, capacity, cost, count
/// and, in tests only, a fixed "now" in microseconds (otherwise the script
/// reads Redis `TIME`).
pub(crate) fn args(quota: &Quota, cost: u32, count: u32, now_us: Option<u64>) -> Vec<u64> {
    let limit = Limit::enforced(*quota, cost);
    multi_args(std::iter::once(&limit), count, now_us)
}

/// The script's `ARGV` for several buckets (in `KEYS` order): per bucket
/// interval, capacity, cost and enforced (1 or 0), then count and, in tests
/// only, a fixed "now".
pub(crate) fn multi_args<'a>(
    limits: impl IntoIterator<Item = &'a Limit>,
    count: u32,
    now_us: Option<u64>,
) -> Vec<u64> {
    let mut args = Vec::with_capacity(6);
    for limit in limits {
        args.extend([
            limit.quota.interval_us(),
            u64::from(limit.quota.capacity()),
            u64::from(limit.cost),
            u64::from(limit.enforced),
        ]);
    }
    args.push(u64::from(count));
    args.extend(now_us);
    args
}

/// Rebuilds the batch the script decided from its reply `{allowed, backlog}`.
pub(crate) fn batch_from_reply(
    reply: &[i64],
    quota: &Quota,
    cost: u32,
    count: u32,
) -> Result<Batch, StoreError> {
    let limit = Limit::enforced(*quota, cost);
    let multi = multi_batch_from_reply(reply, std::slice::from_ref(&limit), count)?;
    // The multi batch keeps only the allowed requests per bucket; this one
    // answers all `count` of them.
    let backlog = multi.buckets[0].backlog_us;
    Ok(bucket::acquire_batch(backlog, 0, quota, cost, count))
}

/// Rebuilds the multi-limit batch the script decided from its reply
/// `{allowed, backlog_1, ..., backlog_N}`.
///
/// The core's `acquire_all` depends on each `tat` and `now` only through
/// `backlog = min(tat − now, fill)`, so replaying it with `tat = backlog,
/// now = 0` gives the script's batch exactly; a differing `allowed` means
/// the script and the core disagree, which is reported, never hidden.
pub(crate) fn multi_batch_from_reply(
    reply: &[i64],
    limits: &[Limit],
    count: u32,
) -> Result<MultiBatch, StoreError> {
    let Some((&allowed, backlogs)) = reply.split_first().filter(|(_, b)| b.len() == limits.len())
    else {
        return Err(StoreError::Backend(format!(
            "token bucket script returned {reply:?}, expected [allowed, {} backlogs]",
            limits.len()
        )));
    };
    let mut buckets = Vec::with_capacity(limits.len());
    for (&backlog, limit) in backlogs.iter().zip(limits) {
        let backlog = u64::try_from(backlog)
            .map_err(|_| StoreError::Backend(format!("negative backlog {backlog} from script")))?;
        buckets.push((backlog, *limit));
    }
    let batch = multi::acquire_all(0, &buckets, count);
    let agrees = batch
        .buckets
        .iter()
        .zip(&buckets)
        .all(|(b, &(backlog, _))| b.backlog_us == backlog);
    if i64::from(batch.allowed) != allowed || !agrees {
        return Err(StoreError::Backend(format!(
            "token bucket script allowed {allowed} of {count} at backlogs {backlogs:?} µs; \
             the core allows {}",
            batch.allowed
        )));
    }
    Ok(batch)
}

/// The single decision of a one-request reply.
pub(crate) fn decision_from_reply(
    reply: &[i64],
    quota: &Quota,
    cost: u32,
) -> Result<Decision, StoreError> {
    Ok(batch_from_reply(reply, quota, cost, 1)?.decision(0))
}

/// The "now" a store passes to the script: `None` (the script reads Redis
/// `TIME`) except in tests that pinned a `ManualClock` (feature `test-util`).
/// Clones share the pin.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestNow {
    #[cfg(feature = "test-util")]
    clock: std::sync::Arc<std::sync::OnceLock<rateguard_core::clock::ManualClock>>,
}

impl TestNow {
    /// From now on, always `clock`'s time (a second pin is ignored).
    #[cfg(feature = "test-util")]
    pub(crate) fn pin(&self, clock: rateguard_core::clock::ManualClock) {
        let _ = self.clock.set(clock);
    }

    /// The time to pass to the script, if pinned.
    pub(crate) fn get(&self) -> Option<u64> {
        #[cfg(feature = "test-util")]
        if let Some(clock) = self.clock.get() {
            use rateguard_core::Clock;
            return Some(clock.now_us());
        }
        None
    }
}

/// Maps a redis-rs error to the store's error kinds. A refused login
/// (wrong password) and `READONLY` (the node was demoted to a replica by a
/// failover) count as unavailable: this node cannot decide for us now.
pub(crate) fn from_redis(err: &redis::RedisError, timeout: std::time::Duration) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout(timeout)
    } else if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
    {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Backend(err.to_string())
    }
}
