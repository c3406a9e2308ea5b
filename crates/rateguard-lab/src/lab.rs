//! A whole lab run: topology up, every store × scenario × repetition,
//! report written, topology down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rateguard_contract::{OnError, StoreKind};
use rateguard_loadtests::{open_model, path_prefix, Recorder, ScenarioId};
use rateguard_report::{applies, write_report, Settings, Summary};

use crate::options::LabOptions;
use crate::progress::Progress;
use crate::topology::Topology;
use crate::{gateway_config, machine, runner, summarize, LabError};

/// What a finished run left behind.
#[derive(Debug)]
pub struct LabOutcome {
    /// The run's summary (also in `summary.json`).
    pub summary: Summary,
    /// `results/<run-id>/report.html`.
    pub report: PathBuf,
}

/// Runs the lab. Every process it starts is stopped before it returns, and
/// also if the returned future is dropped (Ctrl-C).
pub async fn run(opts: &LabOptions) -> Result<LabOutcome, LabError> {
    opts.validate()?;
    let now = chrono::Utc::now();
    let run_id = opts
        .run_id
        .clone()
        .unwrap_or_else(|| now.format("%Y%m%d-%H%M%S").to_string());
    let progress = Progress::new(opts.verbose);
    progress.phase(&format!(
        "topology: redis={} cluster={} backends={} replicas={}",
        opts.needs_redis(),
        opts.needs_cluster(),
        opts.backends,
        opts.replicas
    ));
    let mut topo = tokio::task::block_in_place(|| {
        Topology::start(
            &opts.gateway_bin,
            opts.backends,
            opts.needs_redis(),
            opts.needs_cluster(),
        )
    })?;
    let config = gateway_config::generated(
        opts.store_timeout_ms,
        &opts.params.policies(),
        OnError::Allow,
    );
    let mut records = Vec::new();
    let mut notes = Vec::new();
    for &store in &opts.stores {
        progress.phase(&format!(
            "store {store}: starting {} replicas",
            opts.replicas
        ));
        let deployment =
            tokio::task::block_in_place(|| topo.deploy(store, &config, opts.replicas, None))?;
        warm_up(&deployment.url(), &format!("{store}-warmup-{run_id}")).await?;
        for &scenario in &opts.scenarios {
            if !applies(store, scenario) {
                continue;
            }
            let mut reps = Vec::new();
            for rep in 1..=opts.repetitions {
                progress.phase(&format!(
                    "store {store}: {scenario} {rep}/{}",
                    opts.repetitions
                ));
                let tag = format!("{run_id}-{rep}");
                let result =
                    runner::run_once(&mut topo, &deployment, store, scenario, &opts.params, &tag)
                        .await?;
                reps.push(result);
            }
            let record = summarize::record(store, scenario, opts.replicas, &opts.params, &reps);
            progress.result(&record);
            records.push(record);
        }
        if !store.shared_across_replicas() {
            notes.push(format!(
                "{store}: each of the {} replicas keeps its own buckets, so a client may get up to {}× its limit; it is the baseline that shows why a shared store exists.",
                opts.replicas, opts.replicas
            ));
        }
        // Stopping waits for each process to exit: off the async workers.
        tokio::task::block_in_place(move || drop(deployment));
    }
    if opts.needs_cluster() && opts.scenarios.contains(&ScenarioId::StoreOutage) {
        notes.push(format!(
            "{} {}: one of the three masters (no replicas) is killed and restarted; requests whose slot lives elsewhere may still be decided.",
            StoreKind::FredCluster,
            ScenarioId::StoreOutage
        ));
    }
    notes.push(format!(
        "throughput: open model (fixed arrival rate, latency from each request's intended start); a rate is sustained when ≥ {:.0}% of it came back 2xx with p99 ≤ {} ms; latency figures are at the reference rate {} req/s.",
        summarize::SUSTAIN_MIN_SHARE * 100.0,
        summarize::SUSTAIN_MAX_P99_US / 1000,
        summarize::reference_rate(&opts.params)
    ));
    notes.push("burst, sustained, distribution, store-outage: goose users (closed model); every process runs on this machine, load generator included.".into());

    progress.phase("writing the report");
    let summary = Summary {
        run_id,
        created_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        machine: machine::machine(),
        versions: machine::versions(),
        git_commit: machine::git_commit(),
        settings: settings(opts),
        records,
        bench_summary_path: opts.bench_summary.clone(),
        notes,
    };
    tokio::task::block_in_place(move || drop(topo));
    let report = write_report(&opts.results_dir, &summary)?;
    progress.phase("done");
    Ok(LabOutcome { summary, report })
}

fn settings(opts: &LabOptions) -> Settings {
    let p = &opts.params;
    let mut durations_ms = BTreeMap::new();
    let mut duration = |id: ScenarioId, ms: u64| {
        durations_ms.insert(id.to_string(), ms);
    };
    duration(ScenarioId::Sustained, p.sustained_secs * 1000);
    duration(
        ScenarioId::Throughput,
        ms(p.throughput_step) * p.throughput_rates.len() as u64,
    );
    duration(
        ScenarioId::StoreOutage,
        p.outage_phases_secs.iter().sum::<u64>() * 1000,
    );
    let mut params = BTreeMap::new();
    let mut put = |id: ScenarioId, v: String| {
        params.insert(id.to_string(), v);
    };
    put(
        ScenarioId::Burst,
        format!(
            "1 client, capacity {} (refill {}/s), {} users × {} requests released at once",
            p.burst.capacity, p.burst.refill_per_sec, p.burst_users, p.burst_requests_per_user
        ),
    );
    put(
        ScenarioId::Sustained,
        format!(
            "{} clients × {} users, each pausing {} ms; capacity {}, refill {}/s, {} s",
            p.sustained_clients,
            p.sustained_users_per_client,
            ms(p.sustained_pause),
            p.sustained.capacity,
            p.sustained.refill_per_sec,
            p.sustained_secs
        ),
    );
    put(
        ScenarioId::Throughput,
        format!(
            "open model at {:?} req/s over {} client keys, {} ms each, ≤ {} in flight; latency at {} req/s",
            p.throughput_rates,
            p.throughput_clients,
            ms(p.throughput_step),
            p.throughput_max_in_flight,
            summarize::reference_rate(p)
        ),
    );
    put(
        ScenarioId::Distribution,
        format!("{} sequential requests, 1 user", p.distribution_requests),
    );
    put(
        ScenarioId::StoreOutage,
        format!(
            "{} clients, capacity {}, refill {}/s; kill after {} s, restart {} s later, then {} s; fail open",
            p.outage_clients,
            p.outage.capacity,
            p.outage.refill_per_sec,
            p.outage_phases_secs[0],
            p.outage_phases_secs[1],
            p.outage_phases_secs[2]
        ),
    );
    Settings {
        replicas: opts.replicas,
        backends: opts.backends,
        repetitions: opts.repetitions,
        durations_ms,
        stores: opts.stores.clone(),
        scenarios: opts.scenarios.clone(),
        params,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short unmeasured run so pools and connections are warm.
async fn warm_up(host: &str, key: &str) -> Result<(), LabError> {
    let plan = open_model::OpenPlan {
        url: format!("{host}{}/warmup", path_prefix(ScenarioId::Distribution)),
        rate_per_sec: 200,
        duration: Duration::from_millis(500),
        max_in_flight: 64,
        api_keys: vec![key.to_owned()],
        timeout: Duration::from_secs(5),
    };
    open_model::run(&plan, Arc::new(Recorder::new())).await?;
    Ok(())
}
