//! [`MemoryStore`]: buckets in this process's memory.
//!
//! The embedded default: no network hop, but every gateway replica has its
//! own buckets, so N replicas behind a load balancer admit up to N × the
//! limit. The lab's accuracy plot shows exactly that; use a Redis store when
//! replicas must share one limit.

use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use rateguard_core::{bucket, BucketKey, Clock, Decision, Quota, SystemClock};

use crate::{BucketStore, StoreError};

/// A sharded map from key to theoretical arrival time (see `rateguard_core::bucket`).
///
/// `DashMap` shards the keys over independent locks, so hot keys on
/// different shards never contend, and a lock is held only for the few
/// integer operations of one decision (never across an `.await`).
/// A key whose bucket has refilled completely is equivalent to an absent key,
/// so eviction can drop it without changing any future decision.
#[derive(Debug, Clone)]
pub struct MemoryStore<C: Clock = SystemClock> {
    inner: Arc<Inner<C>>,
}

#[derive(Debug)]
struct Inner<C> {
    tats: DashMap<BucketKey, u64>,
    clock: C,
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
                tats: DashMap::new(),
                clock,
            }),
        }
    }

    /// Decides synchronously; [`BucketStore::acquire`] is this, wrapped.
    pub fn acquire_now(&self, key: &BucketKey, quota: &Quota, cost: u32) -> Decision {
        let now = self.inner.clock.now_us();
        // Fast path without cloning the key; the entry API below re-checks
        // under the shard lock, so a racing insert is never lost.
        if let Some(mut tat) = self.inner.tats.get_mut(key) {
            let out = bucket::acquire(*tat, now, quota, cost);
            *tat = out.tat;
            return out.decision;
        }
        let mut tat = self.inner.tats.entry(key.clone()).or_insert(0);
        let out = bucket::acquire(*tat, now, quota, cost);
        *tat = out.tat;
        out.decision
    }

    /// Drops every bucket that is full again; returns how many were dropped.
    pub fn evict_idle(&self) -> usize {
        let now = self.inner.clock.now_us();
        let before = self.inner.tats.len();
        self.inner.tats.retain(|_, tat| *tat > now);
        self.inner.tats.shrink_to_fit();
        before.saturating_sub(self.inner.tats.len())
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.inner.tats.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.inner.tats.is_empty()
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

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        Ok(self.acquire_now(key, quota, cost))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
