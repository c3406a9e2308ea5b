//! [`RedisLeasedStore`] (`redis-leased`): exact decisions through
//! `lease.lua`, with tier-1 token leases for the keys this replica sees
//! often (`rateguard_core::lease`, `docs/leases.md`).
//!
//! # How a request is decided
//! Per limit, in order, each key's local state locked on its own:
//! 1. the key's lease pays the cost at once ([`Lease::try_spend`]): no
//!    store call for that limit;
//! 2. else, if this replica has a leasing call for the key out, the
//!    request waits for its reply (at most the store's timeout, a few
//!    times) and starts over;
//! 3. else, if the last reply proved that no full lease fits yet
//!    ([`Lease::is_short`]), an enforced limit denies locally (the key is
//!    over its limit: one call per lease, not one per request);
//! 4. else the limit goes to the store, asking for a lease on top when the
//!    key is hot here (the detector in `keys`).
//!
//! The limits that go to the store are decided in one `lease.lua` call,
//! all or nothing; the tokens taken locally for the others are kept back
//! meanwhile ([`Reservation`]) and refunded if the request is denied, so a
//! request denied by one limit spends nothing on the others. A key that is
//! not hot costs exactly what `redis-lua` costs: one script call per
//! request, with the same decision.
//!
//! # Why it is exact
//! The store's side is `rateguard_core::lease::acquire_all` and this
//! replica's is [`Lease`], whose module docs carry the argument (tested by
//! the core's simulation over every window): the admitted requests of a
//! bucket, over all replicas, never exceed `C + ⌊w/T⌋` in any window of
//! length `w`. What leases cost is under-admission: tokens a replica
//! leased and did not spend before its slice drained.
//!
//! A cancelled call (the caller's timeout) refunds what it kept back and
//! loses its grant (under-admission only). A store that fails lets each
//! replica spend what it holds until its leases end; then the caller's
//! `on_error` applies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rateguard_core::lease::{LeaseLimit, Reservation};
use rateguard_core::{BucketKey, Clock, Decision, MultiDecision, Peek, Quota, SystemClock};
use tokio::sync::futures::OwnedNotified;

use crate::shards::{Shard, Shards, SHARDS};
use crate::{
    check_distinct_keys, AcquireRequest, BucketStore, Capabilities, LeaseOptions, LeaseRequest,
    LeaseScripts, RedisOptions, StoreError, StoreKind,
};

mod keys;

use keys::{hot_per_period, KeyState};

/// How many times one request waits for another's leasing call before it
/// calls the store itself.
const MAX_WAITS: usize = 3;

/// Buckets in one Redis server decided by `lease.lua`, with token leases
/// for hot keys (see the module docs).
///
/// Cheap to clone; clones share the connection, the breaker and the
/// leases (one per replica process).
#[derive(Clone)]
pub struct RedisLeasedStore<C: Clock = SystemClock> {
    scripts: LeaseScripts,
    keys: Arc<Keys>,
    options: LeaseOptions,
    clock: C,
    /// Tests: the scripts' "now" is `clock`'s, not Redis `TIME`.
    pinned: bool,
    counters: Arc<Counters>,
}

impl<C: Clock> std::fmt::Debug for RedisLeasedStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLeasedStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Every key's local state.
#[derive(Debug)]
struct Keys {
    map: Shards<KeyState>,
    per_shard: usize,
    next_generation: AtomicU64,
}

/// What this replica did, for tests and metrics.
#[derive(Debug, Default)]
struct Counters {
    script_calls: AtomicU64,
    lease_answers: AtomicU64,
}

impl RedisLeasedStore<SystemClock> {
    /// A store on `opts.urls[0]` leasing as `opts.lease` says; connects
    /// lazily like [`RedisLuaStore`](crate::RedisLuaStore).
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        Ok(Self {
            scripts: LeaseScripts::connect(opts).await?,
            keys: Arc::new(Keys {
                map: Shards::new(),
                per_shard: opts.lease.keys.div_ceil(SHARDS).max(1),
                next_generation: AtomicU64::new(0),
            }),
            options: opts.lease,
            clock: SystemClock::new(),
            pinned: false,
            counters: Arc::default(),
        })
    }

    /// The same store on `clock`, which also pins the scripts' "now":
    /// time moves only when the test moves it (a fresh local state).
    #[cfg(feature = "test-util")]
    pub fn with_test_clock(
        self,
        clock: rateguard_core::clock::ManualClock,
    ) -> RedisLeasedStore<rateguard_core::clock::ManualClock> {
        RedisLeasedStore {
            scripts: self.scripts,
            keys: self.keys,
            options: self.options,
            clock,
            pinned: true,
            counters: self.counters,
        }
    }
}

/// What to do with a request after looking at the local state.
enum Plan {
    /// Answered here (paid from leases, or held off).
    Answered(Vec<Option<Decision>>),
    /// Wait for this replica's leasing call for one of the keys.
    Wait(OwnedNotified),
    /// Ask the store.
    Call(Outgoing),
}

/// A store call about to be made: the limits it decides, with the local
/// state it depends on. Dropped before it is settled (a cancelled call),
/// it refunds what it kept back and clears its leasing marks.
struct Outgoing {
    keys: Arc<Keys>,
    sent_us: u64,
    /// Per store limit: the limit's index in the request and its want.
    to_store: Vec<(usize, u32)>,
    /// Limits paid locally, kept back until the store decides the rest.
    kept: Vec<Kept>,
    /// Keys whose in-flight mark this call set (with their generation).
    flights: Vec<(BucketKey, u64)>,
    settled: bool,
}

/// A limit paid from the lease while the request's other limits are
/// being decided.
struct Kept {
    index: usize,
    key: BucketKey,
    generation: u64,
    reservation: Reservation,
    /// Its answer if the request is allowed.
    decision: Decision,
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        if !self.settled {
            // Cancelled: as if the request had not come.
            for k in &self.kept {
                self.keys.settle(&k.key, k.generation, k.reservation, false);
            }
        }
        // Either way the call is over: its waiters look again.
        for (key, generation) in &self.flights {
            self.keys.with(key, |s| {
                if s.generation == *generation {
                    if let Some(n) = s.in_flight.take() {
                        n.notify_waiters();
                    }
                }
            });
        }
        self.flights.clear();
    }
}

impl Keys {
    /// Runs `f` on `key`'s state, if there is one.
    fn with<T>(&self, key: &BucketKey, f: impl FnOnce(&mut KeyState) -> T) -> Option<T> {
        let mut shard = self.map.lock(self.map.shard_of(key));
        shard.get_mut(key).map(f)
    }

    /// `key`'s state for `quota`, created (or renewed, if its quota
    /// changed) as needed, in the locked `shard`; makes room when the shard
    /// is full by dropping the least recently seen key without a call out.
    fn state<'s>(
        &self,
        shard: &'s mut Shard<'_, KeyState>,
        request: &AcquireRequest,
        now_us: u64,
    ) -> &'s mut KeyState {
        let fresh = |keys: &Self| {
            let generation = keys.next_generation.fetch_add(1, Ordering::Relaxed);
            KeyState::new(generation, request.quota, now_us)
        };
        if !shard.contains_key(&request.key) && shard.len() >= self.per_shard {
            let oldest = shard
                .iter()
                .filter(|(_, s)| s.in_flight.is_none())
                .min_by_key(|(_, s)| s.last_seen_us)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                shard.remove(&k);
            }
        }
        let state = shard
            .entry(request.key.clone())
            .or_insert_with(|| fresh(self));
        if state.quota != request.quota {
            *state = fresh(self);
        }
        state
    }

    /// Confirms (the request was allowed) or refunds a reservation, if the
    /// state it came from is still there.
    fn settle(&self, key: &BucketKey, generation: u64, r: Reservation, allowed: bool) {
        self.with(key, |s| {
            if s.generation == generation {
                if allowed {
                    s.lease.confirm(r);
                } else {
                    s.lease.refund(r);
                }
            }
        });
    }
}

impl<C: Clock + Clone> RedisLeasedStore<C> {
    /// Script calls this replica made (tests, the lab).
    pub fn script_calls(&self) -> u64 {
        self.counters.script_calls.load(Ordering::Relaxed)
    }

    /// Limits this replica paid from its leases.
    pub fn lease_answers(&self) -> u64 {
        self.counters.lease_answers.load(Ordering::Relaxed)
    }

    fn period_us(&self) -> u64 {
        u64::try_from(self.options.period.as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Looks at the local state of every limit (see the module docs).
    fn plan(&self, limits: &[AcquireRequest], now_us: u64, count: bool, may_wait: bool) -> Plan {
        let period = self.period_us();
        let hot = hot_per_period(self.options.hot_rate, period);
        let mut decisions: Vec<Option<Decision>> = vec![None; limits.len()];
        let mut kept = Vec::new();
        let mut to_store = Vec::new();
        let mut denied = false;
        let mut wait = None;
        // Keys whose leasing call this request makes: requests that find
        // no credit wait for its reply instead of calling too.
        let mut flights: Vec<(BucketKey, u64)> = Vec::new();
        for (i, r) in limits.iter().enumerate() {
            let mut shard = self.keys.map.lock(self.keys.map.shard_of(&r.key));
            let s = self.keys.state(&mut shard, r, now_us);
            s.last_seen_us = now_us;
            if count {
                s.detector.observe(now_us, period);
            }
            // A request of cost 0 (a look at the bucket) asks the store.
            let spent = (r.cost > 0)
                .then(|| s.lease.try_spend(now_us, &r.quota, r.cost))
                .flatten();
            if let Some(reservation) = spent {
                kept.push(Kept {
                    index: i,
                    key: r.key.clone(),
                    generation: s.generation,
                    reservation,
                    decision: s.local_allowed(now_us),
                });
                continue;
            }
            if let (true, Some(n)) = (may_wait, &s.in_flight) {
                wait = Some(n.clone().notified_owned());
                break;
            }
            let short = s.lease.is_short(now_us);
            if short && r.enforced && r.cost > 0 {
                decisions[i] = Some(s.held_off(now_us));
                denied = true;
                continue;
            }
            // One leasing call per key at a time: more would only hold
            // credit that cannot be spent before it ends.
            let want = if short || r.cost == 0 || s.in_flight.is_some() {
                0
            } else {
                s.want(period, hot)
            };
            if want > 0 {
                s.in_flight = Some(Arc::default());
                flights.push((r.key.clone(), s.generation));
            }
            to_store.push((i, want));
        }
        let settle_all = |allowed: bool| {
            for k in &kept {
                self.keys
                    .settle(&k.key, k.generation, k.reservation, allowed);
            }
        };
        let unmark = || {
            for (key, generation) in &flights {
                self.keys.with(key, |s| {
                    if s.generation == *generation {
                        if let Some(n) = s.in_flight.take() {
                            n.notify_waiters();
                        }
                    }
                });
            }
        };
        if let Some(notified) = wait {
            settle_all(false);
            unmark();
            return Plan::Wait(notified);
        }
        if denied {
            settle_all(false);
            unmark();
            return Plan::Answered(decisions);
        }
        if to_store.is_empty() {
            settle_all(true);
            self.counters
                .lease_answers
                .fetch_add(kept.len() as u64, Ordering::Relaxed);
            for k in kept {
                decisions[k.index] = Some(k.decision);
            }
            return Plan::Answered(decisions);
        }
        Plan::Call(Outgoing {
            keys: self.keys.clone(),
            sent_us: now_us,
            to_store,
            kept,
            flights,
            settled: false,
        })
    }

    /// Makes the store call and applies its reply.
    async fn call(
        &self,
        limits: &[AcquireRequest],
        enforced: &[bool],
        mut out: Outgoing,
    ) -> Result<MultiDecision, StoreError> {
        let requests: Vec<LeaseRequest> = out
            .to_store
            .iter()
            .map(|&(i, want)| LeaseRequest {
                key: limits[i].key.clone(),
                limit: LeaseLimit {
                    limit: limits[i].limit(),
                    want,
                },
            })
            .collect();
        self.counters.script_calls.fetch_add(1, Ordering::Relaxed);
        let now = self.pinned.then(|| self.clock.now_us());
        let reply = self.scripts.lease(&requests, now).await;
        let after = self.clock.now_us();
        let allowed = reply.as_ref().is_ok_and(|b| b.allowed);
        if let Ok(batch) = &reply {
            for (&(i, want), leased) in out.to_store.iter().zip(&batch.buckets) {
                let quota = limits[i].quota;
                self.keys.with(&limits[i].key, |s| {
                    if s.quota == quota {
                        if want > 0 {
                            s.lease.apply(out.sent_us, after, leased, want);
                        }
                        s.last_debt = (out.sent_us, leased.backlog_after_us());
                    }
                });
            }
        }
        for k in &out.kept {
            self.keys
                .settle(&k.key, k.generation, k.reservation, allowed);
        }
        out.settled = true;
        let kept: Vec<(usize, Decision)> = out.kept.iter().map(|k| (k.index, k.decision)).collect();
        let to_store = std::mem::take(&mut out.to_store);
        // Clears the leasing marks: the waiters find the new lease.
        drop(out);
        let batch = reply?;
        let mut decisions: Vec<Option<Decision>> = vec![None; limits.len()];
        let answer = batch.request();
        for (&(i, _), d) in to_store.iter().zip(answer.limits()) {
            decisions[i] = *d;
        }
        if batch.allowed {
            self.counters
                .lease_answers
                .fetch_add(kept.len() as u64, Ordering::Relaxed);
            for (i, d) in kept {
                decisions[i] = Some(d);
            }
        }
        Ok(MultiDecision::new(decisions, enforced))
    }
}

impl<C: Clock + Clone> BucketStore for RedisLeasedStore<C> {
    fn kind(&self) -> StoreKind {
        StoreKind::RedisLeased
    }

    /// Shared, and the store's debt never moves back (a lease is an
    /// ordinary spend; a refund is local, of tokens the store still
    /// counts), so the deny cache's premise holds.
    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED
    }

    /// The stored bucket, as `peek.lua` reads it: tokens leased out count
    /// as spent (they are, in the store), so a peek never shows more than
    /// the replicas together may still admit.
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        let now = self.pinned.then(|| self.clock.now_us());
        crate::redis_admin::peek(self.scripts.on(), key, quota, now).await
    }

    /// Deletes the bucket and its share ledger and raises the reset
    /// generation. Tokens other replicas hold in leases stay theirs to
    /// spend (at most one lease period's refill per replica and key).
    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        let ledger = key.share_ledger();
        crate::redis_admin::reset_with(self.scripts.on(), &[key.as_str(), ledger.as_str()]).await
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        crate::redis_admin::resets(self.scripts.on()).await
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        check_distinct_keys(limits)?;
        let enforced: Vec<bool> = limits.iter().map(|l| l.enforced).collect();
        if limits.is_empty() {
            return Ok(MultiDecision::new(Vec::new(), &[]));
        }
        let mut waits = 0;
        loop {
            let now = self.clock.now_us();
            match self.plan(limits, now, waits == 0, waits < MAX_WAITS) {
                Plan::Answered(decisions) => return Ok(MultiDecision::new(decisions, &enforced)),
                Plan::Wait(notified) => {
                    waits += 1;
                    // The call waited for is bounded by the same timeout.
                    let _ = tokio::time::timeout(self.scripts.timeout(), notified).await;
                }
                Plan::Call(out) => return self.call(limits, &enforced, out).await,
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.scripts.ping().await
    }
}
