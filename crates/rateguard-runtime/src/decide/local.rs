//! `on_error = "local"`: while the shared store fails (an error, a
//! timeout, an open breaker), this replica decides every limit in its own
//! memory, on its share of it: capacity `⌊C / replicas_hint⌋` (at least 1)
//! and refill `r / replicas_hint`. The first decision through the shared
//! store again ends it; the local buckets are not merged back.
//!
//! # The bound
//! One local store lives as long as the process (idle buckets evicted), so
//! a bucket starts an outage full, or as the previous outage left it if
//! that ended less than a refill time ago. Over an outage of length `d`,
//! `N` replicas admit at most `N × (⌊C / h⌋ + d·r / h)` requests per bucket
//! (`h = replicas_hint`): with `h = N`, at most `C + d·r`, what the shared
//! limit itself allows from full; with `h = 1`, up to `N` times that. A
//! replica does not know how many others there are: `replicas_hint` says.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rateguard_core::{MultiDecision, Quota};
use rateguard_store::{AcquireRequest, MemoryStore, StoreError};

/// How often the local store drops buckets that are full again.
const EVICTION_PERIOD: Duration = Duration::from_secs(30);

/// One replica's local limits, used while the shared store fails.
#[derive(Debug)]
pub(super) struct LocalFallback {
    hint: u32,
    store: MemoryStore,
    /// Whether the last decision was local (for the log lines only).
    active: AtomicBool,
}

impl LocalFallback {
    /// Local limits at `1/hint` of each limit. Spawns the eviction task:
    /// call it inside a Tokio runtime.
    pub(super) fn new(hint: u32) -> Self {
        let store = MemoryStore::new();
        store.spawn_eviction(EVICTION_PERIOD);
        Self {
            hint: hint.max(1),
            store,
            active: AtomicBool::new(false),
        }
    }

    /// From now on, shares of `1/hint`.
    pub(super) fn set_hint(&mut self, hint: u32) {
        self.hint = hint.max(1);
    }

    /// Decides `requests` (the shared store's) on this replica's share.
    pub(super) fn decide(&self, requests: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        if !self.active.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                replicas_hint = self.hint,
                "Store failing: enforcing each limit locally at 1/replicas_hint."
            );
        }
        let local: Vec<AcquireRequest> = requests
            .iter()
            .map(|r| AcquireRequest {
                quota: share(&r.quota, self.hint),
                ..r.clone()
            })
            .collect();
        self.store.acquire_all_now(&local)
    }

    /// The shared store decided again: the next failure starts local again.
    pub(super) fn store_answered(&self) {
        if self.active.load(Ordering::Relaxed) && self.active.swap(false, Ordering::Relaxed) {
            tracing::info!("Store answers again: back to the shared limits.");
        }
    }
}

/// One replica's share of `quota` among `hint`: capacity `⌊C / hint⌋`, at
/// least 1, and one token every `hint` intervals.
/// What a replica enforces alone while the store fails (`on_error = "local"`).
pub fn share(quota: &Quota, hint: u32) -> Quota {
    let capacity = NonZeroU32::new(quota.capacity() / hint.max(1)).unwrap_or(NonZeroU32::MIN);
    let interval = quota.interval_us().saturating_mul(u64::from(hint.max(1)));
    // Fills no slower than the original, except a capacity below `hint`;
    // beyond the longest fill time that one keeps its original shape.
    NonZeroU64::new(interval)
        .and_then(|interval| Quota::from_interval(capacity, interval))
        .unwrap_or(*quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_divides_capacity_and_refill() {
        let q = Quota::new(6, 3.0).unwrap();
        let s = share(&q, 3);
        assert_eq!(s.capacity(), 2);
        assert!((s.refill_per_sec() - 1.0).abs() < 1e-5, "{s:?}");
        assert_eq!(share(&q, 1), q);
        // 5 / 3 rounds down; a capacity below the hint keeps one token.
        assert_eq!(share(&Quota::new(5, 1.0).unwrap(), 3).capacity(), 1);
        assert_eq!(share(&Quota::new(2, 1.0).unwrap(), 3).capacity(), 1);
    }
}
