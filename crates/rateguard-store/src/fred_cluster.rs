//! [`FredClusterStore`] (`fred-cluster`): the token-bucket script over the
//! `fred` client on a Redis Cluster.
//!
//! Every [`BucketKey`] carries a hash tag (`rl:{policy:client}`), so one
//! bucket lives in one slot and each script call touches one node. fred
//! follows `MOVED`/`ASK` redirections, refreshes the slot map, and
//! reconnects to nodes that went away.
//!
//! # Several limits: the guarantee
//! Redis Cluster cannot run one script over keys in different slots, so a
//! multi-limit request whose buckets live in several slots is not one
//! atomic step here. [`BucketStore::acquire_all`] decides the keys of one
//! slot in one script call (all or nothing within the slot), slot by slot
//! in key order; when a later slot denies, it gives back what the earlier
//! slots spent (`refund.lua`: `tat` moves back by `cost·T`, never below
//! now). So:
//! - it **never over-admits**: every bucket's spends are atomic script
//!   calls that respect its limit, and a refund only returns the request's
//!   own tokens;
//! - it **under-admits only transiently**: between a spend and its refund
//!   (one round trip), other requests see those tokens as taken and may be
//!   denied; once refunded, the buckets are as if the denied request never
//!   came. A refund that fails (node down) leaves the tokens spent, which
//!   is again on the strict side, until the bucket refills.
//!
//! When all keys share a slot, the request is one script call, exact like
//! `redis-lua`.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use fred::prelude::{
    Builder, ClientLike, Config, Error as FredError, ErrorKind, ReconnectPolicy, ServerConfig,
};
use fred::types::config::TlsConfig;
use fred::types::scripts::Script;
use rateguard_core::{BucketKey, Decision, MultiDecision, Peek, Quota};

use crate::access::redact_url;
use crate::breaker::Breaker;
use crate::script::{self, PEEK_LUA, REFUND_LUA, TOKEN_BUCKET_LUA};
use crate::{check_distinct_keys, AcquireRequest, BucketStore, RedisOptions, StoreError};

mod seeds;
mod slots;

use seeds::{first_refusal, refusal, Seeds};

static FRED_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::from_lua(TOKEN_BUCKET_LUA));
static REFUND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::from_lua(REFUND_LUA));
static PEEK_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::from_lua(PEEK_LUA));
/// The admin calls as one-key scripts (each key in its own slot), on the
/// scripting commands the client already speaks.
static DEL_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return {redis.call('DEL', KEYS[1])}"));
static INCR_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return {redis.call('INCR', KEYS[1])}"));
static GET_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua("return {tonumber(redis.call('GET', KEYS[1]) or '0') or 0}"));

/// Buckets in a Redis Cluster, decided by `token_bucket.lua` with the owning
/// node's `TIME` as the clock.
///
/// Cheap to clone; clones share the client (one connection per node) and the
/// circuit breaker.
#[derive(Clone)]
pub struct FredClusterStore {
    client: fred::prelude::Client,
    timeout: Duration,
    breaker: Arc<Breaker>,
    test_now: script::TestNow,
}

impl std::fmt::Debug for FredClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FredClusterStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl FredClusterStore {
    /// A store on the cluster reachable through the seed nodes `opts.urls`
    /// (`redis://` or, for TLS to every node, `rediss://`; the first URL's
    /// user and password authenticate on every node).
    ///
    /// Malformed URLs are a [`StoreError::Backend`], and so is a cluster
    /// that refuses us for good (wrong password, missing ACL permission,
    /// untrusted certificate), with a message naming the cause. A cluster that is down
    /// is not an error, as with the redis-rs stores: `connect` waits about a
    /// second for a seed, then returns anyway (with a warning) while the
    /// client keeps reconnecting in the background; until it is connected,
    /// calls fail within `opts.timeout`, so a gateway replica that starts
    /// during a Redis outage fails open instead of refusing to start.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let seeds = Seeds::parse(&opts.urls)?;
        crate::redis_conn::warn_if_insecure(opts);
        let tls = match seeds.tls {
            true => Some(TlsConfig::from(opts.access.tls.rustls_config()?)),
            false => None,
        };
        let config = Config {
            server: ServerConfig::Clustered {
                hosts: seeds.hosts,
                policy: Default::default(),
            },
            username: seeds.username,
            password: seeds.password,
            // The same TLS to every node, the seeds and those learnt from
            // `CLUSTER SLOTS` alike, verified under the name the slot map gives.
            tls,
            // Run the reconnect policy for the first connection too, so a
            // cluster that is down at start is picked up when it comes back.
            fail_fast: false,
            ..Config::default()
        };
        let setup = opts.timeout.max(Duration::from_secs(1));
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = setup;
                c.internal_command_timeout = setup;
                // A command whose connection dropped may already have run:
                // resending it could spend tokens twice. Fail it instead.
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = opts.timeout)
            .set_policy(reconnect_policy(opts))
            .build()
            .map_err(|e| StoreError::Backend(format!("fred client: {e}")))?;
        let seed = redact_url(opts.urls.first().map_or("", String::as_str));
        let mut errors = fred::interfaces::EventInterface::error_rx(&client);
        // The connection task runs (and reconnects) until the client quits.
        drop(client.connect());
        let first = async {
            tokio::select! {
                connected = client.wait_for_connect() => connected.map_err(|e| {
                    refusal(&e, &seed).ok_or(e)
                }),
                cause = first_refusal(&mut errors, &seed) => Err(Ok(cause)),
            }
        };
        match tokio::time::timeout(setup, first).await {
            Ok(Ok(())) => {
                if let Err(e) = FRED_SCRIPT.load(&client).await {
                    if let Some(cause) = refusal(&e, &seed) {
                        let _ = client.quit().await;
                        return Err(StoreError::Backend(cause));
                    }
                    tracing::warn!(error = %e, "Loading the script on the cluster failed; will retry.");
                }
            }
            Ok(Err(Ok(cause))) => {
                let _ = client.quit().await;
                return Err(StoreError::Backend(cause));
            }
            Ok(Err(Err(e))) => {
                tracing::warn!(error = %e, "Redis Cluster not reachable at start; will keep retrying.");
            }
            Err(_) => {
                tracing::warn!(timeout = ?setup, "No Redis Cluster seed answered at start; will keep retrying.");
            }
        }
        let breaker = Arc::new(Breaker::new(opts));
        tokio::spawn(probe_on_reconnect(&client, &breaker));
        Ok(Self {
            client,
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
        let reply = self.eval(&FRED_SCRIPT, vec![key.as_str()], args).await?;
        script::batch_from_reply(&reply, quota, cost, count)
    }

    /// From now on every script call passes `clock`'s time instead of
    /// letting the script read the node's `TIME`: tests pin "now" with it.
    #[cfg(feature = "test-util")]
    pub fn with_test_clock(self, clock: rateguard_core::clock::ManualClock) -> Self {
        self.test_now.pin(clock);
        self
    }

    /// Runs `script` (whose keys must share one slot) with `args`.
    async fn eval(
        &self,
        script: &Script,
        keys: Vec<&str>,
        args: Vec<u64>,
    ) -> Result<Vec<i64>, StoreError> {
        let timeout = self.timeout;
        let args: Vec<i64> = args
            .into_iter()
            // Quota keeps every argument far below i64::MAX.
            .map(|a| i64::try_from(a).unwrap_or(i64::MAX))
            .collect();
        self.breaker
            .call(timeout, async {
                script
                    .evalsha_with_reload::<Vec<i64>, _, _>(&self.client, keys, args)
                    .await
                    .map_err(|e| from_fred(&e, timeout))
            })
            .await
    }
}

/// Reconnects to a lost node forever (nodes come back by themselves), on
/// the breaker's schedule: `breaker_cooldown` doubling up to
/// `breaker_max_cooldown` (plus fred's jitter of up to 50 ms, capped too).
/// So a dead node sees at most one connection attempt per
/// `breaker_max_cooldown` from each replica, and a node that returns is
/// picked up within about that long: measured, a 1 s cap was most of the
/// recovery time after a node restart (`tests/redis_stores/recovery.rs`).
fn reconnect_policy(opts: &RedisOptions) -> ReconnectPolicy {
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1);
    let max = opts.breaker_max_cooldown.max(opts.breaker_cooldown);
    ReconnectPolicy::new_exponential(0, ms(opts.breaker_cooldown), ms(max), 2)
}

/// Each time fred reports a (re)connection, ends the breaker's cooldown:
/// fred's reconnect attempts are the probes of a node that is down, so the
/// next call can go through at once (measured, a probe that ran before
/// fred had reconnected cost a whole extra cooldown). Ends with the client
/// or the store.
fn probe_on_reconnect(
    client: &fred::prelude::Client,
    breaker: &Arc<Breaker>,
) -> impl Future<Output = ()> + Send + 'static {
    use fred::interfaces::EventInterface;
    let mut reconnects = client.reconnect_rx();
    let breaker = Arc::downgrade(breaker);
    async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match reconnects.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => match breaker.upgrade() {
                    Some(breaker) => breaker.probe_now(),
                    None => return,
                },
                Err(RecvError::Closed) => return,
            }
        }
    }
}

fn from_fred(err: &FredError, timeout: Duration) -> StoreError {
    match err.kind() {
        ErrorKind::Timeout => StoreError::Timeout(timeout),
        ErrorKind::IO | ErrorKind::Canceled | ErrorKind::Cluster | ErrorKind::Routing => {
            StoreError::Unavailable(err.to_string())
        }
        _ if err.details().starts_with("CLUSTERDOWN") => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Backend(err.to_string()),
    }
}

impl BucketStore for FredClusterStore {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::FredCluster
    }

    /// Shared, and a request over several slots refunds its earlier slots
    /// when a later one denies (see the module docs).
    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities {
            shared: true,
            refunds: true,
        }
    }

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let args = script::args(quota, cost, 1, self.test_now.get());
        let reply = self.eval(&FRED_SCRIPT, vec![key.as_str()], args).await?;
        script::decision_from_reply(&reply, quota, cost)
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        check_distinct_keys(limits)?;
        slots::acquire_all(self, limits).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let timeout = self.timeout;
        self.breaker
            .call(timeout, async {
                self.client
                    .ping::<String>(None)
                    .await
                    .map(drop)
                    .map_err(|e| from_fred(&e, timeout))
            })
            .await
    }

    /// `peek.lua` on the bucket's node.
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        let args = script::peek_args(quota, self.test_now.get());
        let reply = self.eval(&PEEK_SCRIPT, vec![key.as_str()], args).await?;
        script::peek_from_reply(&reply)
    }

    /// `DEL` on the bucket's node, then `INCR` of the generation on its
    /// own (the two keys are in different slots): the generation is
    /// raised only once the bucket is gone.
    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        self.eval(&DEL_SCRIPT, vec![key.as_str()], Vec::new())
            .await?;
        self.eval(&INCR_SCRIPT, vec![crate::RESETS_KEY], Vec::new())
            .await
            .map(drop)
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        let reply = self
            .eval(&GET_SCRIPT, vec![crate::RESETS_KEY], Vec::new())
            .await?;
        Ok(reply.first().map_or(0, |&n| u64::try_from(n).unwrap_or(0)))
    }
}
