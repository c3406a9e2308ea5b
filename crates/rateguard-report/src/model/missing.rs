//! Completeness: what a full run's `summary.json` must contain.

use rateguard_lab_model::ScenarioId;

use super::{Record, RecordKey, Summary};

impl Summary {
    /// Everything a complete run lacks, one line per problem (empty when
    /// the run is complete). The lab's test asserts this is empty.
    ///
    /// Required:
    /// - run facts: `run_id`, `created_at`, `git_commit`, `machine.cores`,
    ///   `machine.cpu_model`, `versions.rateguard`, `settings.repetitions ≥ 1`,
    ///   non-empty `settings.stores` and `settings.scenarios`;
    /// - a record for every key of [`Settings::planned`](super::Settings::planned),
    ///   each with `requests > 0` and `cpu_us_per_request` (but store-outage);
    /// - `burst`, `sustained`: `expected_allowed`, `accuracy_error_pct`,
    ///   `allowed_series`; `sustained` also `admission`;
    /// - `throughput`: `latency_curve`, `rate_levels`, `settings.repetitions`
    ///   repetitions and their `spread`;
    /// - `capacity`: `capacity_rps`, `loadgen_bound`, the repetitions and
    ///   their `spread`;
    /// - `distribution`: `per_replica` and `per_backend`;
    /// - `store-outage`: `outage` and `timeline` (and, for a record with
    ///   its `on_error`, `outage_window`);
    /// - every subject with a store server: `store_commands_per_request`,
    ///   except in `store-outage` (the store is dead for part of it).
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

        for key in self.settings.planned() {
            match self.find(&key) {
                None => out.push(format!("{}: no record", label(&key))),
                Some(r) => record_missing(r, self.settings.repetitions, &mut out),
            }
        }
        out
    }
}

/// `subject/scenario[/keys][/rtt ms]` or `subject/store-outage/mode`, for
/// messages (the workload only for the load scenarios, which have several
/// records per subject).
fn label(k: &RecordKey) -> String {
    let mut s = format!("{}/{}", k.subject.name(), k.scenario);
    if let Some(mode) = k.on_error {
        s.push_str(&format!("/{mode}"));
    }
    if !super::is_load_scenario(k.scenario) {
        return s;
    }
    if let Some(keys) = k.keys {
        s.push_str(&format!("/{keys}"));
    }
    if let Some(rtt) = k.store_rtt_ms {
        s.push_str(&format!("/{rtt} ms"));
    }
    s
}

/// Appends what `r` lacks for its scenario to `out`.
fn record_missing(r: &Record, repetitions: u32, out: &mut Vec<String>) {
    let name = label(&r.key());
    let mut need = |ok: bool, what: &str| {
        if !ok {
            out.push(format!("{name}: {what}"));
        }
    };
    need(r.requests > 0, "requests is 0");
    if r.scenario != ScenarioId::StoreOutage {
        need(
            r.cpu_us_per_request.is_some(),
            "cpu_us_per_request is absent",
        );
    }
    let enough_reps = r.repetitions.len() >= repetitions as usize;
    let reps_text = format!(
        "{} repetitions, settings ask for {repetitions}",
        r.repetitions.len()
    );
    match r.scenario {
        ScenarioId::Burst | ScenarioId::Sustained => {
            if r.scenario == ScenarioId::Sustained {
                need(r.admission.is_some(), "admission is absent");
            }
            need(r.expected_allowed.is_some(), "expected_allowed is absent");
            need(
                r.accuracy_error_pct.is_some(),
                "accuracy_error_pct is absent",
            );
            need(!r.allowed_series.is_empty(), "allowed_series is empty");
        }
        ScenarioId::Throughput => {
            need(!r.latency_curve.is_empty(), "latency_curve is empty");
            need(!r.rate_levels.is_empty(), "rate_levels is empty");
            need(enough_reps, &reps_text);
            need(r.spread.is_some(), "spread is absent");
        }
        ScenarioId::Capacity => {
            need(r.capacity_rps.is_some(), "capacity_rps is absent");
            need(r.loadgen_bound.is_some(), "loadgen_bound is absent");
            need(enough_reps, &reps_text);
            need(
                r.spread.is_some_and(|s| s.capacity_rps.is_some()),
                "capacity spread is absent",
            );
        }
        ScenarioId::Distribution => {
            need(!r.per_replica.is_empty(), "per_replica is empty");
            need(!r.per_backend.is_empty(), "per_backend is empty");
        }
        ScenarioId::StoreOutage => {
            need(r.outage.is_some(), "outage is absent");
            need(!r.timeline.is_empty(), "timeline is empty");
            if r.on_error.is_some() {
                need(r.outage_window.is_some(), "outage_window is absent");
            }
        }
    }
    if r.subject().has_store_server() && r.scenario != ScenarioId::StoreOutage {
        need(
            r.store_commands_per_request.is_some(),
            "store_commands_per_request is absent",
        );
    }
}
