//! The exact-lease scripts and their Rust glue: `lease.lua` (a request
//! over N buckets that may also lease tokens, share-aware) and `share.lua`
//! (a holder's rate-share renewal), each with `ledger.lua` prepended; the
//! Lua mirrors of `rateguard_core::lease::acquire_all` and
//! `rateguard_core::share::Stored::grant`.
//!
//! [`LeaseScripts`] is the client the `redis-leased` store (phase 2 of
//! issue 22) and the RLQS server (issue 23) build on: one multiplexed
//! connection, each script loaded once and called by SHA (reloaded on
//! `NOSCRIPT`), every key passed through `KEYS` (a bucket's key and its
//! `:shares` ledger share a Cluster slot). Replies are rebuilt with the
//! Rust core and any disagreement is an error, never hidden.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rateguard_core::lease::{self, LeaseBatch, LeaseLimit};
use rateguard_core::share::{Debt, Fill, ShareGrant, ShareRequest};
use rateguard_core::{BucketKey, Quota};

use crate::breaker::Breaker;
use crate::redis_conn::{ping, retry_refused, RedisConn};
use crate::{RedisOptions, StoreError};

/// The source of the lease script: `ledger.lua` then `lease.lua`.
pub const LEASE_LUA: &str = concat!(include_str!("ledger.lua"), include_str!("lease.lua"));

/// The source of the share script: `ledger.lua` then `share.lua`.
pub const SHARE_LUA: &str = concat!(include_str!("ledger.lua"), include_str!("share.lua"));

static LEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(LEASE_LUA));
static SHARE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SHARE_LUA));

/// One limit of a lease call: its bucket and what to decide and lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The bucket.
    pub key: BucketKey,
    /// The limit, its cost, and the tokens to lease on top.
    pub limit: LeaseLimit,
}

/// The two scripts on one Redis server (see the module docs).
///
/// Cheap to clone; clones share the connection and the circuit breaker.
#[derive(Clone)]
pub struct LeaseScripts {
    conn: RedisConn,
    timeout: Duration,
    breaker: Arc<Breaker>,
}

impl std::fmt::Debug for LeaseScripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseScripts")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LeaseScripts {
    /// Scripts on `opts.urls[0]` (or the Sentinel master; TLS and ACL as
    /// `opts.access` says); connects lazily like `RedisLuaStore` (fails on a
    /// malformed URL, or a refusal no retry can fix) and loads both scripts
    /// when Redis is up.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let breaker = Arc::new(Breaker::new(opts));
        let conn = RedisConn::new(opts, &breaker)?;
        conn.warm_up(opts).await?;
        let scripts = Self {
            conn,
            timeout: opts.timeout,
            breaker,
        };
        let Ok(mut conn) = scripts.conn.get() else {
            return Ok(scripts);
        };
        let load = async {
            LEASE_SCRIPT.load_async(&mut conn).await?;
            SHARE_SCRIPT.load_async(&mut conn).await
        };
        match tokio::time::timeout(opts.timeout.max(Duration::from_secs(1)), load).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Redis not ready at start; will retry."),
            Err(_) => tracing::warn!("Redis did not answer at start; will retry."),
        }
        Ok(scripts)
    }

    /// Decides one request over `requests` (distinct keys) at Redis `TIME`,
    /// all or nothing, leasing what each limit wants on top when allowed.
    pub async fn acquire_all(&self, requests: &[LeaseRequest]) -> Result<LeaseBatch, StoreError> {
        self.lease(requests, None).await
    }

    /// Renews `req.holder`'s share of `key`'s bucket at Redis `TIME`.
    pub async fn share(
        &self,
        key: &BucketKey,
        quota: &Quota,
        req: &ShareRequest<'_>,
    ) -> Result<ShareGrant, StoreError> {
        self.grant(key, quota, req, None).await
    }

    /// [`acquire_all`](Self::acquire_all) at a fixed "now" (µs) instead of
    /// Redis `TIME`: for tests that compare the script with the core.
    #[cfg(feature = "test-util")]
    pub async fn acquire_all_at(
        &self,
        requests: &[LeaseRequest],
        now_us: u64,
    ) -> Result<LeaseBatch, StoreError> {
        self.lease(requests, Some(now_us)).await
    }

    /// [`share`](Self::share) at a fixed "now" (µs): for tests.
    #[cfg(feature = "test-util")]
    pub async fn share_at(
        &self,
        key: &BucketKey,
        quota: &Quota,
        req: &ShareRequest<'_>,
        now_us: u64,
    ) -> Result<ShareGrant, StoreError> {
        self.grant(key, quota, req, Some(now_us)).await
    }

    /// [`acquire_all`](Self::acquire_all) at `now_us` if given (tests),
    /// else at Redis `TIME`.
    pub(crate) async fn lease(
        &self,
        requests: &[LeaseRequest],
        now_us: Option<u64>,
    ) -> Result<LeaseBatch, StoreError> {
        if let Some((i, r)) = requests
            .iter()
            .enumerate()
            .find(|(i, r)| requests[..*i].iter().any(|o| o.key == r.key))
        {
            return Err(StoreError::Backend(format!(
                "lease call: key {} appears twice (limit {i}); each limit needs its own bucket",
                r.key
            )));
        }
        let mut invocation = LEASE_SCRIPT.prepare_invoke();
        for r in requests {
            invocation.key(r.key.as_str()).key(r.key.share_ledger());
        }
        invocation.arg(lease_args(requests, now_us));
        let reply: Vec<i64> = self.invoke(&invocation).await?;
        let limits: Vec<LeaseLimit> = requests.iter().map(|r| r.limit).collect();
        batch_from_reply(&reply, &limits)
    }

    async fn grant(
        &self,
        key: &BucketKey,
        quota: &Quota,
        req: &ShareRequest<'_>,
        now_us: Option<u64>,
    ) -> Result<ShareGrant, StoreError> {
        let mut invocation = SHARE_SCRIPT.prepare_invoke();
        invocation.key(key.as_str()).key(key.share_ledger());
        invocation
            .arg(quota.interval_us())
            .arg(quota.capacity())
            .arg(req.holder)
            .arg(req.demand)
            .arg(req.ttl_us)
            .arg(req.margin_us)
            .arg(u8::from(req.fill == Fill::Full));
        if let Some(now) = now_us {
            invocation.arg(now);
        }
        let reply: Vec<i64> = self.invoke(&invocation).await?;
        grant_from_reply(&reply, quota)
    }

    /// The connection, breaker and budget the admin calls use.
    pub(crate) fn on(&self) -> crate::redis_admin::On<'_> {
        crate::redis_admin::On {
            conn: &self.conn,
            breaker: &self.breaker,
            timeout: self.timeout,
        }
    }

    /// `PING`, bounded by the breaker and the timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.conn, &self.breaker, self.timeout).await
    }

    /// The time budget of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn invoke(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Vec<i64>, StoreError> {
        let result = self
            .breaker
            .call(
                self.timeout,
                retry_refused(&self.conn, self.timeout, |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                }),
            )
            .await;
        self.conn.observe(&result);
        result
    }
}

/// `lease.lua`'s `ARGV`: per limit interval, capacity, cost, enforced and
/// want, then (tests only) a fixed "now".
fn lease_args(requests: &[LeaseRequest], now_us: Option<u64>) -> Vec<u64> {
    let mut args = Vec::with_capacity(requests.len() * 5 + 1);
    for r in requests {
        let l = &r.limit.limit;
        args.extend([
            l.quota.interval_us(),
            u64::from(l.quota.capacity()),
            u64::from(l.cost),
            u64::from(l.enforced),
            u64::from(r.limit.want),
        ]);
    }
    args.extend(now_us);
    args
}

/// Rebuilds the script's decision from `{allowed, (backlog, queued,
/// granted)*}` with `rateguard_core::lease::decide`, which depends on
/// each bucket only through its debt; any disagreement is an error.
fn batch_from_reply(reply: &[i64], limits: &[LeaseLimit]) -> Result<LeaseBatch, StoreError> {
    let bad = || {
        StoreError::Backend(format!(
            "lease script returned {reply:?} for {} limits",
            limits.len()
        ))
    };
    let (&allowed, rest) = reply.split_first().ok_or_else(bad)?;
    if rest.len() != 3 * limits.len() {
        return Err(bad());
    }
    let unsigned = |v: i64| u64::try_from(v).map_err(|_| bad());
    let mut debts = Vec::with_capacity(limits.len());
    let mut granted = Vec::with_capacity(limits.len());
    for (chunk, limit) in rest.chunks(3).zip(limits) {
        let debt = Debt {
            backlog_us: unsigned(chunk[0])?,
            queued_us: unsigned(chunk[1])?,
        };
        debts.push((debt, *limit));
        granted.push(unsigned(chunk[2])?);
    }
    let batch = lease::decide(&debts);
    let agrees = i64::from(batch.allowed) == allowed
        && batch
            .buckets
            .iter()
            .zip(&granted)
            .all(|(b, &g)| u64::from(b.granted) == g);
    if !agrees {
        return Err(StoreError::Backend(format!(
            "lease script replied {reply:?}; the core decides allowed {} granting {:?}",
            batch.allowed,
            batch.buckets.iter().map(|b| b.granted).collect::<Vec<_>>()
        )));
    }
    Ok(batch)
}

/// `{parts, burst, added, fresh}` as a [`ShareGrant`], checked for range.
fn grant_from_reply(reply: &[i64], quota: &Quota) -> Result<ShareGrant, StoreError> {
    let bad = || StoreError::Backend(format!("share script returned {reply:?}"));
    let &[parts, burst, added, fresh] = reply else {
        return Err(bad());
    };
    let small = |v: i64| u32::try_from(v).map_err(|_| bad());
    let grant = ShareGrant {
        parts: small(parts)?,
        burst: small(burst)?,
        added: small(added)?,
        fresh: fresh == 1,
    };
    let in_range = grant.parts <= rateguard_core::share::SHARE_PARTS
        && grant.burst <= quota.capacity()
        && grant.added <= grant.burst
        && (grant.parts == 0) == (grant.burst == 0);
    if !in_range {
        return Err(bad());
    }
    Ok(grant)
}
