//! The one Lua script the Redis stores share, and its Rust-side glue:
//! arguments in, `Decision`s out (built by `rateguard_core::bucket`, so a
//! `Decision` is formatted in one place only).

use std::sync::LazyLock;

use rateguard_core::bucket::{self, Batch};
use rateguard_core::{Decision, Quota};

use crate::StoreError;

/// The source of `token_bucket.lua`, the mirror of
/// `rateguard_core::bucket::acquire_batch`.
pub const TOKEN_BUCKET_LUA: &str = include_str!("token_bucket.lua");

/// The script as redis-rs runs it (EVALSHA, reloaded on NOSCRIPT).
pub(crate) static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(TOKEN_BUCKET_LUA));

/// The script's `ARGV`: interval, capacity, cost, count and, in tests only,
/// a fixed "now" in microseconds (otherwise the script reads Redis `TIME`).
pub(crate) fn args(quota: &Quota, cost: u32, count: u32, now_us: Option<u64>) -> Vec<u64> {
    let mut args = vec![
        quota.interval_us(),
        u64::from(quota.capacity()),
        u64::from(cost),
        u64::from(count),
    ];
    args.extend(now_us);
    args
}

/// Rebuilds the batch the script decided from its reply `{allowed, backlog}`.
///
/// The core's `acquire_batch` depends on `tat` and `now` only through
/// `backlog = min(tat − now, fill)`, so replaying it with `tat = backlog,
/// now = 0` gives the script's batch exactly; a differing `allowed` means
/// the script and the core disagree, which is reported, never hidden.
pub(crate) fn batch_from_reply(
    reply: &[i64],
    quota: &Quota,
    cost: u32,
    count: u32,
) -> Result<Batch, StoreError> {
    let &[allowed, backlog] = reply else {
        return Err(StoreError::Backend(format!(
            "token bucket script returned {reply:?}, expected [allowed, backlog]"
        )));
    };
    let backlog = u64::try_from(backlog)
        .map_err(|_| StoreError::Backend(format!("negative backlog {backlog} from script")))?;
    let batch = bucket::acquire_batch(backlog, 0, quota, cost, count);
    if i64::from(batch.allowed) != allowed || batch.backlog_us != backlog {
        return Err(StoreError::Backend(format!(
            "token bucket script allowed {allowed} of {count} at backlog {backlog} µs; \
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

/// Maps a redis-rs error to the store's error kinds.
pub(crate) fn from_redis(err: &redis::RedisError, timeout: std::time::Duration) -> StoreError {
    if err.is_timeout() {
        StoreError::Timeout(timeout)
    } else if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
    {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Backend(err.to_string())
    }
}
