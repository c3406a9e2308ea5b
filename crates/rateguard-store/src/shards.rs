//! A map from [`BucketKey`] spread over independent `Mutex<HashMap>`
//! shards (the memory store's buckets, the deny cache's entries). Unlike
//! `DashMap`, a caller may hold several shard locks at once, taken in
//! ascending shard index, which a multi-limit decision needs.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rateguard_core::BucketKey;

/// Enough shards that two cores rarely meet on one lock (a power of two:
/// the top bits of `BucketKey::shard_hint` pick one).
pub(crate) const SHARDS: usize = 64;

/// Key → `V`, sharded.
#[derive(Debug)]
pub(crate) struct Shards<V> {
    shards: Box<[Mutex<HashMap<BucketKey, V>>]>,
}

/// One locked shard.
pub(crate) type Shard<'a, V> = MutexGuard<'a, HashMap<BucketKey, V>>;

impl<V> Shards<V> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard that holds `key`.
    pub(crate) fn shard_of(&self, key: &BucketKey) -> usize {
        // Bits of the key's SHA-256 part: no second hash of the key (the
        // map inside still hashes with its own random seed).
        (key.shard_hint() >> (64 - SHARDS.trailing_zeros())) as usize
    }

    /// Locks shard `index`. Hold several only when taken in ascending index.
    pub(crate) fn lock(&self, index: usize) -> Shard<'_, V> {
        // Plain integer writes cannot be left half-done by a panic, so a
        // poisoned shard is still consistent.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the entries whose value passes `keep`, one shard at a time;
    /// returns how many were dropped.
    pub(crate) fn retain(&self, keep: impl Fn(&V) -> bool) -> usize {
        let mut dropped = 0;
        for index in 0..SHARDS {
            let mut shard = self.lock(index);
            let before = shard.len();
            shard.retain(|_, value| keep(value));
            dropped += before - shard.len();
            shard.shrink_to_fit();
        }
        dropped
    }

    /// Entries held (a snapshot: shards are counted one at a time).
    pub(crate) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).len()).sum()
    }
}
