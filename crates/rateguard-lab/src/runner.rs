//! Runs one scenario once against a running [`Deployment`] and returns
//! what was measured ([`RepResult`]); [`crate::summarize`] turns
//! repetitions into a report record. The accuracy scenarios are here; the
//! open-model load scenarios (throughput, capacity) in [`crate::load`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rateguard_contract::metrics::Decision;
use rateguard_contract::{Backend, StoreKind};
use rateguard_loadtests::{goose_driver, open_model, Params, Recorder, Recording, ScenarioId};
use rateguard_report::Subject;

use crate::commandstats::{self, NodeStats};
use crate::cpu::CpuUsage;
use crate::decisions::DecisionCounts;
use crate::topology::{Deployment, Topology};
use crate::LabError;

/// Where a run goes: a subject's deployment, at a store RTT.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// What is measured.
    pub subject: Subject,
    /// The store RTT, ms (`None`: no store server in the path).
    pub rtt_ms: Option<f64>,
    /// Its running frontend.
    pub deployment: &'a Deployment,
}

/// One fixed-rate step of the throughput scenario, or one probe of the
/// capacity search.
#[derive(Debug, Clone)]
pub struct Level {
    /// Offered requests per second.
    pub rate_per_sec: u32,
    /// What happened.
    pub recording: Recording,
    /// How long requests were started for.
    pub duration: Duration,
    /// CPU over the level.
    pub cpu: Option<CpuUsage>,
    /// capacity: whether the probe met the SLO.
    pub passed: Option<bool>,
    /// Share of requests the generator itself sent late.
    pub late_send_share: f64,
}

/// When the store was killed and restarted, µs since the recording started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageMarks {
    /// Kill time.
    pub killed_us: u64,
    /// Time the restarted store answered again.
    pub restarted_us: u64,
    /// When the replicas last decided without the store, from
    /// [`FALLBACK_POLL`] polls of their counters after the restart: the
    /// end of the first poll that saw the final count (`None`: still
    /// growing at the run's last poll).
    pub fallback_ended_us: Option<u64>,
}

/// How often the outage scenario polls the replicas' decision counters
/// after the restart.
pub const FALLBACK_POLL: Duration = Duration::from_millis(50);

/// From `(poll end µs, fallback count)` polls after the restart (the first
/// taken right at it): the end of the poll that saw the last growth (the
/// last fallback decision came before it), or of the first poll when none
/// grew; `None` when the last poll still grew.
pub fn fallback_ended(polls: &[(u64, u64)]) -> Option<u64> {
    let last_growth = polls.windows(2).rposition(|w| w[1].1 > w[0].1);
    match last_growth {
        None => polls.first().map(|p| p.0),
        Some(i) if i + 2 < polls.len() => Some(polls[i + 1].0),
        Some(_) => None,
    }
}

/// A capacity search's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityResult {
    /// The highest rate that met the SLO, req/s (0: none did).
    pub rps: u32,
    /// Index into [`RepResult::levels`] of that rate's probe.
    pub level: Option<usize>,
    /// The generator may have been the limit.
    pub loadgen_bound: bool,
}

/// One repetition of one scenario against one subject.
#[derive(Debug, Clone, Default)]
pub struct RepResult {
    /// Every request (throughput, capacity: all levels together).
    pub recording: Recording,
    /// throughput and capacity: each level on its own, in run order.
    pub levels: Vec<Level>,
    /// Store calls per command during the run (`None`: no store server,
    /// or not measurable as in store-outage).
    pub store_commands: Option<BTreeMap<String, u64>>,
    /// Lua script calls per store node during the run (empty when not
    /// measured).
    pub script_calls_by_node: Vec<u64>,
    /// store-outage only.
    pub outage: Option<OutageMarks>,
    /// Requests the gateways let through without the store (fail-open).
    pub failed_open: u64,
    /// Decisions the gateways made in their own memory (`on_error = local`).
    pub local_fallback: u64,
    /// CPU over the whole scenario (`None` for store-outage).
    pub cpu: Option<CpuUsage>,
    /// capacity only.
    pub capacity: Option<CapacityResult>,
}

/// Runs accuracy `scenario` once on `site`; `tag` makes the API keys unique.
pub async fn run_once(
    topo: &mut Topology,
    site: Site<'_>,
    scenario: ScenarioId,
    params: &Params,
    tag: &str,
) -> Result<RepResult, LabError> {
    let host = site.deployment.url();
    let host = host.as_str();
    let prefix = format!("{}-{scenario}-{tag}", site.subject.name());
    let probe = site.deployment.cpu_probe();
    let (decisions, before) = open_counters(topo, site).await?;
    let cpu_before = probe.snapshot();
    let mut result = RepResult::default();
    result.recording = match scenario {
        ScenarioId::Burst => goose(&params.burst_plan(host, &prefix)).await?,
        ScenarioId::Sustained => {
            let recorder = Arc::new(Recorder::new());
            let seed = tag.bytes().map(u64::from).sum();
            open_model::run(&params.sustained_plan(host, &prefix, seed), recorder)
                .await?
                .recording
        }
        ScenarioId::Distribution => goose(&params.distribution_plan(host, &prefix)).await?,
        ScenarioId::StoreOutage => {
            let (recording, marks) = store_outage(topo, site, params, host, &prefix).await?;
            result.outage = Some(marks);
            recording
        }
        ScenarioId::Throughput | ScenarioId::Capacity => {
            return Err(LabError::Options(format!(
                "{scenario} is a load scenario, run by crate::load"
            )))
        }
    };
    if scenario != ScenarioId::StoreOutage {
        result.cpu = Some(probe.snapshot().since(&cpu_before));
    }
    close_counters(topo, site, scenario, decisions, before, &mut result).await?;
    Ok(result)
}

/// The counters a run's figures are deltas of: fail-open decisions and the
/// store's command stats.
pub(crate) async fn open_counters(
    topo: &Topology,
    site: Site<'_>,
) -> Result<(DecisionCounts, Option<NodeStats>), LabError> {
    Ok((site.deployment.decisions().await?, stats(topo, site).await?))
}

/// Fills `result`'s store commands and fail-open count from the deltas.
pub(crate) async fn close_counters(
    topo: &Topology,
    site: Site<'_>,
    scenario: ScenarioId,
    decisions_before: DecisionCounts,
    before: Option<NodeStats>,
    result: &mut RepResult,
) -> Result<(), LabError> {
    // A restarted Redis starts its stats from zero: no delta for the outage.
    let after = match (scenario, &before) {
        (ScenarioId::StoreOutage, _) | (_, None) => None,
        (_, Some(_)) => stats(topo, site).await?,
    };
    if let (Some(before), Some(after)) = (before, after) {
        result.store_commands = Some(after.total().since(&before.total()));
        result.script_calls_by_node = after.script_calls_since(&before);
    }
    let delta = site.deployment.decisions().await?.since(&decisions_before);
    result.failed_open = delta.get(Decision::FailedOpen);
    result.local_fallback = delta.get(Decision::LocalFallback);
    Ok(())
}

async fn goose(plan: &goose_driver::GoosePlan) -> Result<Recording, LabError> {
    let recorder = Arc::new(Recorder::new());
    goose_driver::run(plan, recorder.clone()).await?;
    Ok(recorder.finish())
}

/// Clients above their rate; the store is killed after the first phase,
/// restarted after the second, and the run goes on for the third.
async fn store_outage(
    topo: &mut Topology,
    site: Site<'_>,
    params: &Params,
    host: &str,
    prefix: &str,
) -> Result<(Recording, OutageMarks), LabError> {
    let store = site.subject.store.ok_or(LabError::NoStore)?;
    let rtt = site.rtt_ms.unwrap_or(0.0);
    let plan = params.outage_plan(host, prefix);
    let recorder = Arc::new(Recorder::new());
    let load = tokio::spawn({
        let recorder = recorder.clone();
        async move { goose_driver::run(&plan, recorder).await }
    });
    let [before, down, _] = params.outage_phases_secs;
    let started = recorder.started();
    tokio::time::sleep_until((started + Duration::from_secs(before)).into()).await;
    let killed_us = recorder.offset_us(Instant::now());
    // Process control is synchronous (a kill reaps the child; a restart
    // waits for PING / cluster ok): hand this worker's tasks to another
    // thread meanwhile so the load keeps flowing.
    tokio::task::block_in_place(|| set_store_running(topo, store, rtt, false))?;
    tokio::time::sleep_until((started + Duration::from_secs(before + down)).into()).await;
    let restarted_us = tokio::task::block_in_place(|| {
        set_store_running(topo, store, rtt, true)?;
        Ok::<_, LabError>(recorder.offset_us(Instant::now()))
    })?;
    // Every replica's fallback counters until the load ends, then once more.
    let mut polls = Vec::new();
    loop {
        let done = load.is_finished();
        let n = site.deployment.decisions().await?.fallbacks();
        polls.push((recorder.offset_us(Instant::now()), n));
        if done {
            break;
        }
        tokio::time::sleep(FALLBACK_POLL).await;
    }
    load.await
        .map_err(|e| LabError::Options(format!("outage load task failed: {e}")))??;
    Ok((
        recorder.finish(),
        OutageMarks {
            killed_us,
            restarted_us,
            fallback_ended_us: fallback_ended(&polls),
        },
    ))
}

/// Kills or restarts the store's process: the standalone server, or the
/// first node of the cluster in use at `rtt_ms` (a master without a
/// replica: its slots go dark).
fn set_store_running(
    topo: &mut Topology,
    store: StoreKind,
    rtt_ms: f64,
    up: bool,
) -> Result<(), LabError> {
    match store.backend() {
        Backend::InProcess => return Err(LabError::NoStore),
        Backend::RedisCluster => {
            let c = topo.cluster_at_mut(rtt_ms).ok_or(LabError::NoStore)?;
            if up {
                c.restart_node(0)?;
            } else {
                c.kill_node(0)?;
            }
        }
        Backend::Redis => {
            let r = topo.redis.as_mut().ok_or(LabError::NoStore)?;
            if up {
                r.restart()?;
            } else {
                r.kill()?;
            }
        }
    }
    Ok(())
}

async fn stats(topo: &Topology, site: Site<'_>) -> Result<Option<NodeStats>, LabError> {
    let Some(store) = site
        .subject
        .store
        .filter(|_| site.subject.has_store_server())
    else {
        return Ok(None);
    };
    let cluster = topo.cluster_at(site.rtt_ms.unwrap_or(0.0));
    commandstats::snapshot(store, topo.redis.as_ref(), cluster).await
}

/// Appends `part`'s samples to `all`, shifted to follow it in time.
pub(crate) fn merge(all: &mut Recording, part: &Recording) {
    let offset = u64::try_from(all.elapsed.as_micros()).unwrap_or(u64::MAX);
    all.append(part, offset);
    all.elapsed += part.elapsed;
}

#[cfg(test)]
mod tests {
    use super::fallback_ended;

    #[test]
    fn fallback_ends_at_the_poll_after_the_last_growth() {
        // The poll ending at 150 saw the final count: over by then.
        let polls = [
            (0, 10),
            (50, 14),
            (100, 15),
            (150, 18),
            (200, 18),
            (250, 18),
        ];
        assert_eq!(fallback_ended(&polls), Some(150));
        // None after the restart: over at the first poll.
        assert_eq!(fallback_ended(&[(5, 3), (55, 3)]), Some(5));
        // Still growing at the end: not over within the run.
        assert_eq!(fallback_ended(&[(0, 1), (50, 2), (100, 3)]), None);
        assert_eq!(fallback_ended(&[(0, 1), (50, 2)]), None);
        assert_eq!(fallback_ended(&[]), None);
    }
}
