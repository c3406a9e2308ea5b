//! What the lab reads back from a replica's `/metrics`: the
//! [`Family::Decisions`] counters by their `decision` label, typed by the
//! contract's [`Decision`] (no metric name or label value is spelled
//! here).

use rateguard_contract::metrics::{Decision, Family};

use crate::LabError;

/// `rateguard_decisions_total` by `decision`, summed over policies and
/// limits (and over replicas with [`add`](Self::add)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionCounts([u64; Decision::ALL.len()]);

impl DecisionCounts {
    /// The decisions made without the store: failed open (`on_error =
    /// "allow"`), failed closed (`"deny"`) and decided locally (`"local"`).
    pub const FALLBACKS: [Decision; 3] = [
        Decision::FailedOpen,
        Decision::FailedClosed,
        Decision::LocalFallback,
    ];

    /// Sums the [`Family::Decisions`] samples of a `/metrics` text by
    /// their `decision` label; a label value the contract does not know is
    /// an error (the gateway and the lab disagree).
    pub fn parse(metrics: &str) -> Result<Self, LabError> {
        let lines = metrics.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines)
            .map_err(|e| LabError::Gateway(format!("unreadable /metrics: {e}")))?;
        let mut out = Self::default();
        for sample in scrape.samples {
            if sample.metric != Family::Decisions.sample() {
                continue;
            }
            // OpenMetrics names the family without `_total`, so the parser
            // may not know the sample is a counter.
            let (prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Untyped(n)) =
                sample.value
            else {
                continue;
            };
            let Some(label) = sample.labels.get("decision") else {
                continue;
            };
            let decision = Decision::ALL
                .into_iter()
                .find(|d| d.as_str() == label)
                .ok_or_else(|| {
                    LabError::Gateway(format!(
                        "{} has an unknown decision {label:?}",
                        Family::Decisions.sample()
                    ))
                })?;
            out.0[decision.index()] += n as u64;
        }
        Ok(out)
    }

    /// The count of `decision`.
    pub fn get(&self, decision: Decision) -> u64 {
        self.0[decision.index()]
    }

    /// Adds another replica's counts.
    pub fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// What was counted after `before` (a counter that went down, after a
    /// restart, gives 0).
    pub fn since(&self, before: &Self) -> Self {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(before.0) {
            *a = a.saturating_sub(b);
        }
        out
    }

    /// The sum of the [`FALLBACKS`](Self::FALLBACKS).
    pub fn fallbacks(&self) -> u64 {
        Self::FALLBACKS.into_iter().map(|d| self.get(d)).sum()
    }
}

#[cfg(test)]
mod tests {
    use rateguard_contract::metrics::{Decision, Family};

    use super::DecisionCounts;

    /// A `/metrics` text as prometheus-client writes it (OpenMetrics),
    /// built from the contract's names.
    fn text(rows: &[(&str, Decision, u64)]) -> String {
        let name = Family::Decisions.name();
        let mut out = format!("# HELP {name} Rate-limit decisions.\n# TYPE {name} counter\n");
        for (policy, decision, n) in rows {
            out.push_str(&format!(
                "{}{{policy=\"{policy}\",decision=\"{decision}\"}} {n}\n",
                Family::Decisions.sample()
            ));
        }
        out.push_str(&format!("{}_count 9\n# EOF\n", Family::StoreLatency.name()));
        out
    }

    #[test]
    fn sums_decisions_over_policies() {
        let d = DecisionCounts::parse(&text(&[
            ("a", Decision::Allowed, 5),
            ("b", Decision::Allowed, 2),
            ("b", Decision::FailedOpen, 3),
            ("b", Decision::LocalFallback, 4),
        ]))
        .unwrap();
        assert_eq!(d.get(Decision::Allowed), 7);
        assert_eq!(d.get(Decision::FailedOpen), 3);
        assert_eq!(d.get(Decision::Denied), 0);
        assert_eq!(d.fallbacks(), 7);
    }

    #[test]
    fn deltas_and_sums() {
        let before = DecisionCounts::parse(&text(&[("a", Decision::FailedClosed, 2)])).unwrap();
        let mut after = DecisionCounts::parse(&text(&[("a", Decision::FailedClosed, 5)])).unwrap();
        after.add(&before);
        assert_eq!(after.since(&before).get(Decision::FailedClosed), 5);
        assert_eq!(before.since(&after).get(Decision::FailedClosed), 0);
    }

    #[test]
    fn an_unknown_decision_is_an_error() {
        let name = Family::Decisions.sample();
        let text = format!("{name}{{policy=\"a\",decision=\"maybe\"}} 1\n");
        assert!(DecisionCounts::parse(&text).is_err());
    }
}
