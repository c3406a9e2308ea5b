//! The sustained scenario's admission figures: every decision against the
//! bucket's bounds (the analysis is `rateguard_loadtests::analysis::admission`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Spread;

/// One repetition's over- and under-admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionRep {
    /// Max over keys and every 100 ms window of `admitted − (B + R·w)`.
    pub over_admission_100ms: f64,
    /// The same over every 1 s window.
    pub over_admission_1s: f64,
    /// `1 − admitted / Σ min(offered, B + R·T)`, at least 0.
    pub under_admission: f64,
}

/// What a store admitted against one exact bucket per key, over every
/// repetition of the sustained scenario.
///
/// Over-admission: in any window of `w` seconds a bucket of capacity `B`
/// refilled at `R`/s admits at most `B + R·w` of one key; the figure is the
/// largest excess over that, over keys, windows and repetitions, counting
/// only decisions whose request was sent and answered inside the window
/// (so it is ≤ 0 for an exact store). Under-admission: the share of what
/// one exact bucket per key admits of steady demand (`min(offered, B + R·T)`)
/// that the store refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    /// The bucket's capacity `B`.
    pub capacity: u32,
    /// Its refill `R`, tokens per second.
    pub refill_per_sec: f64,
    /// Requests sent, over every repetition.
    pub offered: u64,
    /// Of which admitted.
    pub admitted: u64,
    /// `Σ min(offered, B + R·T)` over keys and repetitions.
    pub ideal: f64,
    /// The largest excess in any 100 ms window (≤ 0: exact).
    pub over_admission_100ms: f64,
    /// The largest excess in any 1 s window (≤ 0: exact).
    pub over_admission_1s: f64,
    /// `1 − admitted / ideal` over every repetition, at least 0.
    pub under_admission: f64,
    /// Under-admission over the repetitions (min / median / max).
    #[serde(default)]
    pub under_admission_spread: Option<Spread>,
    /// The worst 100 ms window's admissions by replica (where the replicas
    /// named themselves), so a store whose replicas admit on their own shows
    /// which ones did.
    #[serde(default)]
    pub worst_window_by_replica: BTreeMap<String, u64>,
}

impl Admission {
    /// Whether no window admitted more than the bucket allows.
    pub fn exact(&self) -> bool {
        self.over_admission_100ms <= 0.0 && self.over_admission_1s <= 0.0
    }
}
