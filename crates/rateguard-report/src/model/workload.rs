//! [`Workload`]: a key mix at a store RTT, the unit the report decides per,
//! and the records that stand for a subject there.

use rateguard_lab_model::{KeyMix, Role, ScenarioId};

use super::{Record, Spread, Subject, Summary};

/// A key mix at a store RTT: one verdict, one row of the sizing table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    /// The key mix.
    pub keys: KeyMix,
    /// The store RTT, ms.
    pub rtt_ms: f64,
    /// Whether this is the run's first RTT.
    pub first_rtt: bool,
}

impl Workload {
    /// `zipf · 1 ms`.
    pub fn label(&self) -> String {
        format!("{} · {} ms", self.keys, self.rtt_ms)
    }
}

impl Summary {
    /// Every workload of the run: key mixes × RTTs.
    pub fn workloads(&self) -> Vec<Workload> {
        let rtts = self.settings.rtts_ms();
        self.settings
            .key_mixes()
            .into_iter()
            .flat_map(|keys| {
                rtts.iter().enumerate().map(move |(i, &rtt_ms)| Workload {
                    keys,
                    rtt_ms,
                    first_rtt: i == 0,
                })
            })
            .collect()
    }

    /// `subject`'s record of load `scenario` at `w` (a subject without a
    /// store server has one record per key mix, whatever the RTT).
    pub fn load_record(
        &self,
        subject: Subject,
        scenario: ScenarioId,
        w: Workload,
    ) -> Option<&Record> {
        self.records_of(subject, scenario)
            .find(|r| r.keys == Some(w.keys) && r.store_rtt_ms.is_none_or(|rtt| rtt == w.rtt_ms))
    }
}

impl Record {
    /// `role`'s CPU µs per request over the repetitions that measured it
    /// (min / median / max), with how many did.
    pub fn role_spread(&self, role: Role) -> Option<(Spread, usize)> {
        let v: Vec<f64> = self
            .repetitions
            .iter()
            .filter_map(|r| r.cpu_us_per_request.as_ref())
            .map(|c| c.get(role))
            .collect();
        Spread::of(&v).map(|s| (s, v.len()))
    }

    /// p99 latency over the repetitions, µs (min / median / max), with how
    /// many there were.
    pub fn p99_spread(&self) -> Option<(Spread, usize)> {
        let v: Vec<f64> = self
            .repetitions
            .iter()
            .map(|r| r.latency_us.p99 as f64)
            .collect();
        Spread::of(&v).map(|s| (s, v.len()))
    }
}
