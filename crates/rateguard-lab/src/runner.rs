//! Runs one scenario once against the running topology and returns what
//! was measured ([`RepResult`]); [`crate::summarize`] turns repetitions into
//! a report record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rateguard_contract::{Backend, StoreKind};
use rateguard_loadtests::{goose_driver, open_model, Params, Recorder, Recording, ScenarioId};

use crate::commandstats::{self, CommandStats};
use crate::topology::{Deployment, Topology};
use crate::LabError;

/// One fixed-rate step of the throughput scenario.
#[derive(Debug, Clone)]
pub struct Level {
    /// Offered requests per second.
    pub rate_per_sec: u32,
    /// What happened.
    pub recording: Recording,
    /// How long requests were started for.
    pub duration: Duration,
}

/// When the store was killed and restarted, µs since the recording started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageMarks {
    /// Kill time.
    pub killed_us: u64,
    /// Time the restarted store answered again.
    pub restarted_us: u64,
}

/// One repetition of one scenario against one store.
#[derive(Debug, Clone)]
pub struct RepResult {
    /// Every request (for throughput: all levels together).
    pub recording: Recording,
    /// throughput only: each level on its own.
    pub levels: Vec<Level>,
    /// Store calls per command during the run (`None`: memory, or not
    /// measurable as in store-outage).
    pub store_commands: Option<BTreeMap<String, u64>>,
    /// store-outage only.
    pub outage: Option<OutageMarks>,
    /// Requests the gateways let through without the store (fail-open).
    pub failed_open: u64,
}

/// Runs `scenario` once for `store`; `tag` makes the API keys unique.
pub async fn run_once(
    topo: &mut Topology,
    deployment: &Deployment,
    store: StoreKind,
    scenario: ScenarioId,
    params: &Params,
    tag: &str,
) -> Result<RepResult, LabError> {
    let host = deployment.url();
    let host = host.as_str();
    let prefix = format!("{store}-{scenario}-{tag}");
    let decisions_before = deployment.decisions().await?;
    let before = stats(topo, store).await?;
    let mut levels = Vec::new();
    let mut outage = None;
    let recording = match scenario {
        ScenarioId::Burst => goose(&params.burst_plan(host, &prefix)).await?,
        ScenarioId::Sustained => goose(&params.sustained_plan(host, &prefix)).await?,
        ScenarioId::Distribution => goose(&params.distribution_plan(host, &prefix)).await?,
        ScenarioId::Throughput => {
            let mut all = Recording::default();
            for &rate in &params.throughput_rates {
                let plan = params.throughput_plan(host, &prefix, rate);
                let recorder = Arc::new(Recorder::new());
                open_model::run(&plan, recorder.clone()).await?;
                let recording = recorder.finish();
                merge(&mut all, &recording);
                levels.push(Level {
                    rate_per_sec: rate,
                    recording,
                    duration: plan.duration,
                });
            }
            all
        }
        ScenarioId::StoreOutage => {
            let (recording, marks) = store_outage(topo, store, params, host, &prefix).await?;
            outage = Some(marks);
            recording
        }
    };
    // A restarted Redis starts its stats from zero: no delta for the outage.
    let store_commands = match (scenario, before) {
        (ScenarioId::StoreOutage, _) | (_, None) => None,
        (_, Some(before)) => stats(topo, store).await?.map(|after| after.since(&before)),
    };
    let failed_open =
        failed_open(&deployment.decisions().await?).saturating_sub(failed_open(&decisions_before));
    Ok(RepResult {
        recording,
        levels,
        store_commands,
        outage,
        failed_open,
    })
}

fn failed_open(decisions: &BTreeMap<String, u64>) -> u64 {
    decisions.get("failed_open").copied().unwrap_or(0)
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
    store: StoreKind,
    params: &Params,
    host: &str,
    prefix: &str,
) -> Result<(Recording, OutageMarks), LabError> {
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
    tokio::task::block_in_place(|| set_store_running(topo, store, false))?;
    tokio::time::sleep_until((started + Duration::from_secs(before + down)).into()).await;
    let restarted_us = tokio::task::block_in_place(|| {
        set_store_running(topo, store, true)?;
        Ok::<_, LabError>(recorder.offset_us(Instant::now()))
    })?;
    load.await
        .map_err(|e| LabError::Options(format!("outage load task failed: {e}")))??;
    Ok((
        recorder.finish(),
        OutageMarks {
            killed_us,
            restarted_us,
        },
    ))
}

/// Kills or restarts the store's process: the standalone server, or the
/// first cluster node (a master without a replica: its slots go dark).
fn set_store_running(topo: &mut Topology, store: StoreKind, up: bool) -> Result<(), LabError> {
    match store.backend() {
        Backend::InProcess => return Err(LabError::NoStore),
        Backend::RedisCluster => {
            let c = topo.cluster.as_mut().ok_or(LabError::NoStore)?;
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

async fn stats(topo: &Topology, store: StoreKind) -> Result<Option<CommandStats>, LabError> {
    commandstats::snapshot(store, topo.redis.as_ref(), topo.cluster.as_ref()).await
}

fn merge(all: &mut Recording, part: &Recording) {
    let offset = u64::try_from(all.elapsed.as_micros()).unwrap_or(u64::MAX);
    all.samples.extend(part.samples.iter().map(|s| {
        let mut s = *s;
        s.at_us += offset;
        s
    }));
    for (k, v) in &part.per_replica {
        *all.per_replica.entry(k.clone()).or_insert(0) += v;
    }
    for (k, v) in &part.per_backend {
        *all.per_backend.entry(k.clone()).or_insert(0) += v;
    }
    all.elapsed += part.elapsed;
}
