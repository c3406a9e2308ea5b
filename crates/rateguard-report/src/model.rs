//! The shape of `results/<run-id>/summary.json`: one [`Summary`] per lab run,
//! one [`Record`] per (subject, scenario, store RTT, key mix); see
//! [`Settings::planned`] for which a run has.
//!
//! Scenario-specific parts are `Option` or default to empty, so a record
//! only carries what its scenario measures; [`Summary::missing`] says which
//! parts a complete run must have.

use std::collections::BTreeMap;

use rateguard_contract::{OnError, StoreKind};
use rateguard_lab_model::{BackendKind, Frontend, KeyMix, ScenarioId};
use serde::{Deserialize, Serialize};

mod admission;
mod cpu;
mod missing;
mod outage;
mod plan;
mod stats;
mod verdict;
mod workload;

pub use admission::{Admission, AdmissionRep};
pub use cpu::CpuPerRequest;
pub use outage::{OutageRep, OutageWindow};
pub use plan::{is_load_scenario, runs_on, RecordKey, Subject};
pub use stats::{accuracy_error_pct, median, LatencyUs, RecordSpread, Spread, CURVE_PERCENTILES};
pub use verdict::{Cost, Verdict, MIN_REPETITIONS, SUSTAINED_TOLERANCE_PCT};
pub use workload::Workload;

/// One lab run: where it ran, with what, and every (store, scenario) result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run's id, also its directory name under `results/`.
    pub run_id: String,
    /// When the run started, RFC 3339 in UTC (e.g. `2026-11-28T13:00:00Z`).
    pub created_at: String,
    /// The machine the figures were measured on.
    pub machine: Machine,
    /// Versions of everything measured.
    pub versions: Versions,
    /// The git commit of the code under test (`git rev-parse HEAD`, with a
    /// `-dirty` suffix when the tree had changes).
    pub git_commit: String,
    /// The knobs the run used.
    pub settings: Settings,
    /// One record per (store, scenario).
    pub records: Vec<Record>,
    /// Path (relative to the run directory, or absolute) of the criterion
    /// benches' summary, linked from the report when present.
    #[serde(default)]
    pub bench_summary_path: Option<String>,
    /// Free-form remarks the lab wants the reader to see (e.g. a skipped store).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The machine a run was measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the run.
    pub cores: u32,
    /// CPU model name (from `/proc/cpuinfo`).
    pub cpu_model: String,
    /// Operating system and kernel (e.g. `Linux 6.1 (Debian 13)`).
    pub os: String,
    /// Total memory in GiB.
    pub memory_gib: f64,
}

/// Versions of the software a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The RateGuard version (crate version).
    pub rateguard: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `redis-server --version`.
    pub redis: String,
    /// `nginx -v`.
    pub nginx: String,
    /// Anything else worth stating (goose, kernel, ...), by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, String>,
}

/// The knobs a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Gateway replicas behind nginx.
    pub replicas: u32,
    /// Mock backends behind the gateways.
    pub backends: u32,
    /// How many times each repeated scenario ran (spread is over these).
    pub repetitions: u32,
    /// Duration of each timed scenario, in ms, by scenario id.
    #[serde(default)]
    pub durations_ms: BTreeMap<String, u64>,
    /// Stores this run measured (behind the gateways).
    pub stores: Vec<StoreKind>,
    /// Reference frontends this run measured (`none`, `nginx-limit-req`).
    #[serde(default)]
    pub references: Vec<Frontend>,
    /// Stores measured behind `rateguard rls` (the gRPC decision path),
    /// capacity only, at the first store RTT and key mix.
    #[serde(default)]
    pub rls_stores: Vec<StoreKind>,
    /// Round-trip times added between the gateways and Redis, ms; the load
    /// scenarios run at each, the accuracy scenarios at the first.
    #[serde(default)]
    pub store_rtts_ms: Vec<f64>,
    /// Key mixes the load scenarios ran with.
    #[serde(default)]
    pub keys: Vec<KeyMix>,
    /// The capacity scenario's p99 bound, ms.
    #[serde(default)]
    pub slo_p99_ms: Option<f64>,
    /// Scenarios this run measured.
    pub scenarios: Vec<ScenarioId>,
    /// The gateways' `store.on_error` modes the store-outage scenario runs
    /// with (empty: a run from before modes existed, `allow` only).
    #[serde(default)]
    pub on_error: Vec<OnError>,
    /// store-outage: each store with a server runs one of
    /// [`Settings::on_error`], in turn, instead of every one (`--tiny`).
    #[serde(default)]
    pub one_mode_per_store: bool,
    /// Other scenario parameters (burst capacity, arrival rates, users ...),
    /// by name, as the lab wants them stated in the report.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// The result of one scenario against one subject, at one store RTT and
/// key mix.
///
/// The first fields are the contract for `summary.json`; the rest
/// feed the report's charts and are empty where a scenario has no such data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What limited the requests (the gateways, or a reference frontend).
    #[serde(default = "Frontend::gateway")]
    pub frontend: Frontend,
    /// The gateways' store (`null` for a reference frontend).
    pub store: Option<StoreKind>,
    /// The scenario run.
    pub scenario: ScenarioId,
    /// The round trip added between the gateways and Redis, ms (`null`:
    /// no store server in the path).
    #[serde(default)]
    pub store_rtt_ms: Option<f64>,
    /// The key mix of a load scenario (`null`: the scenario's own clients).
    #[serde(default)]
    pub keys: Option<KeyMix>,
    /// store-outage: the gateways' `store.on_error` (`null`: another
    /// scenario, or a run from before modes existed, which used `allow`).
    #[serde(default)]
    pub on_error: Option<OnError>,
    /// What answered behind the limiter (`null`: nothing, as behind `rls`,
    /// or a run from before it was recorded).
    #[serde(default)]
    pub backend: Option<BackendKind>,
    /// Gateway replicas that served the scenario.
    pub replicas: u32,
    /// Requests sent (summed over repetitions when the figures below are).
    pub requests: u64,
    /// Responses that passed the limiter (2xx from the backend).
    pub allowed: u64,
    /// `429` responses.
    pub denied: u64,
    /// Anything else: transport errors, 5xx.
    pub errors: u64,
    /// Requests the gateways let through without a decision because the
    /// store failed or timed out (fail-open), from the replicas'
    /// `rateguard_decisions_total{decision="failed_open"}` deltas; they are
    /// inside `allowed`. `None` when not measured.
    #[serde(default)]
    pub failed_open: Option<u64>,
    /// Decisions the gateways made in their own memory while the store
    /// failed (`on_error = "local"`), from the same counters'
    /// `decision="local_fallback"`; inside `allowed` and `denied`.
    #[serde(default)]
    pub local_fallback: Option<u64>,
    /// What an ideal single token bucket would have allowed, where defined
    /// (burst: capacity; sustained: `C + r·T` per client, summed).
    pub expected_allowed: Option<u64>,
    /// `100 · (allowed − expected) / expected`, signed: positive means the
    /// limiter let too much through (see [`accuracy_error_pct`]).
    pub accuracy_error_pct: Option<f64>,
    /// Completed requests per second (the median over repetitions when repeated).
    pub throughput_rps: f64,
    /// Latency percentiles in µs (median over repetitions when repeated).
    pub latency_us: LatencyUs,
    /// CPU µs per request by role over the record's measured window (the
    /// whole scenario; throughput: the reference load; capacity: the
    /// highest rate that passed), median over repetitions. `None` for
    /// store-outage (its store process is replaced mid-run).
    #[serde(default)]
    pub cpu_us_per_request: Option<CpuPerRequest>,
    /// capacity: the highest open-model rate meeting the SLO, req/s
    /// (median over repetitions; spread in [`Record::spread`]).
    #[serde(default)]
    pub capacity_rps: Option<f64>,
    /// capacity: the load generator may have been the limit (it used more
    /// than [`LOADGEN_BOUND_CORES`] of a core, or fell behind the offered
    /// rate on its own) in some repetition: not a figure of the system.
    #[serde(default)]
    pub loadgen_bound: Option<bool>,
    /// The load generator's CPU over the measured window, in cores (median).
    #[serde(default)]
    pub loadgen_cpu_cores: Option<f64>,
    /// Redis commands per request from `INFO commandstats` deltas; `None`
    /// for the memory store.
    pub store_commands_per_request: Option<f64>,
    /// Calls per Redis command name over all repetitions (the same
    /// `INFO commandstats` deltas, summed over cluster nodes). Redis counts
    /// the commands a Lua script runs (`TIME`, `GET`, `SET`) as well as the
    /// `EVALSHA` that ran it, so round trips are the `evalsha` entry. Empty
    /// for the memory store and for `store-outage`.
    #[serde(default)]
    pub store_command_calls: BTreeMap<String, u64>,
    /// A store of several nodes (a cluster): the busiest node's share of
    /// the Lua script calls, over all repetitions (1: every decision on one
    /// shard, as with one hot key). `None` for one node or none.
    #[serde(default)]
    pub busiest_node_share: Option<f64>,
    /// sustained: over- and under-admission against the bucket's bounds.
    #[serde(default)]
    pub admission: Option<Admission>,
    /// Each repetition's own figures, in run order.
    #[serde(default)]
    pub repetitions: Vec<RepetitionStats>,
    /// min / median / max over [`Record::repetitions`]
    /// (see [`RecordSpread::of`]).
    #[serde(default)]
    pub spread: Option<RecordSpread>,
    /// `(percentile, µs)` pairs from p50 to p99.99 (see [`CURVE_PERCENTILES`]).
    #[serde(default)]
    pub latency_curve: Vec<(f64, u64)>,
    /// Cumulative allowed responses over time against the ideal bucket.
    #[serde(default)]
    pub allowed_series: Vec<SeriesPoint>,
    /// Responses per gateway replica (from `X-RateGuard-Replica`).
    #[serde(default)]
    pub per_replica: BTreeMap<String, u64>,
    /// Responses per backend (from the backend's JSON `backend` field).
    #[serde(default)]
    pub per_backend: BTreeMap<String, u64>,
    /// Outcomes per time slot (100 ms in the lab) for the outage chart.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    /// When the store was killed, restarted, and enforcing again (first
    /// repetition).
    #[serde(default)]
    pub outage: Option<Outage>,
    /// store-outage: what was admitted while the store was down against
    /// the ideal, and the recovery time, over every repetition.
    #[serde(default)]
    pub outage_window: Option<OutageWindow>,
    /// `throughput` only: each offered arrival rate of the open-model run
    /// (first repetition), lowest first.
    #[serde(default)]
    pub rate_levels: Vec<RateLevel>,
}

/// Above this share of one core, the load generator counts as a possible
/// bottleneck ([`Record::loadgen_bound`]).
pub const LOADGEN_BOUND_CORES: f64 = 0.8;

/// One fixed arrival rate of the `throughput` scenario, or one probe of
/// the `capacity` search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLevel {
    /// Offered requests per second.
    pub target_rps: f64,
    /// Successful (2xx) responses per second.
    pub achieved_rps: f64,
    /// Requests that failed (transport errors, timeouts, 5xx).
    pub errors: u64,
    /// Latency from each request's intended start, µs.
    pub latency_us: LatencyUs,
    /// Whether the level counts as sustained (capacity: met the SLO).
    pub sustained: bool,
    /// CPU µs per request by role at this level.
    #[serde(default)]
    pub cpu_us_per_request: Option<CpuPerRequest>,
    /// The load generator's CPU at this level, in cores.
    #[serde(default)]
    pub loadgen_cpu_cores: Option<f64>,
}

/// One repetition's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepetitionStats {
    /// Completed requests per second in this repetition.
    pub throughput_rps: f64,
    /// Latency percentiles in µs in this repetition.
    pub latency_us: LatencyUs,
    /// Requests sent in this repetition.
    #[serde(default)]
    pub requests: u64,
    /// Requests allowed in this repetition.
    #[serde(default)]
    pub allowed: u64,
    /// CPU µs per request by role in this repetition's measured window.
    #[serde(default)]
    pub cpu_us_per_request: Option<CpuPerRequest>,
    /// capacity: this repetition's result, req/s.
    #[serde(default)]
    pub capacity_rps: Option<f64>,
    /// capacity: whether the generator may have been the limit here.
    #[serde(default)]
    pub loadgen_bound: bool,
    /// The generator's CPU in the measured window, in cores.
    #[serde(default)]
    pub loadgen_cpu_cores: Option<f64>,
    /// store-outage: this repetition's outage window.
    #[serde(default)]
    pub outage: Option<OutageRep>,
    /// sustained: this repetition's over- and under-admission.
    #[serde(default)]
    pub admission: Option<AdmissionRep>,
}

/// A point of the cumulative allowed-over-time series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Time since the scenario started, ms.
    pub t_ms: u64,
    /// Allowed responses so far.
    pub allowed: u64,
    /// What an ideal token bucket would have allowed so far.
    pub ideal: u64,
}

/// Outcomes in one time slot of the outage timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Start of the slot since the scenario started, ms.
    pub t_ms: u64,
    /// 2xx responses in the slot.
    pub ok: u64,
    /// 429 responses in the slot.
    pub denied: u64,
    /// Errors (5xx, transport) in the slot.
    pub errors: u64,
    /// p99 latency of the slot, µs.
    pub p99_us: u64,
}

/// Markers of the store-outage scenario, ms since the scenario started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// When the store process was killed.
    pub killed_at_ms: u64,
    /// When it was started again.
    pub restarted_at_ms: u64,
    /// When the store decided again: under `allow` and `deny`, the first
    /// 429 sent after the restart (only the store denies); under `local`
    /// (which also denies, locally), when the replicas' `local_fallback`
    /// counters stopped growing ([`Outage::fallback_ended_at_ms`]).
    /// `None` if that never happened within the run.
    pub enforcement_resumed_at_ms: Option<u64>,
    /// When the replicas last decided without the store (`failed_open`,
    /// `failed_closed` or `local_fallback` counters, polled every 50 ms
    /// after the restart: the end of the first poll that saw their final
    /// value); `None` when not polled.
    #[serde(default)]
    pub fallback_ended_at_ms: Option<u64>,
}

impl Summary {
    /// The first record of `scenario` on the gateways with `store` (for the
    /// accuracy scenarios, its only one), if the run has one.
    pub fn record(&self, store: StoreKind, scenario: ScenarioId) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.subject() == Subject::gateway(store) && r.scenario == scenario)
    }

    /// The record with identity `key`, if the run has one.
    pub fn find(&self, key: &RecordKey) -> Option<&Record> {
        self.records.iter().find(|r| r.key() == *key)
    }

    /// The first record of `scenario` on `subject` (for the accuracy
    /// scenarios, its only one).
    pub fn first(&self, subject: Subject, scenario: ScenarioId) -> Option<&Record> {
        self.records_of(subject, scenario).next()
    }

    /// Every record of `scenario` on `subject`, in run order.
    pub fn records_of(
        &self,
        subject: Subject,
        scenario: ScenarioId,
    ) -> impl Iterator<Item = &Record> + '_ {
        self.records
            .iter()
            .filter(move |r| r.subject() == subject && r.scenario == scenario)
    }

    /// The stores the run mentions (in its settings or its records), in
    /// [`StoreKind::ALL`] order.
    pub fn store_order(&self) -> Vec<StoreKind> {
        StoreKind::ALL
            .into_iter()
            .filter(|k| {
                self.settings.stores.contains(k) || self.records.iter().any(|r| r.store == Some(*k))
            })
            .collect()
    }

    /// Every subject the run mentions: stores in [`StoreKind::ALL`] order,
    /// then the reference frontends.
    pub fn subject_order(&self) -> Vec<Subject> {
        let refs = Frontend::references().filter(|f| {
            self.settings.references.contains(f) || self.records.iter().any(|r| r.frontend == *f)
        });
        self.store_order()
            .into_iter()
            .map(Subject::gateway)
            .chain(refs.map(Subject::reference))
            .collect()
    }
}

impl Record {
    /// A record of `scenario` on `subject` with every figure empty (zero,
    /// `None`, no points), to be filled in.
    pub fn new(subject: Subject, scenario: ScenarioId) -> Self {
        Self {
            frontend: subject.frontend,
            store: subject.store,
            scenario,
            store_rtt_ms: Default::default(),
            keys: Default::default(),
            on_error: Default::default(),
            backend: Default::default(),
            busiest_node_share: Default::default(),
            admission: Default::default(),
            outage_window: Default::default(),
            cpu_us_per_request: Default::default(),
            capacity_rps: Default::default(),
            loadgen_bound: Default::default(),
            loadgen_cpu_cores: Default::default(),
            replicas: Default::default(),
            requests: Default::default(),
            allowed: Default::default(),
            denied: Default::default(),
            errors: Default::default(),
            failed_open: Default::default(),
            local_fallback: Default::default(),
            expected_allowed: Default::default(),
            accuracy_error_pct: Default::default(),
            throughput_rps: Default::default(),
            latency_us: Default::default(),
            store_commands_per_request: Default::default(),
            store_command_calls: Default::default(),
            repetitions: Default::default(),
            spread: Default::default(),
            latency_curve: Default::default(),
            allowed_series: Default::default(),
            per_replica: Default::default(),
            per_backend: Default::default(),
            timeline: Default::default(),
            outage: Default::default(),
            rate_levels: Default::default(),
        }
    }

    /// Fills [`Record::spread`] from [`Record::repetitions`] (`None` when
    /// there are no repetitions).
    pub fn compute_spread(&mut self) {
        self.spread = RecordSpread::of(&self.repetitions);
    }

    /// Lua script calls (`evalsha` + `eval` in [`Record::store_command_calls`])
    /// per request. Each call is one trip to Redis for a store that sends one
    /// call per decision; a store that merges same-key requests into one call
    /// shows fewer than 1. `None` when no commands were counted (the memory
    /// store, `store-outage`) or there were no requests.
    pub fn script_calls_per_request(&self) -> Option<f64> {
        if self.store_command_calls.is_empty() || self.requests == 0 {
            return None;
        }
        let calls: u64 = ["evalsha", "eval"]
            .iter()
            .filter_map(|c| self.store_command_calls.get(*c))
            .sum();
        Some(calls as f64 / self.requests as f64)
    }
}
