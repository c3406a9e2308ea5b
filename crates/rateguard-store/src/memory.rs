//! [`MemoryStore`]: buckets in this process's memory.
//!
//! The embedded default: no network hop, but every gateway replica has its
//! own buckets, so N replicas behind a load balancer admit up to N × the
//! limit. The lab's accuracy plot shows exactly that; use a Redis store when
//! replicas must share one limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rateguard_core::{
    bucket, multi, peek, BucketKey, Clock, Decision, MultiDecision, Peek, Quota, SystemClock,
};

use crate::shards::Shards;
use crate::{check_distinct_keys, AcquireRequest, BucketStore, StoreError};

/// A sharded map from key to theoretical arrival time (see `rateguard_core::bucket`).
///
/// The keys are spread over independent `Mutex<HashMap>` shards, so hot
/// keys on different shards never contend, and a lock is held only for the
/// few integer operations of one decision (never across an `.await`). A
/// multi-limit request locks the shards of all its keys in ascending shard
/// order (so two requests sharing shards cannot deadlock), decides with
/// `rateguard_core::multi`, and writes all its buckets or none.
/// A key whose bucket has refilled completely is equivalent to an absent key,
/// so eviction can drop it without changing any future decision.
#[derive(Debug, Clone)]
pub struct MemoryStore<C: Clock = SystemClock> {
    inner: Arc<Inner<C>>,
}

#[derive(Debug)]
struct Inner<C> {
    tats: Shards<u64>,
    clock: C,
    /// Resets so far ([`BucketStore::resets`]).
    resets: AtomicU64,
}

impl MemoryStore<SystemClock> {
    /// An empty store on the process's monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::new())
    }
}

impl Default for MemoryStore<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// An empty store reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        Self {
            inner: Arc::new(Inner {
                tats: Shards::new(),
                clock,
                resets: AtomicU64::new(0),
            }),
        }
    }

    /// Decides synchronously; [`BucketStore::acquire`] is this, wrapped.
    pub fn acquire_now(&self, key: &BucketKey, quota: &Quota, cost: u32) -> Decision {
        let now = self.inner.clock.now_us();
        let mut shard = self.inner.tats.lock(self.inner.tats.shard_of(key));
        // Clone the key only for a bucket not seen yet.
        if let Some(tat) = shard.get_mut(key) {
            let out = bucket::acquire(*tat, now, quota, cost);
            *tat = out.tat;
            return out.decision;
        }
        let out = bucket::acquire(0, now, quota, cost);
        if out.decision.allowed {
            shard.insert(key.clone(), out.tat);
        }
        out.decision
    }

    /// Decides one multi-limit request synchronously, all or nothing;
    /// [`BucketStore::acquire_all`] is this, wrapped.
    pub fn acquire_all_now(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        check_distinct_keys(limits)?;
        if let [one] = limits {
            // One limit spends when it fits, enforced or not: the
            // single-key path, one lock and no allocation but the result.
            let decision = self.acquire_now(&one.key, &one.quota, one.cost);
            return Ok(MultiDecision::new(vec![Some(decision)], &[one.enforced]));
        }
        let now = self.inner.clock.now_us();
        let tats = &self.inner.tats;
        let shard_ids: Vec<usize> = limits.iter().map(|r| tats.shard_of(&r.key)).collect();
        let mut order = shard_ids.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<_> = order.iter().map(|&i| tats.lock(i)).collect();
        let slot = |shard: usize| order.binary_search(&shard).expect("locked");
        let buckets: Vec<_> = limits
            .iter()
            .zip(&shard_ids)
            .map(|(r, &s)| {
                let tat = guards[slot(s)].get(&r.key).copied().unwrap_or(0);
                (tat, r.limit())
            })
            .collect();
        let batch = multi::acquire_all(now, &buckets, 1);
        for ((r, &s), spent) in limits.iter().zip(&shard_ids).zip(&batch.buckets) {
            if spent.allowed > 0 {
                let shard = &mut guards[slot(s)];
                match shard.get_mut(&r.key) {
                    Some(tat) => *tat = spent.tat,
                    None => {
                        shard.insert(r.key.clone(), spent.tat);
                    }
                }
            }
        }
        drop(guards);
        Ok(batch.decision(0))
    }

    /// The bucket `key` under `quota` now, read without spending.
    pub fn peek_now(&self, key: &BucketKey, quota: &Quota) -> Peek {
        let now = self.inner.clock.now_us();
        let shard = self.inner.tats.lock(self.inner.tats.shard_of(key));
        peek::peek(shard.get(key).copied().unwrap_or(0), now, quota)
    }

    /// Makes `key`'s bucket full again (forgets it), then counts the reset.
    pub fn reset_now(&self, key: &BucketKey) {
        self.inner
            .tats
            .lock(self.inner.tats.shard_of(key))
            .remove(key);
        self.inner.resets.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops every bucket that is full again; returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let now = self.inner.clock.now_us();
        self.inner.tats.retain(|&tat| tat > now)
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.inner.tats.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs [`evict_idle`](Self::evict_idle) every `period` on the current
    /// Tokio runtime. The task holds only a weak reference and ends within
    /// one period after the last clone of the store is dropped.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn spawn_eviction(&self, period: Duration) {
        let weak: Weak<Inner<C>> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                MemoryStore { inner }.evict_idle();
            }
        });
    }
}

impl<C: Clock> BucketStore for MemoryStore<C> {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::Memory
    }

    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::LOCAL
    }

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        Ok(self.acquire_now(key, quota, cost))
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        self.acquire_all_now(limits)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// This process's bucket (another replica's is its own).
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        Ok(self.peek_now(key, quota))
    }

    /// This process's bucket only.
    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        self.reset_now(key);
        Ok(())
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        Ok(self.inner.resets.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests;
