//! Completeness: what a full run's `summary.json` must contain.

use rateguard_contract::ScenarioId;

use super::{applies, Record, Summary};

impl Summary {
    /// Everything a complete run lacks, one line per problem (empty when
    /// the run is complete). The lab's test asserts this is empty.
    ///
    /// Required:
    /// - run facts: `run_id`, `created_at`, `git_commit`, `machine.cores`,
    ///   `machine.cpu_model`, `versions.rateguard`, `settings.repetitions ≥ 1`,
    ///   non-empty `settings.stores` and `settings.scenarios`;
    /// - a record for every (store, scenario) of the settings for which
    ///   [`applies`] holds, each with `requests > 0`;
    /// - `burst`, `sustained`: `expected_allowed`, `accuracy_error_pct`,
    ///   `allowed_series`;
    /// - `throughput`: `latency_curve`, `settings.repetitions` repetitions
    ///   and their `spread`;
    /// - `distribution`: `per_replica` and `per_backend`;
    /// - `store-outage`: `outage` and `timeline`;
    /// - every store with a server (not `memory`): `store_commands_per_request`, except in
    ///   `store-outage` (the store is dead for part of it).
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                out.push(what.to_owned());
            }
        };
        need(!self.run_id.is_empty(), "run_id is empty");
        need(!self.created_at.is_empty(), "created_at is empty");
        need(!self.git_commit.is_empty(), "git_commit is empty");
        need(self.machine.cores > 0, "machine.cores is 0");
        need(
            !self.machine.cpu_model.is_empty(),
            "machine.cpu_model is empty",
        );
        need(
            !self.versions.rateguard.is_empty(),
            "versions.rateguard is empty",
        );
        need(self.settings.repetitions >= 1, "settings.repetitions is 0");
        need(!self.settings.stores.is_empty(), "settings.stores is empty");
        need(
            !self.settings.scenarios.is_empty(),
            "settings.scenarios is empty",
        );

        for &store in &self.settings.stores {
            for &scenario in &self.settings.scenarios {
                if !applies(store, scenario) {
                    continue;
                }
                match self.record(store, scenario) {
                    None => out.push(format!("{store}/{scenario}: no record")),
                    Some(r) => record_missing(r, self.settings.repetitions, &mut out),
                }
            }
        }
        out
    }
}

/// Appends what `r` lacks for its scenario to `out`.
fn record_missing(r: &Record, repetitions: u32, out: &mut Vec<String>) {
    let mut need = |ok: bool, what: &str| {
        if !ok {
            out.push(format!("{}/{}: {what}", r.store, r.scenario));
        }
    };
    need(r.requests > 0, "requests is 0");
    match r.scenario {
        ScenarioId::Burst | ScenarioId::Sustained => {
            need(r.expected_allowed.is_some(), "expected_allowed is absent");
            need(
                r.accuracy_error_pct.is_some(),
                "accuracy_error_pct is absent",
            );
            need(!r.allowed_series.is_empty(), "allowed_series is empty");
        }
        ScenarioId::Throughput => {
            need(!r.latency_curve.is_empty(), "latency_curve is empty");
            need(
                r.repetitions.len() >= repetitions as usize,
                &format!(
                    "{} repetitions, settings ask for {repetitions}",
                    r.repetitions.len()
                ),
            );
            need(r.spread.is_some(), "spread is absent");
        }
        ScenarioId::Distribution => {
            need(!r.per_replica.is_empty(), "per_replica is empty");
            need(!r.per_backend.is_empty(), "per_backend is empty");
        }
        ScenarioId::StoreOutage => {
            need(r.outage.is_some(), "outage is absent");
            need(!r.timeline.is_empty(), "timeline is empty");
        }
    }
    if r.store.needs_server() && r.scenario != ScenarioId::StoreOutage {
        need(
            r.store_commands_per_request.is_some(),
            "store_commands_per_request is absent",
        );
    }
}
