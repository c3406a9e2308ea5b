//! The capacity search: the highest arrival rate that passes a test,
//! found by doubling from a start rate (or probing around an earlier
//! estimate), then bisecting until the highest pass and the lowest failure
//! are within a relative precision. Pure: the caller runs each probe.

/// A search in progress; ask [`next`](Self::next) for the rate to probe and
/// report each probe with [`record`](Self::record).
#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySearch {
    /// Highest rate that passed.
    pass: Option<u32>,
    /// Lowest rate that failed.
    fail: Option<u32>,
    first: u32,
    /// Growth (or shrink) factor while only one side is known.
    factor: f64,
    min: u32,
    max: u32,
    precision: f64,
    probes: Vec<(u32, bool)>,
}

impl CapacitySearch {
    /// Doubles from `start` until a rate fails (or `max` passes), then
    /// bisects to within `precision` (e.g. 0.05); never probes below `min`.
    pub fn doubling(start: u32, min: u32, max: u32, precision: f64) -> Self {
        Self::new(start, 2.0, min, max, precision)
    }

    /// Probes `estimate` first, then steps by 30 % towards the other side
    /// and bisects: a repetition that knows roughly where the answer is.
    pub fn around(estimate: u32, min: u32, max: u32, precision: f64) -> Self {
        Self::new(estimate, 1.3, min, max, precision)
    }

    fn new(first: u32, factor: f64, min: u32, max: u32, precision: f64) -> Self {
        let min = min.max(1);
        let max = max.max(min);
        Self {
            pass: None,
            fail: None,
            first: first.clamp(min, max),
            factor,
            min,
            max,
            precision: precision.max(0.001),
            probes: Vec::new(),
        }
    }

    /// The next rate to probe, or `None` when the search is done.
    pub fn next(&self) -> Option<u32> {
        let scale = |r: u32, f: f64| (f64::from(r) * f).round() as u32;
        match (self.pass, self.fail) {
            (None, None) => Some(self.first),
            (Some(p), None) => (p < self.max).then(|| scale(p, self.factor).clamp(p + 1, self.max)),
            (None, Some(f)) => {
                (f > self.min).then(|| scale(f, 1.0 / self.factor).clamp(self.min, f - 1))
            }
            (Some(p), Some(f)) => {
                let close = f64::from(f) <= f64::from(p) * (1.0 + self.precision) || f <= p + 1;
                (!close).then(|| p + (f - p) / 2)
            }
        }
    }

    /// Records that `rate` passed or failed. The lowest failure bounds the
    /// search; the capacity is the highest pass below it (a pass above a
    /// failure is noise at the edge and does not count).
    pub fn record(&mut self, rate: u32, passed: bool) {
        self.probes.push((rate, passed));
        self.fail = self.probes.iter().filter(|p| !p.1).map(|p| p.0).min();
        self.pass = self
            .probes
            .iter()
            .filter(|p| p.1 && self.fail.is_none_or(|f| p.0 < f))
            .map(|p| p.0)
            .max();
    }

    /// The highest rate that passed (0 if none did).
    pub fn capacity(&self) -> u32 {
        self.pass.unwrap_or(0)
    }

    /// Whether the search stopped at `max` without a failure (the capacity
    /// is at least that).
    pub fn capped(&self) -> bool {
        self.fail.is_none() && self.pass == Some(self.max)
    }

    /// Every probe in order: (rate, passed).
    pub fn probes(&self) -> &[(u32, bool)] {
        &self.probes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `search` against a system that passes every rate ≤ `limit`.
    fn run(mut search: CapacitySearch, limit: u32) -> CapacitySearch {
        while let Some(rate) = search.next() {
            assert!(search.probes().len() < 40, "search does not end");
            search.record(rate, rate <= limit);
        }
        search
    }

    #[test]
    fn doubling_then_bisection_ends_within_the_precision() {
        let s = run(CapacitySearch::doubling(1000, 50, 1_000_000, 0.05), 11_300);
        let c = s.capacity();
        assert!(c <= 11_300 && f64::from(c) >= 11_300.0 / 1.05, "{c}");
        // 1k, 2k, 4k, 8k, 16k, then bisection between 8k and 16k.
        assert_eq!(
            &s.probes()[..5].iter().map(|p| p.0).collect::<Vec<_>>(),
            &[1000, 2000, 4000, 8000, 16000]
        );
        assert!(s.probes().len() <= 10, "{:?}", s.probes());
        assert!(!s.capped());
    }

    #[test]
    fn around_an_estimate_takes_few_probes() {
        let s = run(CapacitySearch::around(11_000, 50, 1_000_000, 0.05), 11_300);
        let c = s.capacity();
        assert!(c <= 11_300 && f64::from(c) >= 11_300.0 / 1.05, "{c}");
        assert!(s.probes().len() <= 5, "{:?}", s.probes());
        let s = run(CapacitySearch::around(20_000, 50, 1_000_000, 0.05), 11_300);
        assert!(f64::from(s.capacity()) >= 11_300.0 / 1.05);
    }

    #[test]
    fn bounds_nothing_passes_and_everything_passes() {
        let s = run(CapacitySearch::doubling(1000, 100, 1_000_000, 0.05), 10);
        assert_eq!(s.capacity(), 0);
        assert_eq!(s.probes().last(), Some(&(100, false)));
        let s = run(CapacitySearch::doubling(1000, 100, 5000, 0.05), u32::MAX);
        assert_eq!(s.capacity(), 5000);
        assert!(s.capped());
    }

    #[test]
    fn noisy_edges_keep_the_bracket_consistent() {
        let mut s = CapacitySearch::doubling(1000, 1, 100_000, 0.05);
        s.record(1000, true);
        s.record(2000, false);
        s.record(1500, true);
        s.record(1800, true);
        s.record(1200, false); // noise: 1200 fails although 1500 passed
        assert_eq!((s.pass, s.fail), (Some(1000), Some(1200)));
        s.record(1100, true);
        assert_eq!(s.next(), Some(1150));
    }
}
