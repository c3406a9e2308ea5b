//! What a lab run does: [`LabOptions`] (the binary maps its flags onto it).

use std::path::PathBuf;

use rateguard_contract::{OnError, StoreKind};
use rateguard_lab_model::{Frontend, KeyMix};
use rateguard_loadtests::{Params, ScenarioId};

use crate::LabError;

/// One lab run's settings.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Gateway replicas behind nginx.
    pub replicas: u32,
    /// Mock backends behind the gateways (balanced by a second nginx).
    pub backends: u32,
    /// Stores to measure, in order.
    pub stores: Vec<StoreKind>,
    /// Reference frontends to measure after the stores.
    pub references: Vec<Frontend>,
    /// Also measure every store behind `rateguard rls` (capacity, over gRPC).
    pub rls: bool,
    /// Scenarios to run, in order.
    pub scenarios: Vec<ScenarioId>,
    /// Round trips added between the gateways and Redis, ms: the load
    /// scenarios run at each, the accuracy scenarios at the first.
    pub store_rtts_ms: Vec<f64>,
    /// Key mixes of the load scenarios.
    pub keys: Vec<KeyMix>,
    /// The gateways' `on_error` modes the store-outage scenario runs with.
    pub on_error: Vec<OnError>,
    /// store-outage: one of `on_error` per store, in turn (`--tiny`).
    pub one_mode_per_store: bool,
    /// throughput: offer fractions of the slowest capacity (when the
    /// capacity scenario runs) instead of `params.throughput_rates`.
    pub throughput_from_capacity: bool,
    /// Runs of every scenario per store (spread is over these).
    pub repetitions: u32,
    /// Runs of store-outage per store and mode (at most `repetitions`):
    /// three modes × three Redis stores is nine records.
    pub outage_repetitions: u32,
    /// Scenario knobs.
    pub params: Params,
    /// Directory holding `<run-id>/` and `latest`.
    pub results_dir: PathBuf,
    /// The run's id (default: UTC time, `YYYYMMDD-HHMMSS`).
    pub run_id: Option<String>,
    /// The `rateguard` binary to run as gateway replicas and mock backends.
    pub gateway_bin: PathBuf,
    /// The criterion summary to link from the report, if any.
    pub bench_summary: Option<String>,
    /// The gateways' `store.timeout_ms`: past it a decision fails open.
    pub store_timeout_ms: u64,
    /// Print the progress lines (the test keeps them quiet).
    pub verbose: bool,
}

impl LabOptions {
    /// Defaults for everything but where the gateway binary is.
    pub fn new(gateway_bin: PathBuf) -> Self {
        Self {
            replicas: 3,
            backends: 2,
            stores: StoreKind::ALL.to_vec(),
            references: Frontend::references().collect(),
            rls: true,
            scenarios: ScenarioId::ALL.to_vec(),
            store_rtts_ms: vec![0.0, 1.0],
            keys: vec![KeyMix::Hot, KeyMix::Zipf],
            on_error: OnError::ALL.to_vec(),
            one_mode_per_store: false,
            throughput_from_capacity: true,
            repetitions: 3,
            outage_repetitions: 2,
            params: Params::default(),
            results_dir: PathBuf::from("results"),
            run_id: None,
            gateway_bin,
            bench_summary: None,
            store_timeout_ms: 50,
            verbose: true,
        }
    }

    /// Rejects settings the lab cannot run.
    pub fn validate(&self) -> Result<(), LabError> {
        let bad = |m: String| Err(LabError::Options(m));
        if self.replicas == 0
            || self.backends == 0
            || self.repetitions == 0
            || self.outage_repetitions == 0
        {
            return bad("replicas, backends and (outage) repetitions must be at least 1".into());
        }
        if self.stores.is_empty() || self.scenarios.is_empty() {
            return bad("at least one store and one scenario are needed".into());
        }
        if self.params.throughput_rates.is_empty() {
            return bad("at least one throughput rate is needed".into());
        }
        if self.store_rtts_ms.is_empty() || self.keys.is_empty() || self.on_error.is_empty() {
            return bad("at least one store RTT, key mix and on_error mode are needed".into());
        }
        if let Some(bad_rtt) = self
            .store_rtts_ms
            .iter()
            .find(|r| !r.is_finite() || **r < 0.0)
        {
            return bad(format!(
                "--store-rtt-ms: {bad_rtt} is not a round trip in ms (≥ 0)"
            ));
        }
        Ok(())
    }

    /// Whether any RTT needs the delay proxies.
    pub fn needs_delay(&self) -> bool {
        self.store_rtts_ms.iter().any(|&r| r > 0.0)
    }

    /// Whether any selected store needs the standalone `redis-server`.
    pub fn needs_redis(&self) -> bool {
        self.stores.iter().any(|s| s.needs_redis())
    }

    /// Whether any selected store needs the Redis Cluster.
    pub fn needs_cluster(&self) -> bool {
        self.stores.iter().any(|s| s.needs_cluster())
    }
}
