//! All-or-nothing decisions over several buckets (layered limits).
//!
//! One request spends `cost_i` tokens from each of N buckets at `now`. It is
//! allowed iff every **enforced** limit allows it; then every limit that can
//! spend, spends. If any enforced limit denies, **nothing is spent** on any
//! bucket, so a client denied by one limit never drains another. A limit
//! that is not enforced ("shadow") is evaluated and spent when it fits, but
//! never denies.
//!
//! A batch of `count` identical requests (the pipelined store merges them)
//! allows the first `min_i fit_i` of them, `fit_i` taken over the enforced
//! limits: exactly what `count` sequential calls would do.
//!
//! Each limit is decided by [`crate::bucket`]; this module only combines
//! them. `crates/rateguard-store/src/token_bucket.lua` mirrors
//! [`acquire_all`] step for step; keep them in sync.

use std::time::Duration;

use crate::bucket::{self, Batch};
use crate::{Decision, Quota};

/// One limit of a request: its bucket's shape, the tokens the request
/// spends from it, and whether a denial blocks the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// The bucket's shape.
    pub quota: Quota,
    /// Tokens one request spends (0 inspects without spending).
    pub cost: u32,
    /// `false` for a shadow limit: spent when it fits, never denies.
    pub enforced: bool,
}

impl Limit {
    /// An enforced limit.
    pub fn enforced(quota: Quota, cost: u32) -> Self {
        Self {
            quota,
            cost,
            enforced: true,
        }
    }

    /// A shadow limit: evaluated and spent when it fits, never denies.
    pub fn shadow(quota: Quota, cost: u32) -> Self {
        Self {
            quota,
            cost,
            enforced: false,
        }
    }
}

/// The result of `count` identical multi-limit requests at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiBatch {
    /// How many of the `count` requests were allowed: always the first ones.
    pub allowed: u32,
    /// Per limit, in request order: what was spent on its bucket. Its `tat`
    /// is the value to store (unchanged when it spent nothing).
    pub buckets: Vec<Batch>,
    enforced: Vec<bool>,
    count: u32,
}

/// Decides `count` identical requests arriving together at `now` over the
/// buckets `(tat, limit)` (a `tat` of 0 for a key never seen).
///
/// ```
/// use rateguard_core::multi::{acquire_all, Limit};
/// use rateguard_core::Quota;
///
/// let per_client = Limit::enforced(Quota::new(2, 1.0).unwrap(), 1);
/// let per_ip = Limit::enforced(Quota::new(5, 1.0).unwrap(), 1);
/// let batch = acquire_all(1_000_000, &[(0, per_client), (0, per_ip)], 3);
/// assert_eq!(batch.allowed, 2); // the per-client bucket holds 2
/// let third = batch.decision(2);
/// assert!(!third.allowed());
/// assert_eq!(third.reported(), Some((0, &third.limits()[0].unwrap())));
/// // The per-ip bucket spent 2, not 3: the denied request spent nothing.
/// assert_eq!(batch.buckets[1].allowed, 2);
/// ```
pub fn acquire_all(now: u64, buckets: &[(u64, Limit)], count: u32) -> MultiBatch {
    let allowed = buckets
        .iter()
        .filter(|(_, limit)| limit.enforced)
        .map(|&(tat, limit)| {
            bucket::acquire_batch(tat, now, &limit.quota, limit.cost, count).allowed
        })
        .fold(count, u32::min);
    MultiBatch {
        allowed,
        buckets: buckets
            .iter()
            .map(|&(tat, limit)| bucket::acquire_batch(tat, now, &limit.quota, limit.cost, allowed))
            .collect(),
        enforced: buckets.iter().map(|(_, limit)| limit.enforced).collect(),
        count,
    }
}

impl MultiBatch {
    /// The decision for the `index`-th request of the batch (0-based).
    ///
    /// An allowed request sees each bucket after its own spend (a shadow
    /// limit that did not fit reports its denial); a denied request sees
    /// each bucket as the allowed ones left it, with nothing spent.
    ///
    /// # Panics
    /// If `index >= count`.
    pub fn decision(&self, index: u32) -> MultiDecision {
        assert!(
            index < self.count,
            "request {index} of a batch of {}",
            self.count
        );
        let limits = self
            .buckets
            .iter()
            .map(|b| {
                Some(if index < self.allowed {
                    b.decision(index)
                } else {
                    b.after()
                })
            })
            .collect();
        MultiDecision::new(limits, &self.enforced)
    }

    /// All decisions of the batch, in arrival order.
    pub fn decisions(&self) -> impl Iterator<Item = MultiDecision> + '_ {
        (0..self.count).map(|i| self.decision(i))
    }
}

/// The answer to one multi-limit request: the verdict, and each limit's
/// own view of it.
///
/// A limit's [`Decision::allowed`] says whether that limit alone admits the
/// request; the request's verdict is [`allowed`](Self::allowed): every
/// enforced limit admits it. `remaining` and `reset_after` describe the
/// bucket after the decision (nothing spent anywhere on a denial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiDecision {
    allowed: bool,
    limits: Vec<Option<Decision>>,
    reported: Option<usize>,
    from_cache: bool,
}

impl MultiDecision {
    /// Combines per-limit decisions (`None`: not evaluated) with their
    /// `enforced` flags: allowed iff no evaluated enforced limit denies.
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn new(limits: Vec<Option<Decision>>, enforced: &[bool]) -> Self {
        assert_eq!(limits.len(), enforced.len(), "one enforced flag per limit");
        let denies = |i: usize| enforced[i] && limits[i].is_some_and(|d| !d.allowed);
        let allowed = !(0..limits.len()).any(denies);
        let reported = if allowed {
            // Fewest tokens left; the first such limit on a tie.
            (0..limits.len())
                .filter_map(|i| limits[i].map(|d| (d.remaining, i)))
                .min()
                .map(|(_, i)| i)
        } else {
            // The longest wait among the denying limits; the first on a tie.
            (0..limits.len())
                .filter(|&i| denies(i))
                .filter_map(|i| limits[i].map(|d| (std::cmp::Reverse(d.retry_after), i)))
                .min()
                .map(|(_, i)| i)
        };
        Self {
            allowed,
            limits,
            reported,
            from_cache: false,
        }
    }

    /// One enforced limit's decision, as a multi-limit decision.
    pub fn single(decision: Decision) -> Self {
        Self::new(vec![Some(decision)], &[true])
    }

    /// Marks a decision answered by a local deny cache instead of the store.
    pub fn with_from_cache(mut self) -> Self {
        self.from_cache = true;
        self
    }

    /// Whether the request was allowed (and every fitting limit spent).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Each limit's own decision, in request order. `None` for a limit that
    /// was not evaluated: the deny cache answered from another limit's
    /// cached denial, or (`fred-cluster`, keys in several slots) an earlier
    /// limit denied before this one was asked.
    pub fn limits(&self) -> &[Option<Decision>] {
        &self.limits
    }

    /// The limit the response headers report, with its index: when allowed,
    /// the one with the fewest tokens left; when denied, the denying
    /// enforced limit with the longest wait. `None` only without limits.
    pub fn reported(&self) -> Option<(usize, &Decision)> {
        let i = self.reported?;
        self.limits[i].as_ref().map(|d| (i, d))
    }

    /// How long until a retry can succeed: zero when allowed, else the
    /// reported limit's `retry_after` (the longest wait among the denials).
    pub fn retry_after(&self) -> Duration {
        match self.reported() {
            Some((_, d)) if !self.allowed => d.retry_after,
            _ => Duration::ZERO,
        }
    }

    /// Whether a local deny cache answered instead of the store.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}

#[cfg(test)]
mod tests;
