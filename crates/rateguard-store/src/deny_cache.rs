//! [`DenyCache`]: an exact, local cache of the store's denials, so a flood
//! of over-limit requests stays off Redis.
//!
//! # Why it is exact
//! When the store denies a bucket, its reply says how full the bucket was:
//! the backlog `b` (`Decision::reset_after` of the denial), at the store's
//! clock `s` when it decided. Under GCRA the stored arrival time only moves
//! forward, so at any later store time `s'` the backlog is at least
//! `b − (s' − s)`. The call was *sent* at local time `t0`, before the store
//! decided, so at any later local time `l` the store's clock has moved at
//! most `l − t0` past `s`. Hence a request of cost `c` on that bucket
//! (same key **and** same quota) at local time `l` is certainly denied
//! while `b − (l − t0) + c·T > C·T`, and the cache answers it without asking
//! the store. For the cost that was denied with `retry_after = r` that is
//! exactly until `t0 + r`; a larger cost waits longer, a smaller one that
//! still cannot fit is denied too, one that may fit goes to the store.
//! The answer is the store's own decision aged by `l − t0`: what the store
//! would say at `l` if nothing else had spent on the bucket.
//!
//! A multi-limit request is answered from the cache only when a cached
//! **enforced** limit certainly denies it; its other limits are then
//! reported as not evaluated (`None`), and [`MultiDecision::from_cache`]
//! says the store was not asked. Shadow limits never use the cache.
//!
//! # Bounds and caveats
//! At most `capacity` entries per process (default [`DEFAULT_CAPACITY`]);
//! an entry lives until the bucket would be full again (`t0 + b`), is
//! dropped when found stale, and when the cache is full stale entries go
//! first, then arbitrary ones (a dropped entry only costs a store call).
//! Time comes from an injectable [`Clock`] (`ManualClock` in tests).
//!
//! # Resets
//! An operator's reset ([`BucketStore::reset`]) moves a bucket's stored
//! time backwards: the premise above fails for that bucket, and a cached
//! denial would go on denying a bucket that is full again. So every entry
//! carries the cache's *epoch* at the time its store call was sent, and
//! only entries of the current epoch answer; [`DenyCache::invalidate`]
//! moves the epoch on (all entries are dropped at once, lazily).
//! [`DenyCache::observe_resets`] does that whenever the store's reset
//! generation ([`BucketStore::resets`]) differs from the one seen last;
//! the runtime polls it. Why that is exact: a reset deletes the bucket
//! *before* it raises the generation. A denial the store decided before
//! the reset came from a call sent before it, hence before the poll that
//! first reads the new generation; its entry carries an older epoch than
//! the one that poll sets, whether it was recorded before the poll or
//! after it. So from that poll on no denial from before the reset
//! answers; only denials decided after the reset (true ones) remain. The
//! window is one poll period plus a round trip; a replica whose poll fails
//! keeps its entries, which are only ever stricter than the store, never
//! more lenient. A reset through this cache invalidates at once.
//!
//! The premise (a bucket's stored time only moves forward) fails for a
//! store that [refunds](crate::Capabilities::refunds): `fred-cluster`
//! gives tokens back to the earlier slots of a request whose later slot
//! denies, and a denial cached just before such a refund would be stricter
//! than the store for the rest of its time (never more lenient: a refund
//! only returns tokens that a concurrent request had taken). So on such a
//! store the cache neither answers nor records a request whose buckets
//! the caller does not declare [`Grouping::Alone`]
//! ([`acquire_all_grouped`](DenyCache::acquire_all_grouped); the
//! [`BucketStore`] methods assume [`Grouping::Grouped`]). Wrapping a store
//! that is not [shared](crate::Capabilities::shared) (`MemoryStore`) gains
//! nothing: it is local already.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Clock, Decision, MultiDecision, Peek, Quota, SystemClock};

use crate::shards::{Shards, SHARDS};
use crate::{AcquireRequest, BucketStore, Capabilities, Grouping, StoreError};

/// Entries a [`DenyCache`] holds at most unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A [`BucketStore`] that answers certain denials locally (see the module
/// docs) and forwards everything else to `S`.
///
/// Cheap to clone when `S` is; clones share the cache.
#[derive(Debug, Clone)]
pub struct DenyCache<S, C: Clock = SystemClock> {
    store: S,
    cache: Arc<Cache<C>>,
}

#[derive(Debug)]
struct Cache<C> {
    entries: Shards<Entry>,
    per_shard: usize,
    clock: C,
    hits: AtomicU64,
    /// Entries of another epoch never answer (see "Resets").
    epoch: AtomicU64,
    /// The store's reset generation seen last (`u64::MAX`: none yet).
    seen_resets: AtomicU64,
}

/// What one denial told about a bucket.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The cache's epoch when the store call was sent.
    epoch: u64,
    quota: Quota,
    /// Local time the store call was sent (µs of the cache's clock).
    sent_us: u64,
    /// The bucket's backlog when the store decided (µs).
    backlog_us: u64,
}

impl Entry {
    /// The store's answer to `cost` at local time `now_us`, if certainly a
    /// denial; `None` if the request might fit.
    fn denial(&self, cost: u32, now_us: u64) -> Option<Decision> {
        let q = &self.quota;
        let fill = q.fill_time_us();
        let backlog = self
            .backlog_us
            .saturating_sub(now_us.saturating_sub(self.sent_us));
        let retry_after = if cost > q.capacity() {
            Decision::NEVER
        } else {
            let need = u64::from(cost) * q.interval_us();
            Duration::from_micros((backlog + need).checked_sub(fill).filter(|&w| w > 0)?)
        };
        Some(Decision {
            allowed: false,
            limit: q.capacity(),
            remaining: ((fill - backlog) / q.interval_us()) as u32,
            retry_after,
            reset_after: Duration::from_micros(backlog),
        })
    }

    /// Whether no request of cost ≤ capacity can be denied by it anymore.
    fn is_stale(&self, now_us: u64) -> bool {
        now_us.saturating_sub(self.sent_us) >= self.backlog_us
    }
}

impl<S: BucketStore> DenyCache<S, SystemClock> {
    /// Caches `store`'s denials, at most `capacity` of them, on the
    /// process's monotonic clock.
    pub fn new(store: S, capacity: usize) -> Self {
        Self::with_clock(store, capacity, SystemClock::new())
    }
}

impl<S: BucketStore, C: Clock> DenyCache<S, C> {
    /// Caches `store`'s denials, at most `capacity`, reading time from `clock`.
    pub fn with_clock(store: S, capacity: usize, clock: C) -> Self {
        Self {
            store,
            cache: Arc::new(Cache {
                entries: Shards::new(),
                per_shard: capacity.div_ceil(SHARDS).max(1),
                clock,
                hits: AtomicU64::new(0),
                epoch: AtomicU64::new(0),
                seen_resets: AtomicU64::new(u64::MAX),
            }),
        }
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Decides `limits` like [`BucketStore::acquire_all`], answering from
    /// the cache what it certainly denies, given what the caller knows of
    /// their buckets: on a store that refunds, only buckets decided
    /// [`Grouping::Alone`] use the cache; the others go to the store as is.
    pub async fn acquire_all_grouped(
        &self,
        limits: &[AcquireRequest],
        grouping: Grouping,
    ) -> Result<MultiDecision, StoreError> {
        if !self.is_exact_for(grouping) {
            return self.store.acquire_all(limits).await;
        }
        if let Some(cached) = self.check(limits) {
            return Ok(cached);
        }
        let sent = self.sent();
        let decision = self.store.acquire_all(limits).await?;
        self.record_all(limits, &decision, sent);
        Ok(decision)
    }

    /// Whether a cached denial of buckets decided as `grouping` stays exact
    /// on this store: nothing refunds them.
    fn is_exact_for(&self, grouping: Grouping) -> bool {
        grouping == Grouping::Alone || !self.store.capabilities().refunds
    }

    /// The local time and the epoch at which a store call is sent.
    fn sent(&self) -> Sent {
        Sent {
            epoch: self.cache.epoch.load(Ordering::SeqCst),
            at_us: self.cache.clock.now_us(),
        }
    }

    /// Drops every cached denial (they stop answering at once): a bucket
    /// may have been reset.
    pub fn invalidate(&self) {
        self.cache.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Tells the cache the store's reset generation
    /// ([`BucketStore::resets`]); when it differs from the one seen last
    /// (or is the first one seen), every cached denial is dropped. Returns
    /// whether they were.
    pub fn observe_resets(&self, generation: u64) -> bool {
        let changed = self.cache.seen_resets.swap(generation, Ordering::SeqCst) != generation;
        if changed {
            self.invalidate();
        }
        changed
    }

    /// Requests answered from the cache so far (all limits of a request
    /// count once).
    pub fn hits(&self) -> u64 {
        self.cache.hits.load(Ordering::Relaxed)
    }

    /// Entries held (stale ones included until they are found or pushed out).
    pub fn len(&self) -> usize {
        self.cache.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached denial of `cost` on (`key`, `quota`), if certain now.
    fn lookup(&self, key: &BucketKey, quota: &Quota, cost: u32, now: u64) -> Option<Decision> {
        let entries = &self.cache.entries;
        let mut shard = entries.lock(entries.shard_of(key));
        let entry = *shard.get(key)?;
        if entry.is_stale(now) || entry.epoch != self.cache.epoch.load(Ordering::SeqCst) {
            shard.remove(key);
            return None;
        }
        (entry.quota == *quota).then(|| entry.denial(cost, now))?
    }

    /// The request's answer from the cache, if a cached enforced limit
    /// certainly denies it.
    /// The miss path (the common one) allocates nothing: the answers are
    /// collected only from the first limit the cache denies.
    fn check(&self, limits: &[AcquireRequest]) -> Option<MultiDecision> {
        let now = self.cache.clock.now_us();
        let lookup = |r: &AcquireRequest| {
            r.enforced
                .then(|| self.lookup(&r.key, &r.quota, r.cost, now))
                .flatten()
        };
        let (first, denial) = limits
            .iter()
            .enumerate()
            .find_map(|(i, r)| lookup(r).map(|d| (i, d)))?;
        let mut decisions: Vec<Option<Decision>> = vec![None; limits.len()];
        decisions[first] = Some(denial);
        for (i, r) in limits.iter().enumerate().skip(first + 1) {
            decisions[i] = lookup(r);
        }
        self.cache.hits.fetch_add(1, Ordering::Relaxed);
        let enforced: Vec<bool> = limits.iter().map(|r| r.enforced).collect();
        Some(MultiDecision::new(decisions, &enforced).with_from_cache())
    }

    /// Remembers a denial of (`key`, `quota`) by a store call `sent`.
    fn record(&self, key: &BucketKey, quota: &Quota, denial: &Decision, sent: Sent) {
        let entry = Entry {
            epoch: sent.epoch,
            quota: *quota,
            sent_us: sent.at_us,
            backlog_us: u64::try_from(denial.reset_after.as_micros()).unwrap_or(u64::MAX),
        };
        if entry.backlog_us == 0 {
            return; // nothing certain (only a cost above capacity was denied)
        }
        let entries = &self.cache.entries;
        let mut shard = entries.lock(entries.shard_of(key));
        if shard.len() >= self.cache.per_shard && !shard.contains_key(key) {
            let now = self.cache.clock.now_us();
            shard.retain(|_, e| !e.is_stale(now));
            if shard.len() >= self.cache.per_shard {
                if let Some(victim) = shard.keys().next().cloned() {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(key.clone(), entry);
    }

    /// Records every enforced limit the store denied.
    fn record_all(&self, limits: &[AcquireRequest], decision: &MultiDecision, sent: Sent) {
        if decision.allowed() {
            return;
        }
        for (r, d) in limits.iter().zip(decision.limits()) {
            if let Some(d) = d.filter(|d| r.enforced && !d.allowed) {
                self.record(&r.key, &r.quota, &d, sent);
            }
        }
    }
}

impl<S: BucketStore, C: Clock> BucketStore for DenyCache<S, C> {
    fn kind(&self) -> crate::StoreKind {
        self.store.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    /// [`acquire_all_grouped`](DenyCache::acquire_all_grouped) with
    /// [`Grouping::Grouped`].
    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        self.acquire_all_grouped(limits, Grouping::Grouped).await
    }

    /// One enforced limit; a cached answer is not marked (use
    /// [`acquire_all`](BucketStore::acquire_all) or [`DenyCache::hits`] to
    /// tell).
    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        if !self.is_exact_for(Grouping::Grouped) {
            return self.store.acquire(key, quota, cost).await;
        }
        let sent = self.sent();
        if let Some(cached) = self.lookup(key, quota, cost, sent.at_us) {
            self.cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached);
        }
        let decision = self.store.acquire(key, quota, cost).await?;
        if !decision.allowed {
            self.record(key, quota, &decision, sent);
        }
        Ok(decision)
    }

    async fn acquire_many(&self, requests: &[AcquireRequest]) -> Vec<Result<Decision, StoreError>> {
        if !self.is_exact_for(Grouping::Grouped) {
            return self.store.acquire_many(requests).await;
        }
        let sent = self.sent();
        let mut out: Vec<Option<Result<Decision, StoreError>>> = requests
            .iter()
            .map(|r| self.lookup(&r.key, &r.quota, r.cost, sent.at_us).map(Ok))
            .collect();
        let hits = out.iter().filter(|o| o.is_some()).count();
        self.cache.hits.fetch_add(hits as u64, Ordering::Relaxed);
        let (index, rest): (Vec<usize>, Vec<AcquireRequest>) = requests
            .iter()
            .enumerate()
            .filter(|(i, _)| out[*i].is_none())
            .map(|(i, r)| (i, r.clone()))
            .unzip();
        let decided = self.store.acquire_many(&rest).await;
        for ((i, r), result) in index.into_iter().zip(&rest).zip(decided) {
            if let Ok(d) = &result {
                if !d.allowed {
                    self.record(&r.key, &r.quota, d, sent);
                }
            }
            out[i] = Some(result);
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::Backend("no reply".into()))))
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The store's answer: a peek spends nothing, so nothing to cache.
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        self.store.peek(key, quota).await
    }

    /// Resets the bucket in the store, then drops this cache's denials;
    /// other replicas' caches follow their next poll of
    /// [`resets`](BucketStore::resets).
    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        self.store.reset(key).await?;
        self.invalidate();
        Ok(())
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        self.store.resets().await
    }
}

/// When and in which epoch a store call was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    epoch: u64,
    at_us: u64,
}

#[cfg(test)]
mod tests;
