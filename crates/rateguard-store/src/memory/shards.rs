//! The memory store's map: keys spread over independent `Mutex<HashMap>`
//! shards. Unlike `DashMap`, a caller may hold several shard locks at once,
//! taken in ascending shard index, which a multi-limit decision needs.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rateguard_core::BucketKey;

/// Enough shards that two cores rarely meet on one lock.
const SHARDS: usize = 64;

/// Key → theoretical arrival time, sharded.
#[derive(Debug)]
pub(super) struct Shards {
    shards: Box<[Mutex<HashMap<BucketKey, u64>>]>,
}

pub(super) type Shard<'a> = MutexGuard<'a, HashMap<BucketKey, u64>>;

impl Shards {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The shard that holds `key`.
    pub(super) fn shard_of(&self, key: &BucketKey) -> usize {
        // Bits of the key's SHA-256 part: no second hash of the key (the
        // map inside still hashes with its own random seed).
        (key.shard_hint() % SHARDS as u64) as usize
    }

    /// Locks shard `index`. Hold several only when taken in ascending index.
    pub(super) fn lock(&self, index: usize) -> Shard<'_> {
        // Plain integer writes cannot be left half-done by a panic, so a
        // poisoned shard is still consistent.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the entries whose value passes `keep`, one shard at a time;
    /// returns how many were dropped.
    pub(super) fn retain(&self, keep: impl Fn(u64) -> bool) -> usize {
        let mut dropped = 0;
        for index in 0..SHARDS {
            let mut shard = self.lock(index);
            let before = shard.len();
            shard.retain(|_, tat| keep(*tat));
            dropped += before - shard.len();
            shard.shrink_to_fit();
        }
        dropped
    }

    /// Entries held (a snapshot: shards are counted one at a time).
    pub(super) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).len()).sum()
    }
}
