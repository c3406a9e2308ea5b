//! Over- and under-admission against a token bucket's bound, per key,
//! from every decision's send and answer times ([`admission`]).
//!
//! A bucket of capacity `B` refilled at `R` per second admits at most
//! `B + R·w` requests of one key in any window of `w` seconds, whoever
//! decides them: the excess over that bound, maximised over every window
//! and key, is the over-admission (≤ 0 for an exact store). Over the whole
//! run of `T` seconds it admits `min(offered, B + R·T)` of a key that
//! asks steadily: the shortfall is the under-admission.
//!
//! The generator cannot see when a decision was made, only that it fell
//! between the request's send and the end of its answer; a decision counts
//! in a window only if both lie inside it. The count is a lower bound of
//! the true one, so an exact store can never show an excess, and a store
//! that admits more shows it up to one answer's latency at each edge.

use std::collections::BTreeMap;

use super::BucketShape;
use crate::record::{Outcome, Sample};

/// The window lengths over-admission is reported for, ms.
pub const WINDOWS_MS: [u64; 2] = [100, 1000];

/// The largest excess over the bound in windows of one length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Excess {
    /// The window length, ms.
    pub window_ms: u64,
    /// `admitted − (B + R·w)` in the worst window (negative: never
    /// reached the bound).
    pub excess: f64,
    /// The key (client index) of the worst window.
    pub key: u32,
    /// Where the worst window starts, µs since the recorder started.
    pub start_us: u64,
    /// Admitted in it.
    pub admitted: u64,
    /// Admitted in it by replica ([`Sample::replica`] index; `None`: not named).
    pub by_replica: BTreeMap<Option<u16>, u64>,
}

/// What the decisions of one run admitted against the bucket's bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// Requests sent, every key.
    pub offered: u64,
    /// Of which admitted (2xx).
    pub admitted: u64,
    /// `Σ min(offered, B + R·T)` over keys, `T` the span of the key's due
    /// times: what one exact bucket per key admits of steady demand.
    pub ideal: f64,
    /// The worst window of each of [`WINDOWS_MS`], in that order.
    pub over: Vec<Excess>,
}

impl Admission {
    /// `1 − admitted / ideal`, at least 0 (a store that admitted more than
    /// the ideal shows it in [`Admission::over`]); 0 when nothing was ideal.
    pub fn under(&self) -> f64 {
        if self.ideal <= 0.0 {
            return 0.0;
        }
        (1.0 - self.admitted as f64 / self.ideal).max(0.0)
    }

    /// The excess in windows of `window_ms` (`None`: not computed).
    pub fn over_ms(&self, window_ms: u64) -> Option<f64> {
        self.over
            .iter()
            .find(|e| e.window_ms == window_ms)
            .map(|e| e.excess)
    }
}

/// Over- and under-admission of `samples` against one bucket of `shape`
/// per key (client).
pub fn admission(samples: &[Sample], shape: BucketShape) -> Admission {
    let mut by_key: BTreeMap<u32, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_key.entry(s.client).or_default().push(s);
    }
    let mut out = Admission {
        over: WINDOWS_MS
            .iter()
            .map(|&window_ms| Excess {
                window_ms,
                excess: f64::NEG_INFINITY,
                ..Excess::default()
            })
            .collect(),
        ..Admission::default()
    };
    let bound = |w_us: u64| f64::from(shape.capacity) + shape.refill_per_sec * w_us as f64 / 1e6;
    for (&key, all) in &by_key {
        let first = all.iter().map(|s| s.at_us).min().unwrap_or(0);
        let last = all.iter().map(|s| s.at_us).max().unwrap_or(0);
        let offered = all.len() as u64;
        let mut admitted: Vec<&Sample> = all
            .iter()
            .copied()
            .filter(|s| s.outcome == Outcome::Allowed)
            .collect();
        admitted.sort_by_key(|s| s.sent_us);
        out.offered += offered;
        out.admitted += admitted.len() as u64;
        out.ideal += (offered as f64).min(bound(last - first));
        for excess in &mut out.over {
            let w_us = excess.window_ms * 1000;
            for (i, start) in admitted.iter().enumerate() {
                let end = start.sent_us + w_us;
                let inside: Vec<&Sample> = admitted[i..]
                    .iter()
                    .take_while(|s| s.sent_us <= end)
                    .filter(|s| s.done_us() <= end)
                    .copied()
                    .collect();
                let e = inside.len() as f64 - bound(w_us);
                if e > excess.excess {
                    let mut by_replica = BTreeMap::new();
                    for s in &inside {
                        *by_replica.entry(s.replica).or_insert(0) += 1;
                    }
                    *excess = Excess {
                        window_ms: excess.window_ms,
                        excess: e,
                        key,
                        start_us: start.sent_us,
                        admitted: inside.len() as u64,
                        by_replica,
                    };
                }
            }
        }
    }
    // No admission at all: the bound was never approached.
    for excess in &mut out.over {
        if excess.excess == f64::NEG_INFINITY {
            excess.excess = -bound(excess.window_ms * 1000);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of `key` sent at `ms`, answered 1 ms later.
    fn decision(key: u32, ms: u64, allowed: bool, replica: u16) -> Sample {
        Sample {
            at_us: ms * 1000,
            latency_us: 1000,
            outcome: if allowed {
                Outcome::Allowed
            } else {
                Outcome::Denied
            },
            client: key,
            sent_us: ms * 1000,
            replica: Some(replica),
        }
    }

    const SHAPE: BucketShape = BucketShape {
        capacity: 5,
        refill_per_sec: 10.0,
    };

    /// One key asking every 10 ms for 2 s; `admit` decides each request.
    fn run(admit: impl Fn(u64) -> bool) -> Vec<Sample> {
        (0..200)
            .map(|i| decision(0, i * 10, admit(i * 10), (i % 3) as u16))
            .collect()
    }

    #[test]
    fn an_exact_bucket_never_exceeds_the_bound() {
        // 5 at once, then one per 100 ms: exactly the bucket.
        let samples = run(|ms| ms < 50 || (ms >= 100 && ms % 100 == 0));
        let a = admission(&samples, SHAPE);
        assert_eq!(a.offered, 200);
        assert_eq!(a.admitted, 5 + 19);
        // 100 ms: at most 5 (+ 1 answered after the window) against 6.
        let over = a.over_ms(100).unwrap();
        assert!((-1.0..=0.0).contains(&over), "{a:?}");
        assert!(a.over_ms(1000).unwrap() <= 0.0, "{a:?}");
        // Ideal: 5 + 10 · 1.99 s = 24.9.
        assert!((a.ideal - 24.9).abs() < 1e-9, "{}", a.ideal);
        assert!(a.under() < 0.04, "{}", a.under());
    }

    #[test]
    fn three_replicas_each_with_the_bucket_exceed_it() {
        // Every replica admits its own 5 at once, then its own refill.
        let samples = run(|ms| ms < 150 || ms % 100 < 30);
        let a = admission(&samples, SHAPE);
        let worst = &a.over[0];
        assert_eq!(worst.window_ms, 100);
        assert!(worst.excess >= 4.0, "{worst:?}");
        assert_eq!(worst.by_replica.values().sum::<u64>(), worst.admitted);
        assert!(a.over_ms(1000).unwrap() > 10.0, "{a:?}");
        assert_eq!(a.under(), 0.0);
    }

    #[test]
    fn a_store_that_admits_too_little_shows_under_admission() {
        let samples = run(|ms| ms % 200 == 0);
        let a = admission(&samples, SHAPE);
        assert!(a.over_ms(100).unwrap() < 0.0);
        assert!(
            (a.under() - (1.0 - 10.0 / 24.9)).abs() < 1e-9,
            "{}",
            a.under()
        );
        // A decision answered after its window ends does not count in it.
        let late = [Sample {
            latency_us: 200_000,
            ..decision(1, 0, true, 0)
        }];
        assert_eq!(admission(&late, SHAPE).over[0].admitted, 0);
    }
}
