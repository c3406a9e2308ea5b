//! Small statistics the lab and the report share: percentiles from a
//! histogram, the median and spread over repetitions (the one definition
//! both use), and the accuracy error.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::RepetitionStats;

/// Percentiles of a latency curve, p50 … p99.99.
pub const CURVE_PERCENTILES: [f64; 9] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99];

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value recorded.
    pub max: u64,
}

impl LatencyUs {
    /// Reads the percentiles from a histogram of µs values (all zero when
    /// the histogram is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: h.value_at_percentile(50.0),
            p90: h.value_at_percentile(90.0),
            p99: h.value_at_percentile(99.0),
            p999: h.value_at_percentile(99.9),
            max: h.max(),
        }
    }

    /// The `(percentile, µs)` curve at [`CURVE_PERCENTILES`] (empty when the
    /// histogram is empty).
    pub fn curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
        if h.is_empty() {
            return Vec::new();
        }
        CURVE_PERCENTILES
            .iter()
            .map(|&p| (p, h.value_at_percentile(p)))
            .collect()
    }
}

/// min / median / max of a set of measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, ignoring NaNs; `None` when nothing is left.
    ///
    /// ```
    /// use rateguard_report::Spread;
    /// let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
    /// assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 10.0));
    /// assert!(Spread::of(&[]).is_none());
    /// ```
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

/// The median of `values`, ignoring NaNs: the middle value, or the mean of
/// the two middle values for an even count; `None` when nothing is left.
/// The lab's headline figures and the report's [`Spread`] both use it.
///
/// ```
/// use rateguard_report::median;
/// assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
/// assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
/// assert_eq!(median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    Spread::of(values).map(|s| s.median)
}

/// Spread of a record's headline figures over its repetitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordSpread {
    /// Throughput, requests per second.
    pub throughput_rps: Spread,
    /// Median latency, µs.
    pub p50_us: Spread,
    /// 99th percentile latency, µs.
    pub p99_us: Spread,
    /// CPU µs per request, all roles together (when measured).
    #[serde(default)]
    pub cpu_us_per_request: Option<Spread>,
    /// capacity: the highest rate meeting the SLO, req/s.
    #[serde(default)]
    pub capacity_rps: Option<Spread>,
}

impl RecordSpread {
    /// The spread over `reps`; `None` when there are none.
    pub fn of(reps: &[RepetitionStats]) -> Option<Self> {
        let pick = |f: fn(&RepetitionStats) -> f64| -> Option<Spread> {
            Spread::of(&reps.iter().map(f).collect::<Vec<_>>())
        };
        let some = |f: fn(&RepetitionStats) -> Option<f64>| -> Option<Spread> {
            Spread::of(&reps.iter().filter_map(f).collect::<Vec<_>>())
        };
        Some(Self {
            throughput_rps: pick(|r| r.throughput_rps)?,
            p50_us: pick(|r| r.latency_us.p50 as f64)?,
            p99_us: pick(|r| r.latency_us.p99 as f64)?,
            cpu_us_per_request: some(|r| r.cpu_us_per_request.as_ref().map(|c| c.total())),
            capacity_rps: some(|r| r.capacity_rps),
        })
    }
}

/// `100 · (allowed − expected) / expected`: signed, positive when more was
/// allowed than an ideal bucket would. `None` when `expected` is 0 (no
/// meaningful ratio), except that 0 of 0 is exact (`Some(0.0)`).
///
/// ```
/// use rateguard_report::accuracy_error_pct;
/// assert_eq!(accuracy_error_pct(150, 100), Some(50.0));
/// assert_eq!(accuracy_error_pct(90, 100), Some(-10.0));
/// assert_eq!(accuracy_error_pct(0, 0), Some(0.0));
/// assert_eq!(accuracy_error_pct(3, 0), None);
/// ```
pub fn accuracy_error_pct(allowed: u64, expected: u64) -> Option<f64> {
    match (allowed, expected) {
        (0, 0) => Some(0.0),
        (_, 0) => None,
        (a, e) => Some(100.0 * (a as f64 - e as f64) / e as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_two_middle_values() {
        assert_eq!(median(&[10.0, 40.0]), Some(25.0));
        assert_eq!(median(&[7.0, 1.0, 9.0, 3.0]), Some(5.0));
        assert_eq!(median(&[2.0, 2.0, 8.0, 8.0, f64::NAN]), Some(5.0));
        assert_eq!(median(&[42.0]), Some(42.0));
        assert_eq!(median(&[f64::NAN]), None);
        let s = Spread::of(&[7.0, 1.0, 9.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 5.0, 9.0));
    }

    #[test]
    fn spread_of_odd_count_and_nans() {
        let s = Spread::of(&[5.0, f64::NAN, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 5.0));
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn record_spread_over_repetitions() {
        let rep = |rps: f64, p50: u64, p99: u64| RepetitionStats {
            throughput_rps: rps,
            latency_us: LatencyUs {
                p50,
                p99,
                ..LatencyUs::default()
            },
            ..RepetitionStats::default()
        };
        let s = RecordSpread::of(&[rep(100.0, 10, 90), rep(300.0, 30, 70), rep(200.0, 20, 80)])
            .unwrap();
        assert_eq!(s.throughput_rps.median, 200.0);
        assert_eq!((s.p50_us.min, s.p50_us.max), (10.0, 30.0));
        assert_eq!(s.p99_us.median, 80.0);
        assert!(RecordSpread::of(&[]).is_none());
    }

    #[test]
    fn latency_from_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let l = LatencyUs::from_histogram(&h);
        assert_eq!(l.p50, 500);
        assert_eq!(l.p99, 990);
        assert_eq!(l.max, 1000);
        let curve = LatencyUs::curve(&h);
        assert_eq!(curve.len(), CURVE_PERCENTILES.len());
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1));
        let empty = Histogram::<u64>::new(3).unwrap();
        assert_eq!(LatencyUs::from_histogram(&empty), LatencyUs::default());
        assert!(LatencyUs::curve(&empty).is_empty());
    }
}
