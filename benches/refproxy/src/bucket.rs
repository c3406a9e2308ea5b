//! One token bucket per API key in Redis, decided by one `EVALSHA` of a
//! small GCRA script: the store call a rate-limiting proxy cannot avoid,
//! with none of RateGuard's own work around it (no key hashing, no layered
//! limits, no breaker, no deny cache, no headers).

use redis::aio::MultiplexedConnection;
use redis::Script;

/// GCRA on one key, Redis `TIME` as the clock: the same reads, writes and
/// expiry as `rateguard-store`'s `token_bucket.lua` for a one-limit policy.
/// KEYS[1]: the theoretical arrival time (µs); ARGV: interval_us, capacity.
/// Returns 1 (allowed) or 0.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') or 0, now)
local backlog = tat - now + interval
if backlog > capacity * interval then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', now + backlog), 'PX', math.floor(backlog / 1000) + 1000)
return 1
";

/// The limit every key gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    /// Tokens a full bucket holds.
    pub(crate) capacity: u64,
    /// Microseconds to refill one token.
    pub(crate) interval_us: u64,
}

/// One runtime's connection and the script (its SHA-1 computed once).
pub(crate) struct Bucket {
    conn: MultiplexedConnection,
    script: Script,
    prefix: String,
    quota: Quota,
}

impl Bucket {
    /// Opens a multiplexed connection whose driver task runs on the calling
    /// runtime.
    pub(crate) async fn connect(
        client: &redis::Client,
        prefix: String,
        quota: Quota,
    ) -> redis::RedisResult<Self> {
        Ok(Self {
            conn: client.get_multiplexed_async_connection().await?,
            script: Script::new(GCRA),
            prefix,
            quota,
        })
    }

    /// Spends one token of `api_key`'s bucket if it has one: `EVALSHA`
    /// (redis-rs loads the script with `EVAL` on the first `NOSCRIPT`).
    pub(crate) async fn allow(&self, api_key: &[u8]) -> redis::RedisResult<bool> {
        let mut key = Vec::with_capacity(self.prefix.len() + 1 + api_key.len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.push(b':');
        key.extend_from_slice(api_key);
        let allowed: u8 = self
            .script
            .key(key)
            .arg(self.quota.interval_us)
            .arg(self.quota.capacity)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(allowed == 1)
    }
}
