//! What a lab run does, as a value: [`LabPlan`], the deployments in run
//! order, each with the steps measured on it. Built from the report's
//! [`Settings::planned`] record keys (so the plan and the completeness
//! check agree by construction), printed by `rateguard-lab run --plan`,
//! and walked by [`crate::lab::run`].
//!
//! Order: pass 1 (every capacity search and the accuracy scenarios), then
//! pass 2 (throughput, whose offered loads come from pass 1's
//! capacities); within a pass, store RTTs in turn (the delay proxies are
//! set once per RTT), subjects in turn; one deployment per subject, RTT
//! and `on_error` mode (store-outage redeploys per mode, last).

use std::fmt;

use rateguard_contract::OnError;
use rateguard_lab_model::ScenarioId;
use rateguard_report::{RecordKey, Settings, Subject};

/// Which pass over the subjects a deployment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pass {
    /// capacity, and the accuracy scenarios.
    First,
    /// throughput, which needs every subject's capacity.
    Second,
}

impl Pass {
    /// Whether `scenario` runs in this pass.
    pub fn has(self, scenario: ScenarioId) -> bool {
        (scenario == ScenarioId::Throughput) == (self == Pass::Second)
    }
}

/// One step: every repetition of one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The record it produces.
    pub key: RecordKey,
    /// How many times it runs.
    pub repetitions: u32,
}

/// One subject deployed at one store RTT with one `on_error` mode, and the
/// steps measured on it before it is stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The pass.
    pub pass: Pass,
    /// What is deployed.
    pub subject: Subject,
    /// The delay proxies' round trip while it runs, ms.
    pub rtt_ms: f64,
    /// The replicas' `store.on_error`.
    pub on_error: OnError,
    /// In run order.
    pub steps: Vec<Step>,
}

/// A whole run: deployments in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct LabPlan {
    /// In run order.
    pub deployments: Vec<Deployment>,
}

impl LabPlan {
    /// The plan for `settings`: each planned record once, `repetitions`
    /// times (store-outage: `outage_repetitions`, at most `repetitions`).
    pub fn new(settings: &Settings, outage_repetitions: u32) -> Self {
        let keys = settings.planned();
        let mut deployments = Vec::new();
        for pass in [Pass::First, Pass::Second] {
            for (i, &rtt_ms) in settings.rtts_ms().iter().enumerate() {
                for subject in settings.subjects() {
                    // Subjects without a store server run once, at the first RTT.
                    let here = keys
                        .iter()
                        .filter(|k| k.subject == subject && pass.has(k.scenario))
                        .filter(|k| k.store_rtt_ms.map_or(i == 0, |r| r == rtt_ms));
                    for key in here {
                        let on_error = key.on_error.unwrap_or(OnError::Allow);
                        let repetitions = if key.scenario == ScenarioId::StoreOutage {
                            outage_repetitions.min(settings.repetitions)
                        } else {
                            settings.repetitions
                        };
                        let step = Step {
                            key: *key,
                            repetitions,
                        };
                        match deployments.last_mut() {
                            Some(Deployment {
                                pass: p,
                                subject: s,
                                rtt_ms: r,
                                on_error: m,
                                steps,
                            }) if (*p, *s, *r, *m) == (pass, subject, rtt_ms, on_error) => {
                                steps.push(step);
                            }
                            _ => deployments.push(Deployment {
                                pass,
                                subject,
                                rtt_ms,
                                on_error,
                                steps: vec![step],
                            }),
                        }
                    }
                }
            }
        }
        Self { deployments }
    }

    /// Every step, in run order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.deployments.iter().flat_map(|d| d.steps.iter())
    }

    /// Where `key` falls in the run (`usize::MAX` when not planned): the
    /// report lists records in this order.
    pub fn position(&self, key: &RecordKey) -> usize {
        self.steps()
            .position(|s| s.key == *key)
            .unwrap_or(usize::MAX)
    }
}

impl Deployment {
    /// `redis-lua at 1 ms RTT (on_error = deny)`.
    pub fn name(&self) -> String {
        let rtt = if self.subject.has_store_server() {
            format!(" at {} ms RTT", self.rtt_ms)
        } else {
            String::new()
        };
        let mode = if self.steps.iter().any(|s| s.key.on_error.is_some()) {
            format!(" (on_error = {})", self.on_error)
        } else {
            String::new()
        };
        format!("{}{rtt}{mode}", self.subject.name())
    }
}

impl Step {
    /// `capacity (zipf keys)`.
    pub fn label(&self) -> String {
        let keys = self
            .key
            .keys
            .map_or_else(String::new, |k| format!(" ({k} keys)"));
        format!("{}{keys}", self.key.scenario)
    }

    /// `capacity (zipf keys) ×3`.
    pub fn name(&self) -> String {
        format!("{} ×{}", self.label(), self.repetitions)
    }
}

impl fmt::Display for LabPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pass = None;
        for d in &self.deployments {
            if pass != Some(d.pass) {
                pass = Some(d.pass);
                match d.pass {
                    Pass::First => writeln!(f, "pass 1: capacity and the accuracy scenarios")?,
                    Pass::Second => {
                        writeln!(f, "pass 2: throughput at loads from pass 1's capacities")?
                    }
                }
            }
            let steps: Vec<String> = d.steps.iter().map(Step::name).collect();
            writeln!(f, "  {}: {}", d.name(), steps.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
