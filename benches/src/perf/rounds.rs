//! The alternating rounds: every case (of each build) once per round, each
//! round starting one later, so none always runs first; then each one's
//! spread, and its ratios to nginx and to its reference.

use std::path::Path;
use std::time::Duration;

use rateguard_report::Spread;
use rateguard_testkit::procstat::{self, ProcSample};
use serde::{Deserialize, Serialize};

use super::case::{Case, Subject};
use super::topology::Topology;
use super::wrk::{self, Load, WrkFigures};
use super::PerfError;

/// What a run measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The cases, in their first round's order.
    pub cases: Vec<Case>,
    /// Rounds over every case.
    pub rounds: u32,
    /// `wrk`'s load in each measured run.
    pub load: Load,
    /// An unmeasured `wrk` run per case before the rounds (fills pools).
    pub warmup: Duration,
}

/// One case in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The case (and build) measured.
    #[serde(flatten)]
    pub subject: Subject,
    /// 1-based round.
    pub round: u32,
    /// What `wrk` saw.
    pub wrk: WrkFigures,
    /// CPU time of the target's processes per completed request, µs.
    pub cpu_us_per_req: f64,
    /// CPU time of the store's processes per request, µs (Redis cases).
    pub store_cpu_us_per_req: Option<f64>,
    /// Context switches of the target's threads per request.
    pub context_switches_per_req: f64,
    /// The voluntary ones per request.
    pub voluntary_switches_per_req: f64,
    /// The target's resident memory right after the run, KiB.
    #[serde(default)]
    pub rss_kib: u64,
}

/// Runs `plan` on `topology` with the `wrk` script at `script`, calling
/// `progress` after each measured run.
pub fn run(
    topology: &Topology,
    script: &Path,
    plan: &Plan,
    mut progress: impl FnMut(&Run),
) -> Result<Vec<Run>, PerfError> {
    let addr = |subject: Subject| {
        topology
            .addr(subject)
            .ok_or_else(|| PerfError::Options(format!("{subject} is not running")))
    };
    let warmup = Load {
        duration: plan.warmup,
        ..plan.load
    };
    let subjects = topology.subjects(&plan.cases);
    for &subject in &subjects {
        wrk::run(script, addr(subject)?, warmup, subject.case.keys)?;
    }
    let mut runs = Vec::new();
    for round in 1..=plan.rounds {
        let mut order = subjects.clone();
        let start = (round as usize - 1) % order.len().max(1);
        order.rotate_left(start);
        for subject in order {
            let case = subject.case;
            let (target, store) = (topology.target_pids(subject), topology.store_pids(case));
            let before = (ProcSample::of(&target), ProcSample::of(&store));
            let figures = wrk::run(script, addr(subject)?, plan.load, case.keys)?;
            let used = before.0.until(ProcSample::of(&target));
            let store_used = before.1.until(ProcSample::of(&store));
            let per_req = |x: f64| x / figures.requests.max(1) as f64;
            let run = Run {
                subject,
                round,
                cpu_us_per_req: per_req(used.cpu_us as f64),
                store_cpu_us_per_req: (!store.is_empty())
                    .then(|| per_req(store_used.cpu_us as f64)),
                context_switches_per_req: per_req(used.context_switches() as f64),
                voluntary_switches_per_req: per_req(used.voluntary_switches as f64),
                rss_kib: procstat::rss_kib(&target),
                wrk: figures,
            };
            progress(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

/// One case over its rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseSummary {
    /// The case (and build).
    #[serde(flatten)]
    pub subject: Subject,
    /// Requests per second.
    pub rps: Spread,
    /// Median `rps` over nginx `proxy_pass`'s median, when it ran.
    pub vs_nginx: Option<f64>,
    /// The reference proxy this case is read against (gateway cases).
    pub reference: Option<Case>,
    /// Median `rps` over the reference's median, when it ran.
    pub vs_reference: Option<f64>,
    /// Median latency, µs.
    pub p50_us: Spread,
    /// 99th percentile latency, µs.
    pub p99_us: Spread,
    /// Median p99 over nginx `proxy_pass`'s median p99.
    pub p99_vs_nginx: Option<f64>,
    /// Target CPU µs per request.
    pub cpu_us_per_req: Spread,
    /// Store CPU µs per request (Redis cases).
    pub store_cpu_us_per_req: Option<Spread>,
    /// Target context switches per request.
    pub context_switches_per_req: Spread,
    /// The voluntary ones.
    pub voluntary_switches_per_req: Spread,
    /// Responses of status 400 or more, all rounds.
    pub status_over_399: u64,
    /// Socket errors and timeouts, all rounds.
    pub socket_errors: u64,
    /// Responses in all rounds.
    pub requests: u64,
    /// For an allow case: every response was below 400 and no socket failed.
    pub all_allowed: bool,
}

/// Each subject's summary, in the order of the runs' first round.
pub fn summarize(runs: &[Run]) -> Vec<CaseSummary> {
    let spread = |subject: Subject, f: &dyn Fn(&Run) -> f64| {
        let values: Vec<f64> = runs
            .iter()
            .filter(|r| r.subject == subject)
            .map(f)
            .collect();
        Spread::of(&values)
    };
    let median_rps =
        |case: Case| spread(Subject::current(case), &|r| r.wrk.rps()).map(|s| s.median);
    let nginx = Subject::current(Case::NGINX_PROXY);
    let nginx_rps = median_rps(Case::NGINX_PROXY);
    let nginx_p99 = spread(nginx, &|r| r.wrk.p99_us as f64).map(|s| s.median);
    let mut subjects: Vec<Subject> = Vec::new();
    for run in runs.iter().filter(|r| r.round == 1) {
        subjects.push(run.subject);
    }
    subjects
        .into_iter()
        .map(|subject| {
            let mine: Vec<&Run> = runs.iter().filter(|r| r.subject == subject).collect();
            let sum = |f: fn(&WrkFigures) -> u64| mine.iter().map(|r| f(&r.wrk)).sum::<u64>();
            let of = |f: &dyn Fn(&Run) -> f64| spread(subject, f).unwrap_or_default();
            let rps = of(&|r| r.wrk.rps());
            let p99_us = of(&|r| r.wrk.p99_us as f64);
            let (status_over_399, socket_errors) =
                (sum(|w| w.status_over_399), sum(WrkFigures::socket_errors));
            let reference = subject.case.reference();
            CaseSummary {
                subject,
                rps,
                vs_nginx: nginx_rps.map(|n| rps.median / n),
                reference,
                vs_reference: reference.and_then(median_rps).map(|r| rps.median / r),
                p50_us: of(&|r| r.wrk.p50_us as f64),
                p99_us,
                p99_vs_nginx: nginx_p99.map(|n| p99_us.median / n),
                cpu_us_per_req: of(&|r| r.cpu_us_per_req),
                store_cpu_us_per_req: mine
                    .iter()
                    .any(|r| r.store_cpu_us_per_req.is_some())
                    .then(|| of(&|r| r.store_cpu_us_per_req.unwrap_or(f64::NAN))),
                context_switches_per_req: of(&|r| r.context_switches_per_req),
                voluntary_switches_per_req: of(&|r| r.voluntary_switches_per_req),
                status_over_399,
                socket_errors,
                requests: sum(|w| w.requests),
                all_allowed: status_over_399 == 0 && socket_errors == 0,
            }
        })
        .collect()
}
