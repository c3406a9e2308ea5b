//! [`RedisKeys`]: the key registry of `identity.keys = "redis"`, in the
//! store's Redis: one hash [`KEYS_HASH`] (SHA-256 hex digest of an API key
//! → its plan's name, empty for none) and a version [`KEYS_VERSION`]
//! raised by every write, in the same script. Replicas poll the version
//! and read the whole hash when it changed; `rateguard keys` writes.
//! Keys are never stored in clear.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::breaker::Breaker;
use crate::redis_conn::{retry_refused, RedisConn};
use crate::{RedisOptions, StoreError};

/// The hash: digest (64 hex digits) → plan name (`""`: no plan).
pub const KEYS_HASH: &str = "rateguard:keys";
/// Raised by every write to [`KEYS_HASH`].
pub const KEYS_VERSION: &str = "rateguard:keys:version";

/// The registry as read: digest → plan name (`None`: no plan).
pub type Registry = HashMap<[u8; 32], Option<String>>;

/// `{version, HGETALL}` in one atomic read.
static LOAD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new("return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}")
});
/// `HSET` then `INCR` of the version; returns whether the key was new.
static SET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n\
         redis.call('INCR', KEYS[2])\nreturn new",
    )
});
/// `HDEL` then, if it removed anything, `INCR` of the version.
static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('HDEL', KEYS[1], ARGV[1])\n\
         if n > 0 then redis.call('INCR', KEYS[2]) end\nreturn n",
    )
});

/// A connection to the key registry (standalone Redis, direct or through
/// Sentinel: the `redis-lua` and `redis-pipelined` stores' Redis).
#[derive(Clone)]
pub struct RedisKeys {
    conn: RedisConn,
    breaker: Arc<Breaker>,
    timeout: Duration,
}

impl std::fmt::Debug for RedisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeys").finish_non_exhaustive()
    }
}

/// The SHA-256 digest of 64 hex digits, if that is what `text` is.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (text.len() == 64 && hex_decode(text, &mut out)).then_some(out)
}

fn hex_decode(text: &str, out: &mut [u8; 32]) -> bool {
    let digit = |c: u8| (c as char).to_digit(16);
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(a), Some(b)) => out[i] = (a * 16 + b) as u8,
            _ => return false,
        }
    }
    true
}

/// 64 lowercase hex digits.
pub fn digest_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisKeys {
    /// The registry on `opts.urls[0]` (lazily connected, like the stores);
    /// each call gets `opts.timeout`, a full read 10 s at least.
    pub fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let breaker = Arc::new(Breaker::new(opts));
        let conn = RedisConn::new(opts, &breaker)?;
        Ok(Self {
            conn,
            breaker,
            timeout: opts.timeout,
        })
    }

    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        timeout: Duration,
        script: &redis::Script,
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.key(KEYS_HASH).key(KEYS_VERSION);
        for arg in args {
            invocation.arg(*arg);
        }
        let invocation = &invocation;
        let result = self
            .breaker
            .call(
                timeout,
                retry_refused(&self.conn, timeout, |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                }),
            )
            .await;
        self.conn.observe(&result);
        result
    }

    /// The version (0 before any write).
    pub async fn version(&self) -> Result<u64, StoreError> {
        let result = self
            .breaker
            .call(
                self.timeout,
                retry_refused(&self.conn, self.timeout, |mut conn| async move {
                    redis::cmd("GET")
                        .arg(KEYS_VERSION)
                        .query_async::<Option<u64>>(&mut conn)
                        .await
                }),
            )
            .await;
        self.conn.observe(&result);
        Ok(result?.unwrap_or(0))
    }

    /// The version and the whole registry, read atomically. Entries that
    /// are not a digest are skipped.
    pub async fn load(&self) -> Result<(u64, Registry), StoreError> {
        let timeout = self.timeout.max(Duration::from_secs(10));
        let (version, pairs): (String, HashMap<String, String>) =
            self.run(timeout, &LOAD, &[]).await?;
        let registry = pairs
            .into_iter()
            .filter_map(|(digest, plan)| {
                Some((parse_digest(&digest)?, (!plan.is_empty()).then_some(plan)))
            })
            .collect();
        Ok((version.parse().unwrap_or(0), registry))
    }

    /// Puts `digest` on `plan` (`None`: known, no plan); returns whether
    /// it was new.
    pub async fn set(&self, digest: &[u8; 32], plan: Option<&str>) -> Result<bool, StoreError> {
        let hex = digest_hex(digest);
        let new: i64 = self
            .run(self.timeout, &SET, &[&hex, plan.unwrap_or("")])
            .await?;
        Ok(new == 1)
    }

    /// `digest`'s entry: `None` if not registered, else its plan.
    pub async fn get(&self, digest: &[u8; 32]) -> Result<Option<Option<String>>, StoreError> {
        let hex = digest_hex(digest);
        let hex = &hex;
        let result = self
            .breaker
            .call(
                self.timeout,
                retry_refused(&self.conn, self.timeout, |mut conn| async move {
                    redis::cmd("HGET")
                        .arg(KEYS_HASH)
                        .arg(hex)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                }),
            )
            .await;
        self.conn.observe(&result);
        Ok(result?.map(|plan| (!plan.is_empty()).then_some(plan)))
    }

    /// Removes `digest`; returns whether it was there.
    pub async fn remove(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        let hex = digest_hex(digest);
        let n: i64 = self.run(self.timeout, &REMOVE, &[&hex]).await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_hex() {
        let d = [0xabu8; 32];
        assert_eq!(parse_digest(&digest_hex(&d)), Some(d));
        assert_eq!(parse_digest("ab"), None);
        assert_eq!(parse_digest(&"zz".repeat(32)), None);
    }
}
