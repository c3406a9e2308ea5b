//! The verdict per workload: which store to run, decided only by costs
//! this run separates ([`Summary::verdicts`]).
//!
//! The rule: among the stores that held the limit exactly
//! ([`Summary::held_exactly`]), rank by each [`Cost`] in turn: Redis CPU
//! per decision at capacity (the shared, scarce resource), then gateway CPU
//! per request at capacity, then p99 at equal offered load (throughput's
//! middle load). A cost ranks only over ≥ [`MIN_REPETITIONS`] repetitions
//! and only where spreads (min – max over the repetitions) do not overlap:
//! the cheapest store wins on a cost when its worst repetition beats every
//! rival's best; rivals it beats so drop out, the ones that overlap go on
//! to the next cost. Whoever is left after the last cost is a stated tie.
//! Capacity is evidence, not a key: on a shared machine it is bounded by
//! every process at once.

use std::fmt::Write as _;

use rateguard_contract::StoreKind;
use rateguard_lab_model::{Role, ScenarioId};

use super::{Spread, Subject, Summary, Workload};

/// A cost ranks stores only over at least this many repetitions.
pub const MIN_REPETITIONS: usize = 3;

/// Sustained accuracy within this many percent counts as holding the limit
/// (arrival timing blurs the ideal); the burst must be exact.
pub const SUSTAINED_TOLERANCE_PCT: f64 = 5.0;

/// What the rule ranks by, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Redis CPU µs per decision at the capacity rate.
    RedisCpu,
    /// Gateway CPU µs per request at the capacity rate.
    GatewayCpu,
    /// p99 latency at throughput's middle load (the same for every store).
    P99,
}

impl Cost {
    /// In the rule's order.
    pub const ALL: [Cost; 3] = [Cost::RedisCpu, Cost::GatewayCpu, Cost::P99];

    /// How the report names it.
    pub fn what(self) -> &'static str {
        match self {
            Self::RedisCpu => "Redis CPU per decision",
            Self::GatewayCpu => "gateway CPU per request",
            Self::P99 => "p99 at equal offered load",
        }
    }

    /// `store`'s figure at `w` (µs) over its repetitions, with their count.
    pub fn of(self, s: &Summary, store: StoreKind, w: Workload) -> Option<(Spread, usize)> {
        let subject = Subject::gateway(store);
        match self {
            Self::RedisCpu => s
                .load_record(subject, ScenarioId::Capacity, w)?
                .role_spread(Role::Store),
            Self::GatewayCpu => s
                .load_record(subject, ScenarioId::Capacity, w)?
                .role_spread(Role::Gateway),
            Self::P99 => s
                .load_record(subject, ScenarioId::Throughput, w)?
                .p99_spread(),
        }
    }
}

/// One workload's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The workload.
    pub workload: Workload,
    /// The store to run, when one is separable.
    pub store: Option<StoreKind>,
    /// Otherwise the stores tied for it (empty: no candidate at all).
    pub tied: Vec<StoreKind>,
    /// Why, in a few words of plain text.
    pub reason: String,
    /// The figures behind it, each a clause of plain text.
    pub details: Vec<String>,
}

impl Verdict {
    /// `hot · 0 ms: redis-pipelined: 46 % less Redis CPU …` or
    /// `zipf · 0 ms: any of redis-lua, redis-pipelined: …`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: {}: {}",
            self.workload.label(),
            self.choice(),
            self.reason
        );
        for d in &self.details {
            let _ = write!(line, "; {d}");
        }
        line
    }

    /// `redis-pipelined`, `any of a, b`, or `no store`.
    pub fn choice(&self) -> String {
        match (self.store, self.tied.as_slice()) {
            (Some(store), _) => store.to_string(),
            (None, []) => "no store".to_owned(),
            (None, [only]) => only.to_string(),
            (None, tied) => format!("any of {}", names(tied)),
        }
    }
}

impl Summary {
    /// Whether `subject` held the limit exactly in this run: its burst
    /// admitted exactly the ideal bucket's count, its sustained run (if any)
    /// came within [`SUSTAINED_TOLERANCE_PCT`] of the ideal, and no 100 ms
    /// or 1 s window admitted more than `B + R·w` (when measured). `None`
    /// when neither burst nor sustained ran.
    pub fn held_exactly(&self, subject: Subject) -> Option<bool> {
        let burst = self.first(subject, ScenarioId::Burst);
        let sustained = self.first(subject, ScenarioId::Sustained);
        if burst.is_none() && sustained.is_none() {
            return None;
        }
        let burst_ok = burst.is_none_or(|b| b.expected_allowed == Some(b.allowed));
        let sustained_ok = sustained.is_none_or(|r| {
            r.accuracy_error_pct
                .is_none_or(|e| e.abs() <= SUSTAINED_TOLERANCE_PCT)
                && r.admission.as_ref().is_none_or(|a| a.exact())
        });
        Some(burst_ok && sustained_ok)
    }

    /// The gateways' stores that held the limit exactly, in store order.
    pub fn candidates(&self) -> Vec<StoreKind> {
        self.store_order()
            .into_iter()
            .filter(|&k| self.held_exactly(Subject::gateway(k)) == Some(true))
            .collect()
    }

    /// One verdict per workload, by the rule of this module.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let candidates = self.candidates();
        self.workloads()
            .into_iter()
            .map(|w| decide(self, &candidates, w))
            .collect()
    }
}

/// A candidate's figure on one cost.
#[derive(Debug, Clone, Copy)]
struct Figure {
    store: StoreKind,
    spread: Spread,
}

fn decide(s: &Summary, candidates: &[StoreKind], w: Workload) -> Verdict {
    let verdict = |store, tied: Vec<StoreKind>, reason: String, details: Vec<String>| Verdict {
        workload: w,
        store,
        tied,
        reason,
        details,
    };
    match candidates {
        [] => {
            return verdict(
                None,
                Vec::new(),
                "no store held the limit exactly in this run".to_owned(),
                Vec::new(),
            )
        }
        [only] => {
            return verdict(
                Some(*only),
                Vec::new(),
                "the only store that held the limit exactly".to_owned(),
                Vec::new(),
            )
        }
        _ => {}
    }
    let mut group: Vec<StoreKind> = candidates.to_vec();
    let mut said: Vec<String> = Vec::new();
    let mut usable = 0;
    for cost in Cost::ALL {
        let figures: Option<Vec<(Figure, usize)>> = group
            .iter()
            .map(|&store| {
                let (spread, n) = cost.of(s, store, w)?;
                Some((Figure { store, spread }, n))
            })
            .collect();
        let Some(figures) = figures else {
            said.push(format!("{} not measured for every store", cost.what()));
            continue;
        };
        let fewest = figures.iter().map(|f| f.1).min().unwrap_or(0);
        if fewest < MIN_REPETITIONS {
            said.push(format!(
                "{} over {fewest} repetition(s), the rule needs {MIN_REPETITIONS}",
                cost.what()
            ));
            continue;
        }
        usable += 1;
        let mut figures: Vec<Figure> = figures.into_iter().map(|f| f.0).collect();
        figures.sort_by(|a, b| a.spread.median.total_cmp(&b.spread.median));
        let best = figures[0];
        let (beaten, overlapping): (Vec<Figure>, Vec<Figure>) = figures[1..]
            .iter()
            .partition(|f| f.spread.min > best.spread.max);
        if overlapping.is_empty() {
            let next = beaten[0];
            let less =
                100.0 * (1.0 - best.spread.median / next.spread.median.max(f64::MIN_POSITIVE));
            let reason = format!(
                "{less:.0} % less {} than {}, beyond the spread; held the limit exactly",
                cost.what(),
                next.store,
            );
            let mut details = vec![format!(
                "{} {} against {}",
                cost.what(),
                us(best.spread),
                us(next.spread)
            )];
            details.extend(said);
            return verdict(Some(best.store), Vec::new(), reason, details);
        }
        let mut tie = vec![best];
        tie.extend(overlapping);
        let parts: Vec<String> = tie
            .iter()
            .map(|f| format!("{} {}", f.store, us(f.spread)))
            .collect();
        let mut line = format!("{} overlaps ({})", cost.what(), parts.join(", "));
        if !beaten.is_empty() {
            let out: Vec<String> = beaten
                .iter()
                .map(|f| format!("{} {}", f.store, us(f.spread)))
                .collect();
            let _ = write!(line, ", higher beyond the spread: {}", out.join(", "));
        }
        said.push(line);
        group = tie.iter().map(|f| f.store).collect();
    }
    let reason = if usable == 0 {
        "not ranked".to_owned()
    } else {
        "their costs overlap here".to_owned()
    };
    verdict(None, group, reason, said)
}

/// `7.7 µs (7.2 – 8.1)`; whole µs from 100 µs up.
fn us(s: Spread) -> String {
    let d = if s.max >= 100.0 { 0 } else { 1 };
    format!("{:.d$} µs ({:.d$} – {:.d$})", s.median, s.min, s.max)
}

fn names(stores: &[StoreKind]) -> String {
    stores
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
