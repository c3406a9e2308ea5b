//! [`RedisOptions`]: how the Redis stores connect, time out and back off.

use std::time::Duration;

use rateguard_contract::RawStore;

use crate::RedisAccess;

/// Settings shared by the three Redis stores.
///
/// URLs may carry an ACL user and password
/// (`rediss://user:password@host:6380`); the stores send `AUTH user
/// password` on every connection and never log the password.
///
/// ```
/// use rateguard_store::RedisOptions;
/// let opts = RedisOptions {
///     urls: vec!["redis://127.0.0.1:6379".into()],
///     ..RedisOptions::default()
/// };
/// assert_eq!(opts.timeout.as_millis(), 50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Server URLs (`redis://host:port`). The standalone stores use the
    /// first; `fred-cluster` uses them all as seed nodes.
    pub urls: Vec<String>,
    /// Time budget of one store call, connection set-up included (default 50 ms).
    /// A call that exceeds it returns [`StoreError::Timeout`](crate::StoreError::Timeout).
    pub timeout: Duration,
    /// `redis-pipelined`: most script calls in one pipeline (default 128).
    pub batch_max: usize,
    /// `redis-pipelined`: longest extra wait to fill a batch (default 200 µs).
    /// Only under concurrent load (the previous batch held more than one
    /// request), and only while waiting keeps bringing new requests; a lone
    /// caller never waits. Zero disables waiting.
    pub batch_wait: Duration,
    /// Consecutive connection failures or timeouts that open the circuit (default 5).
    pub breaker_threshold: u32,
    /// How long the circuit stays open before one probe call (default 100 ms);
    /// doubles after each failed probe, up to `breaker_max_cooldown`.
    /// `fred-cluster` reconnects to a lost node on the same schedule.
    pub breaker_cooldown: Duration,
    /// Longest time the circuit stays open between probes (default 250 ms,
    /// `RawStore::DEFAULT_BREAKER_MAX_COOLDOWN_MS`).
    /// While Redis is down, a replica probes it at most once per this
    /// pause; once it is back, enforcement resumes within about this long.
    pub breaker_max_cooldown: Duration,
    /// TLS for `rediss://` URLs and the Sentinel master name.
    pub access: RedisAccess,
    /// `redis-leased`: when and how much a replica leases.
    pub lease: LeaseOptions,
}

/// How a `redis-leased` replica leases tokens (`docs/leases.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// The lease period Δ (default 50 ms): a lease is what a bucket refills
    /// in Δ, at most what this replica saw of the key in one period.
    pub period: Duration,
    /// Requests per second a replica must see for a key before it leases
    /// (default 100; 0: every key leases). Slower keys stay one exact
    /// script call per request.
    pub hot_rate: u32,
    /// Most keys a replica tracks (default 10 000).
    pub keys: usize,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            period: Duration::from_millis(50),
            hot_rate: 100,
            keys: 10_000,
        }
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            urls: vec!["redis://127.0.0.1:6379".to_owned()],
            timeout: Duration::from_millis(50),
            batch_max: 128,
            batch_wait: Duration::from_micros(200),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_millis(100),
            breaker_max_cooldown: Duration::from_millis(
                RawStore::DEFAULT_BREAKER_MAX_COOLDOWN_MS.unsigned_abs(),
            ),
            access: RedisAccess::default(),
            lease: LeaseOptions::default(),
        }
    }
}
