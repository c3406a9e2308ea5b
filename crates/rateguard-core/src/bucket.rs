//! The token-bucket state transition, written as GCRA.
//!
//! # Why GCRA
//! The classic token bucket stores two values per key (tokens, last refill)
//! and must rewrite both on every call. GCRA (the Generic Cell Rate
//! Algorithm) stores one: the *theoretical arrival time* `tat`, the moment at
//! which the bucket will be full again. With `T` the refill interval and `C`
//! the capacity, the bucket holds `(C·T − max(tat − now, 0)) / T` tokens, so
//! both give the same token-bucket semantics, but GCRA needs one `GET` and one
//! `SET … PX` per decision, and an absent key (or any `tat ≤ now`) simply means
//! "full". A denial writes nothing, so denials can never speed up refill (the
//! bug of Lua buckets that save the refilled count without moving their
//! timestamp).
//!
//! # Units
//! Everything is integer microseconds. `crates/rateguard-store/src/token_bucket.lua`
//! mirrors [`acquire_batch`] step for step; keep them in sync.

use std::time::Duration;

use crate::{Decision, Quota};

/// The result of spending `cost` tokens `count` times at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// The theoretical arrival time to store afterwards (unchanged if nothing
    /// was allowed). A value `<= now` means "full"; stores may drop the key.
    pub tat: u64,
    /// How many of the `count` requests were allowed: always the first ones.
    pub allowed: u32,
    /// `max(tat − now, 0)` before the batch: the part of the bucket in use.
    pub backlog_us: u64,
    quota: Quota,
    cost: u32,
    count: u32,
}

/// One request: the new `tat` and its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The theoretical arrival time to store afterwards.
    pub tat: u64,
    /// The decision for the request.
    pub decision: Decision,
}

/// Spends `cost` tokens at `now` from a bucket whose stored theoretical
/// arrival time is `tat` (use 0 for a key that does not exist).
pub fn acquire(tat: u64, now: u64, quota: &Quota, cost: u32) -> Outcome {
    let batch = acquire_batch(tat, now, quota, cost, 1);
    Outcome {
        tat: batch.tat,
        decision: batch.decision(0),
    }
}

/// Decides `count` requests of `cost` tokens each that arrive together at
/// `now`, in order: the first ones are allowed while tokens last.
///
/// This is what the pipelined store does when several requests for one key
/// meet in one batch; it equals calling [`acquire`] `count` times in a row.
/// A `cost` of 0 inspects the bucket without spending anything.
pub fn acquire_batch(tat: u64, now: u64, quota: &Quota, cost: u32, count: u32) -> Batch {
    let backlog = tat.saturating_sub(now).min(quota.fill_time_us());
    let allowed = if cost == 0 {
        count
    } else {
        let free = quota.fill_time_us() - backlog;
        let per_request = u64::from(cost).saturating_mul(quota.interval_us());
        u32::try_from(free / per_request).map_or(count, |fit| fit.min(count))
    };
    let spent = u64::from(allowed) * u64::from(cost) * quota.interval_us();
    let tat = if allowed == 0 {
        tat
    } else {
        now + backlog + spent
    };
    Batch {
        tat,
        allowed,
        backlog_us: backlog,
        quota: *quota,
        cost,
        count,
    }
}

impl Batch {
    /// The decision for the `index`-th request of the batch (0-based).
    ///
    /// # Panics
    /// If `index >= count`.
    pub fn decision(&self, index: u32) -> Decision {
        assert!(
            index < self.count,
            "request {index} of a batch of {}",
            self.count
        );
        if index < self.allowed {
            self.view(index + 1, true)
        } else {
            self.view(self.allowed, false)
        }
    }

    /// What this bucket alone would answer one more request of the same
    /// cost after the batch, spending nothing: `allowed` when it would fit.
    ///
    /// A multi-limit decision reports this for a limit whose request was
    /// denied by another limit (see [`crate::multi`]).
    pub fn after(&self) -> Decision {
        let fill = self.quota.fill_time_us();
        let per_request = u64::from(self.cost).saturating_mul(self.quota.interval_us());
        let backlog = self.backlog_us + u64::from(self.allowed) * per_request;
        let fits = backlog.saturating_add(per_request) <= fill;
        self.view(self.allowed, fits)
    }

    /// The bucket after `spent` requests of the batch, as seen by a request
    /// that is `allowed` (and spent) or not.
    fn view(&self, spent: u32, allowed: bool) -> Decision {
        let fill = self.quota.fill_time_us();
        // Saturates only when cost > capacity, where nothing is spent.
        let per_request = u64::from(self.cost).saturating_mul(self.quota.interval_us());
        let backlog = self.backlog_us + u64::from(spent) * per_request;
        let retry_after = if allowed {
            Duration::ZERO
        } else if u64::from(self.cost) > u64::from(self.quota.capacity()) {
            Decision::NEVER
        } else {
            Duration::from_micros(backlog + per_request - fill)
        };
        Decision {
            allowed,
            limit: self.quota.capacity(),
            remaining: ((fill - backlog) / self.quota.interval_us()) as u32,
            retry_after,
            reset_after: Duration::from_micros(backlog),
        }
    }

    /// All decisions of the batch, in arrival order.
    pub fn decisions(&self) -> impl Iterator<Item = Decision> + '_ {
        (0..self.count).map(|i| self.decision(i))
    }
}

#[cfg(test)]
mod tests;
