//! The open-model load scenarios, once: `throughput` (fixed rates, CPU and
//! latency at each) and `capacity` (a [`CapacitySearch`] whose probes are
//! runs at one rate each, judged against the SLO; a failing rate is probed
//! twice and fails only if both runs do).

use std::sync::Arc;
use std::time::Duration;

use rateguard_lab_model::{Role, ScenarioId};
use rateguard_loadtests::{open_model, CapacitySearch, KeyPlan, OpenRun, Params, Recorder};
use rateguard_report::LOADGEN_BOUND_CORES;

use crate::runner::{close_counters, merge, open_counters, CapacityResult, Level, RepResult, Site};
use crate::topology::Topology;
use crate::LabError;

/// Pause after a probe that failed, so the backlog it left drains.
const SETTLE_AFTER_FAIL: Duration = Duration::from_millis(300);
/// Pause between probes otherwise.
const SETTLE: Duration = Duration::from_millis(100);
/// A failing probe whose requests the generator itself sent late this
/// often says the generator, not the system, fell behind.
const LATE_SEND_BOUND: f64 = 0.01;

/// Runs `scenario`'s plan at `rate` once on `site`, measuring CPU.
async fn level(
    site: Site<'_>,
    params: &Params,
    scenario: ScenarioId,
    keys: &Arc<KeyPlan>,
    rate: u32,
) -> Result<(Level, OpenRun), LabError> {
    let host = site.deployment.url();
    let mut plan = match scenario {
        ScenarioId::Capacity => params.capacity_plan(&host, keys.clone(), rate),
        _ => params.throughput_plan(&host, keys.clone(), rate),
    };
    plan.rls = site.deployment.rls_target().cloned();
    let probe = site.deployment.cpu_probe();
    let before = probe.snapshot();
    let run = open_model::run(&plan, Arc::new(Recorder::new())).await?;
    let cpu = probe.snapshot().since(&before);
    let passed = (scenario == ScenarioId::Capacity).then(|| run.meets(&params.slo));
    let level = Level {
        rate_per_sec: rate,
        recording: run.recording.clone(),
        duration: plan.duration,
        cpu: Some(cpu),
        passed,
        late_send_share: run.late_send_share(),
    };
    Ok((level, run))
}

/// throughput: each of `rates` in turn.
pub async fn throughput(
    topo: &Topology,
    site: Site<'_>,
    params: &Params,
    keys: Arc<KeyPlan>,
    rates: &[u32],
) -> Result<RepResult, LabError> {
    let (decisions, before) = open_counters(topo, site).await?;
    let probe = site.deployment.cpu_probe();
    let cpu_before = probe.snapshot();
    let mut result = RepResult::default();
    for &rate in rates {
        let (level, _) = level(site, params, ScenarioId::Throughput, &keys, rate).await?;
        merge(&mut result.recording, &level.recording);
        result.levels.push(level);
    }
    result.cpu = Some(probe.snapshot().since(&cpu_before));
    close_counters(
        topo,
        site,
        ScenarioId::Throughput,
        decisions,
        before,
        &mut result,
    )
    .await?;
    Ok(result)
}

/// capacity: a search (doubling from the start rate, or around `hint`),
/// each probe one open-model run judged against the SLO.
pub async fn capacity(
    topo: &Topology,
    site: Site<'_>,
    params: &Params,
    keys: Arc<KeyPlan>,
    hint: Option<u32>,
) -> Result<RepResult, LabError> {
    let (lo, hi, precision) = (
        params.capacity_min_rps,
        params.capacity_max_rps,
        params.capacity_precision,
    );
    let mut search = match hint {
        Some(h) if h > 0 => CapacitySearch::around(h, lo, hi, precision),
        _ => CapacitySearch::doubling(params.capacity_start_rps, lo, hi, precision),
    };
    let (decisions, before) = open_counters(topo, site).await?;
    let probe = site.deployment.cpu_probe();
    let cpu_before = probe.snapshot();
    let mut result = RepResult::default();
    while let Some(rate) = search.next() {
        // A failure is probed once more: one noisy second on a shared
        // machine must not bound the whole search.
        let mut passed = false;
        for _ in 0..2 {
            let (level, _) = level(site, params, ScenarioId::Capacity, &keys, rate).await?;
            passed = level.passed == Some(true);
            merge(&mut result.recording, &level.recording);
            result.levels.push(level);
            tokio::time::sleep(if passed { SETTLE } else { SETTLE_AFTER_FAIL }).await;
            if passed {
                break;
            }
        }
        search.record(rate, passed);
    }
    result.cpu = Some(probe.snapshot().since(&cpu_before));
    let rps = search.capacity();
    let at = result
        .levels
        .iter()
        .position(|l| l.rate_per_sec == rps && l.passed == Some(true));
    result.capacity = Some(CapacityResult {
        rps,
        level: at,
        loadgen_bound: loadgen_bound(&result.levels, at),
    });
    close_counters(
        topo,
        site,
        ScenarioId::Capacity,
        decisions,
        before,
        &mut result,
    )
    .await?;
    Ok(result)
}

/// Whether the generator may have set the capacity: it used more than
/// [`LOADGEN_BOUND_CORES`] of a core at the capacity rate, or the lowest
/// failing probe failed with requests the generator itself sent late.
fn loadgen_bound(levels: &[Level], at: Option<usize>) -> bool {
    let busy = at
        .and_then(|i| levels[i].cpu.as_ref())
        .is_some_and(|c| c.cores(Role::Loadgen) > LOADGEN_BOUND_CORES);
    let lowest_fail = levels
        .iter()
        .filter(|l| l.passed == Some(false))
        .min_by_key(|l| l.rate_per_sec);
    let behind = lowest_fail.is_some_and(|l| l.late_send_share > LATE_SEND_BOUND);
    busy || behind
}
