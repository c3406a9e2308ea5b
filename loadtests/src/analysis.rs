//! Turning [`Sample`]s into figures: counts, an `hdrhistogram` of latency,
//! the allowed-over-time series against an ideal token bucket, the
//! per-slot timeline of the outage chart, and over- and under-admission
//! against the bucket's bounds ([`admission()`]).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::record::{Outcome, Sample};

mod admission;

pub use admission::{admission, Admission, Excess, WINDOWS_MS};

/// Highest latency the histograms track, µs (one minute).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// Requests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// All requests.
    pub requests: u64,
    /// 2xx.
    pub allowed: u64,
    /// 429.
    pub denied: u64,
    /// Everything else.
    pub errors: u64,
}

impl Counts {
    /// Counts `samples` by outcome.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut c = Self::default();
        for s in samples {
            c.requests += 1;
            match s.outcome {
                Outcome::Allowed => c.allowed += 1,
                Outcome::Denied => c.denied += 1,
                Outcome::Error => c.errors += 1,
            }
        }
        c
    }
}

/// An empty latency histogram: 1 µs to [`MAX_LATENCY_US`], 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// The latency histogram (µs) of `samples`; values above the bound are
/// clamped to it rather than dropped.
pub fn latency_histogram<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Histogram<u64> {
    let mut h = new_histogram();
    for s in samples {
        h.saturating_record(s.latency_us.max(1));
    }
    h
}

/// A token bucket's shape, as the gateway's policy states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketShape {
    /// Tokens when full.
    pub capacity: u32,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// One point of the cumulative allowed-over-time series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedPoint {
    /// End of the slot, ms since the scenario started.
    pub t_ms: u64,
    /// Requests sent by then that were allowed.
    pub allowed: u64,
    /// Requests sent by then that one ideal bucket per client would allow.
    pub ideal: u64,
}

/// The allowed-over-time series against the ideal, and the ideal total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Cumulative points every `slot_ms`.
    pub series: Vec<AllowedPoint>,
    /// What one exact token bucket per client would have allowed in total.
    pub expected_allowed: u64,
}

/// Replays each client's requests (by send time) through an ideal token
/// bucket of `shape`, and compares with what was really allowed.
///
/// The ideal is what *one* bucket per client, shared by all replicas, would
/// decide for exactly these arrivals: `C + r·T` under steady over-limit
/// demand, fewer when a client asked for less.
pub fn accuracy(samples: &[Sample], shape: BucketShape, slot_ms: u64) -> Accuracy {
    let (sorted, ideal_flags) = ideal_replay(samples, shape);
    let slot_us = slot_ms.max(1) * 1000;
    let mut series = Vec::new();
    let (mut allowed, mut ideal) = (0u64, 0u64);
    let mut next_edge = slot_us;
    for (s, ok) in sorted.iter().zip(&ideal_flags) {
        while s.at_us >= next_edge {
            series.push(AllowedPoint {
                t_ms: next_edge / 1000,
                allowed,
                ideal,
            });
            next_edge += slot_us;
        }
        allowed += u64::from(s.outcome == Outcome::Allowed);
        ideal += u64::from(*ok);
    }
    series.push(AllowedPoint {
        t_ms: next_edge / 1000,
        allowed,
        ideal,
    });
    Accuracy {
        series,
        expected_allowed: ideal,
    }
}

/// `samples` by send time, each with whether one ideal bucket of `shape`
/// per client (full at its first request) would have admitted it.
fn ideal_replay(samples: &[Sample], shape: BucketShape) -> (Vec<&Sample>, Vec<bool>) {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| (s.at_us, s.client));

    let mut buckets: BTreeMap<u32, (f64, u64)> = BTreeMap::new(); // client -> (tokens, last µs)
    let mut ideal_flags = Vec::with_capacity(sorted.len());
    for s in &sorted {
        let (tokens, last) = buckets
            .entry(s.client)
            .or_insert((f64::from(shape.capacity), s.at_us));
        let dt = s.at_us.saturating_sub(*last) as f64 / 1e6;
        *tokens = (*tokens + dt * shape.refill_per_sec).min(f64::from(shape.capacity));
        *last = s.at_us;
        // A tiny epsilon absorbs float error in `r·dt` sums.
        let ok = *tokens >= 1.0 - 1e-9;
        if ok {
            *tokens -= 1.0;
        }
        ideal_flags.push(ok);
    }
    (sorted, ideal_flags)
}

/// The requests sent in `[from_us, to_us)` (e.g. while the store was
/// down): their outcomes, and how many of them one ideal bucket of `shape`
/// per client would have admitted (replayed from each client's first
/// request, so the window starts with the bucket as the run left it).
pub fn window(samples: &[Sample], shape: BucketShape, from_us: u64, to_us: u64) -> (Counts, u64) {
    let (sorted, flags) = ideal_replay(samples, shape);
    let inside = |s: &&Sample| s.at_us >= from_us && s.at_us < to_us;
    let counts = Counts::of(sorted.iter().copied().filter(inside));
    let ideal = sorted
        .iter()
        .zip(&flags)
        .filter(|(s, ok)| **ok && inside(s))
        .count() as u64;
    (counts, ideal)
}

/// Outcomes in one time slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    /// Start of the slot, ms since the scenario started.
    pub t_ms: u64,
    /// 2xx in the slot.
    pub ok: u64,
    /// 429 in the slot.
    pub denied: u64,
    /// Errors in the slot.
    pub errors: u64,
    /// p99 latency of the slot's requests, µs (0 when empty).
    pub p99_us: u64,
}

/// Groups samples by send time into `slot_ms` slots, from 0 to the last one
/// (empty slots included, so gaps show).
pub fn timeline(samples: &[Sample], slot_ms: u64) -> Vec<Slot> {
    let slot_us = slot_ms.max(1) * 1000;
    let Some(last) = samples.iter().map(|s| s.at_us).max() else {
        return Vec::new();
    };
    let n = usize::try_from(last / slot_us + 1).unwrap_or(usize::MAX);
    let mut by_slot: Vec<Vec<&Sample>> = vec![Vec::new(); n];
    for s in samples {
        if let Some(v) = usize::try_from(s.at_us / slot_us)
            .ok()
            .and_then(|i| by_slot.get_mut(i))
        {
            v.push(s);
        }
    }
    by_slot
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let c = Counts::of(v.iter().copied());
            let h = latency_histogram(v.iter().copied());
            Slot {
                t_ms: i as u64 * slot_ms,
                ok: c.allowed,
                denied: c.denied,
                errors: c.errors,
                p99_us: if h.is_empty() {
                    0
                } else {
                    h.value_at_percentile(99.0)
                },
            }
        })
        .collect()
}

/// Send time (µs) of the first 429 sent at or after `after_us`.
pub fn first_denied_after(samples: &[Sample], after_us: u64) -> Option<u64> {
    samples
        .iter()
        .filter(|s| s.outcome == Outcome::Denied && s.at_us >= after_us)
        .map(|s| s.at_us)
        .min()
}

#[cfg(test)]
mod tests;
