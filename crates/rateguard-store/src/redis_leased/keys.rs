//! What one replica knows of each key: its lease, its recent traffic (the
//! hot-key detector), and the leasing call it has out.

use std::sync::Arc;
use std::time::Duration;

use rateguard_core::lease::{self, Lease};
use rateguard_core::{Decision, Quota};
use tokio::sync::Notify;

/// One key's local state. A new state (first sight, a quota change, an
/// eviction) gets a new `generation`, so a reservation taken from an
/// older one is never refunded into it.
#[derive(Debug)]
pub(super) struct KeyState {
    pub(super) generation: u64,
    pub(super) quota: Quota,
    pub(super) lease: Lease,
    pub(super) detector: Detector,
    /// A leasing call of this replica is out: a request that finds no
    /// credit waits for its reply instead of calling too.
    pub(super) in_flight: Option<Arc<Notify>>,
    /// When the last call was sent (local µs) and the debt it left (µs):
    /// the debt cannot have drained faster than time since.
    pub(super) last_debt: (u64, u64),
    pub(super) last_seen_us: u64,
}

impl KeyState {
    pub(super) fn new(generation: u64, quota: Quota, now_us: u64) -> Self {
        Self {
            generation,
            quota,
            lease: Lease::default(),
            detector: Detector::new(now_us),
            in_flight: None,
            last_debt: (now_us, 0),
            last_seen_us: now_us,
        }
    }

    /// A lower bound of the store's debt at `now_us`.
    fn debt_at_least(&self, now_us: u64) -> u64 {
        let (sent, debt) = self.last_debt;
        debt.saturating_sub(now_us.saturating_sub(sent))
    }

    /// The answer to a request paid from the lease: `remaining` is the
    /// credit left here (the bucket may hold more), `reset_after` a lower
    /// bound of the store's debt.
    pub(super) fn local_allowed(&self, now_us: u64) -> Decision {
        let q = &self.quota;
        Decision {
            allowed: true,
            limit: q.capacity(),
            remaining: u32::try_from(self.lease.tokens(now_us, q))
                .unwrap_or(u32::MAX)
                .min(q.capacity()),
            retry_after: Duration::ZERO,
            reset_after: Duration::from_micros(self.debt_at_least(now_us)),
        }
    }

    /// The answer to a request denied while the last reply proved that no
    /// full lease fits yet (`Lease::is_short`): retry when one does. The
    /// `reset_after` is a lower bound of the store's debt, so a deny cache
    /// in front stays exact.
    pub(super) fn held_off(&self, now_us: u64) -> Decision {
        let q = &self.quota;
        let debt = self.debt_at_least(now_us);
        Decision {
            allowed: false,
            limit: q.capacity(),
            remaining: u32::try_from(q.fill_time_us().saturating_sub(debt) / q.interval_us())
                .unwrap_or(0),
            retry_after: Duration::from_micros(
                self.lease.short_until_us().saturating_sub(now_us).max(1),
            ),
            reset_after: Duration::from_micros(debt),
        }
    }

    /// Tokens to lease on top of a store call: none for a key this replica
    /// sees fewer than `hot_per_period` times per period; else what the
    /// bucket refills in a period (a lease lasts about a period: its slice
    /// drains at the refill rate). Near the limit (the last reply left
    /// less than [`PLENTY`] leases of room) at most what this replica saw
    /// of the key in its busiest recent period: a replica that sees a
    /// fraction of the key's traffic leases that fraction, wasting less
    /// where waste would deny someone.
    pub(super) fn want(&self, period_us: u64, hot_per_period: u32) -> u32 {
        let seen = self.detector.busiest();
        if seen < hot_per_period.max(1) {
            return 0;
        }
        let full = lease::want_for(period_us, &self.quota);
        let q = &self.quota;
        let room = q.fill_time_us().saturating_sub(self.last_debt.1) / q.interval_us();
        if room >= u64::from(full) * PLENTY {
            full
        } else {
            full.min(seen)
        }
    }
}

/// Leases of room the last reply must have left for a full lease even
/// when this replica sees less than the key's rate.
const PLENTY: u64 = 4;

/// Requests seen in the current period and the one before.
#[derive(Debug)]
pub(super) struct Detector {
    period_start_us: u64,
    seen: u32,
    seen_prev: u32,
}

impl Detector {
    fn new(now_us: u64) -> Self {
        Self {
            period_start_us: now_us,
            seen: 0,
            seen_prev: 0,
        }
    }

    /// Counts one request at `now_us`.
    pub(super) fn observe(&mut self, now_us: u64, period_us: u64) {
        let elapsed = now_us.saturating_sub(self.period_start_us);
        if elapsed >= period_us {
            self.seen_prev = if elapsed < 2 * period_us {
                self.seen
            } else {
                0
            };
            self.seen = 0;
            self.period_start_us = now_us - elapsed % period_us;
        }
        self.seen = self.seen.saturating_add(1);
    }

    /// Requests in the busier of the current and the previous period.
    fn busiest(&self) -> u32 {
        self.seen.max(self.seen_prev)
    }
}

/// Requests per period at which a key counts as hot at `hot_rate` per
/// second (0: every key).
pub(super) fn hot_per_period(hot_rate: u32, period_us: u64) -> u32 {
    let per_period = (u64::from(hot_rate) * period_us).div_ceil(1_000_000);
    u32::try_from(per_period).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detector_counts_the_busiest_recent_period() {
        let mut d = Detector::new(0);
        for t in [0, 10, 20] {
            d.observe(t, 100);
        }
        assert_eq!(d.busiest(), 3);
        d.observe(150, 100); // next period: the previous one still counts
        assert_eq!((d.seen, d.seen_prev, d.busiest()), (1, 3, 3));
        d.observe(420, 100); // periods without traffic forget it
        assert_eq!((d.seen, d.seen_prev), (1, 0));
        assert_eq!(d.period_start_us, 400);
    }

    #[test]
    fn a_key_leases_once_hot_and_no_more_than_it_sees() {
        let quota = Quota::new(1000, 1000.0).unwrap(); // 50 tokens per 50 ms
        let mut s = KeyState::new(0, quota, 0);
        s.last_debt = (0, 900_000); // 100 tokens of room: near the limit
        let hot = hot_per_period(100, 50_000);
        assert_eq!(hot, 5);
        for t in 0..4 {
            s.detector.observe(t, 50_000);
        }
        assert_eq!(s.want(50_000, hot), 0, "4 per period is not hot");
        s.detector.observe(5, 50_000);
        assert_eq!(s.want(50_000, hot), 5, "hot: what it sees");
        for t in 0..100 {
            s.detector.observe(10 + t, 50_000);
        }
        assert_eq!(s.want(50_000, hot), 50, "at most a period's refill");
        assert_eq!(hot_per_period(0, 50_000), 0);
        let fresh = KeyState::new(1, quota, 0);
        assert_eq!(fresh.want(50_000, 0), 0, "nothing seen yet");
        s.last_debt = (0, 0); // a full bucket: a full lease at once
        s.detector = Detector::new(0);
        for t in 0..5 {
            s.detector.observe(t, 50_000);
        }
        assert_eq!(s.want(50_000, hot), 50);
    }
}
