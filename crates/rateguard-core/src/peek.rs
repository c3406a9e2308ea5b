//! [`Peek`]: what a bucket looks like now, without spending anything.
//!
//! For an operator ("why is this customer locked out?") the admin API reads
//! a bucket: how many tokens are left, when it is full again, and when one
//! request (cost 1) could pass. It is [`bucket::acquire_batch`] with no
//! request at all (`count` 0), reported as one more request of cost 1 would
//! see it, so a peek and the next acquire agree.
//!
//! `crates/rateguard-store/src/peek.lua` mirrors [`peek`] step for step;
//! keep them in sync.
//!
//! [`bucket::acquire_batch`]: crate::bucket::acquire_batch

use std::time::Duration;

use crate::Quota;

/// A bucket's state at one instant, read without spending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// The bucket's capacity.
    pub limit: u32,
    /// Whole tokens left now.
    pub remaining: u32,
    /// How long until the bucket is full again (zero when full).
    pub reset_after: Duration,
    /// How long until a request of cost 1 would be allowed (zero: now).
    pub retry_after: Duration,
}

/// The bucket whose stored theoretical arrival time is `tat` (0 for a key
/// that does not exist), seen at `now` under `quota`.
///
/// ```
/// use rateguard_core::{bucket, peek, Quota};
///
/// let quota = Quota::new(2, 1.0).unwrap(); // 2 tokens, 1 per second
/// let now = 1_000_000;
/// assert_eq!(peek::peek(0, now, &quota).remaining, 2); // never seen: full
/// let a = bucket::acquire(0, now, &quota, 1);
/// let b = bucket::acquire(a.tat, now, &quota, 1);
/// let empty = peek::peek(b.tat, now, &quota);
/// assert_eq!(empty.remaining, 0);
/// assert_eq!(empty.retry_after.as_secs(), 1);
/// assert_eq!(empty.reset_after.as_secs(), 2);
/// // Peeking spends nothing: the same state gives the same answer.
/// assert_eq!(peek::peek(b.tat, now, &quota), empty);
/// ```
pub fn peek(tat: u64, now: u64, quota: &Quota) -> Peek {
    let interval = quota.interval_us();
    let fill = quota.fill_time_us();
    let backlog = tat.saturating_sub(now).min(fill);
    Peek {
        limit: quota.capacity(),
        remaining: ((fill - backlog) / interval) as u32,
        reset_after: Duration::from_micros(backlog),
        // Capacity is at least 1, so cost 1 always fits eventually.
        retry_after: Duration::from_micros((backlog + interval).saturating_sub(fill)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000;

    #[test]
    fn full_partial_and_empty_buckets() {
        let quota = Quota::new(3, 10.0).unwrap(); // T = 100 ms, fill 300 ms
        let now = 1_000 * SEC;
        let full = peek(0, now, &quota);
        assert_eq!(
            full,
            Peek {
                limit: 3,
                remaining: 3,
                reset_after: Duration::ZERO,
                retry_after: Duration::ZERO,
            }
        );
        assert_eq!(peek(now - 5, now, &quota), full, "a tat in the past: full");
        // Backlog 150 ms: 1.5 tokens used, 1 whole token left.
        let half = peek(now + 150_000, now, &quota);
        assert_eq!((half.remaining, half.retry_after), (1, Duration::ZERO));
        assert_eq!(half.reset_after, Duration::from_millis(150));
        // Backlog 250 ms: 0.5 token left, cost 1 fits in 50 ms.
        let low = peek(now + 250_000, now, &quota);
        assert_eq!(low.remaining, 0);
        assert_eq!(low.retry_after, Duration::from_millis(50));
        // A tat beyond the fill time (a quota that shrank) caps at empty.
        let capped = peek(now + 10 * SEC, now, &quota);
        assert_eq!(capped.reset_after, Duration::from_millis(300));
        assert_eq!(capped.retry_after, Duration::from_millis(100));
    }

    proptest! {
        /// A peek is what the next request of cost 1 would see, without
        /// spending: the core's batch of no request, and the acquire agrees.
        #[test]
        fn peek_agrees_with_the_next_acquire(
            capacity in 1u64..50,
            rate in 1u32..1_000,
            tat_offset in 0u64..200 * SEC,
            now in 100 * SEC..200 * SEC,
        ) {
            let quota = Quota::new(capacity, f64::from(rate) / 10.0).unwrap();
            let tat = now - 100 * SEC + tat_offset;
            let p = peek(tat, now, &quota);
            let after = bucket::acquire_batch(tat, now, &quota, 1, 0).after();
            prop_assert_eq!(p.remaining, after.remaining);
            prop_assert_eq!(p.reset_after, after.reset_after);
            prop_assert_eq!(p.retry_after, after.retry_after);
            prop_assert_eq!(p.limit, after.limit);
            let next = bucket::acquire(tat, now, &quota, 1).decision;
            prop_assert_eq!(next.allowed, p.retry_after.is_zero());
            if next.allowed {
                prop_assert_eq!(next.remaining + 1, p.remaining);
            } else {
                prop_assert_eq!(next.retry_after, p.retry_after);
                prop_assert_eq!(next.remaining, p.remaining);
            }
            // Waiting `retry_after` lets that request through (unless the
            // stored time lies beyond a full bucket: a quota that shrank,
            // where the core's own `retry_after` is just as optimistic).
            let later = now + u64::try_from(p.retry_after.as_micros()).unwrap();
            if tat <= now + quota.fill_time_us() {
                prop_assert!(bucket::acquire(tat, later, &quota, 1).decision.allowed);
            }
        }
    }
}
