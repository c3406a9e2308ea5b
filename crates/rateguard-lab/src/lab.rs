//! A whole lab run: topology up; the [`LabPlan`]'s deployments in turn
//! (pass 1, every subject's capacity search per key mix and store RTT and
//! the accuracy scenarios at the first RTT; pass 2, the throughput scenario
//! at fractions of the slowest store's capacity for each key mix, so every
//! subject is compared at the same offered loads); report written,
//! topology down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rateguard_contract::{OnError, RawConfig};
use rateguard_lab_model::{BackendKind, KeyMix, ScenarioId};
use rateguard_loadtests::analysis::WINDOWS_MS;
use rateguard_loadtests::keys::KeyPlan;
use rateguard_loadtests::{open_model, path_prefix, Recorder};
use rateguard_report::{is_load_scenario, write_report, Record, Settings, Summary};

use crate::options::LabOptions;
use crate::plan::{self, LabPlan, Pass, Step};
use crate::progress::Progress;
use crate::runner::{RepResult, Site};
use crate::topology::{Deployment, Topology};
use crate::{gateway_config, load, loads, machine, runner, summarize, LabError};

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
        "topology: redis={} cluster={} delay proxies={} backends={} replicas={}",
        opts.needs_redis(),
        opts.needs_cluster(),
        opts.needs_delay(),
        opts.backends,
        opts.replicas
    ));
    let mut topo = tokio::task::block_in_place(|| {
        Topology::start(
            &opts.gateway_bin,
            opts.backends,
            opts.needs_redis(),
            opts.needs_cluster(),
            opts.needs_delay(),
        )
    })?;
    let settings = settings(opts);
    let plan = LabPlan::new(&settings, opts.outage_repetitions);
    let mut config = gateway_config::generated(
        opts.store_timeout_ms,
        &opts.params.policies(),
        OnError::Allow,
    );
    // The lab compares the stores: every decision goes to the store. The
    // deny cache (on by default) answers repeated denials locally and would
    // hide the store's cost in the denial-heavy scenarios; `just perf`'s
    // deny-heavy case measures it.
    config.store.deny_cache = false;
    let mut records: Vec<Record> = Vec::new();
    let mut loads: Option<BTreeMap<KeyMix, Vec<u32>>> = None;
    let mut notes = notes(opts);
    for planned in &plan.deployments {
        if planned.pass == Pass::Second && loads.is_none() {
            let (chosen, why) = loads::throughput_loads(opts, &records);
            for line in &why {
                progress.phase(line);
            }
            notes.extend(why);
            loads = Some(chosen);
        }
        let loads = loads.clone().unwrap_or_default();
        topo.set_rtt(planned.rtt_ms);
        progress.phase(&format!("{}: starting", planned.name()));
        let deployment = deploy(&topo, planned, &config, opts, &run_id).await?;
        let site = Site {
            subject: planned.subject,
            rtt_ms: planned.subject.has_store_server().then_some(planned.rtt_ms),
            deployment: &deployment,
        };
        for step in &planned.steps {
            let record = measure(&mut topo, site, step, opts, &run_id, &loads, &progress).await?;
            progress.result(&record);
            records.push(record);
        }
        // Stopping waits for each process to exit: off the async workers.
        tokio::task::block_in_place(move || drop(deployment));
    }
    // Report order: the plan's.
    records.sort_by_key(|r| plan.position(&r.key()));

    progress.phase("writing the report");
    let summary = Summary {
        run_id,
        created_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        machine: machine::machine(),
        versions: machine::versions(),
        git_commit: machine::git_commit(),
        notes,
        settings,
        records,
        bench_summary_path: opts.bench_summary.clone(),
    };
    tokio::task::block_in_place(move || drop(topo));
    let report = write_report(&opts.results_dir, &summary)?;
    progress.phase("done");
    Ok(LabOutcome { summary, report })
}

/// The plan `opts` would run (`rateguard-lab run --plan` prints it).
pub fn planned(opts: &LabOptions) -> Result<LabPlan, LabError> {
    opts.validate()?;
    Ok(LabPlan::new(&settings(opts), opts.outage_repetitions))
}

/// `planned`'s replicas running `config` with its `on_error` (under
/// `local`, `replicas_hint` = the replica count) at its RTT, warmed up.
async fn deploy(
    topo: &Topology,
    planned: &plan::Deployment,
    config: &RawConfig,
    opts: &LabOptions,
    run_id: &str,
) -> Result<Deployment, LabError> {
    let mut config = config.clone();
    let on_error = planned.on_error;
    config.store.on_error = on_error;
    if on_error == OnError::Local {
        config.store.replicas_hint = i64::from(opts.replicas);
    }
    let deployment = tokio::task::block_in_place(|| {
        topo.deploy_subject(
            planned.subject,
            &config,
            opts.replicas,
            None,
            planned.rtt_ms,
        )
    })?;
    warm_up(
        &deployment,
        &format!("{}-warmup-{on_error}-{run_id}", planned.subject.name()),
    )
    .await?;
    Ok(deployment)
}

/// ` at N ms` for a store RTT.
fn rtt_text(rtt: Option<f64>) -> String {
    rtt.map_or_else(String::new, |r| format!(" at {r} ms RTT"))
}

/// Every repetition of `step` on `site`, summarized.
async fn measure(
    topo: &mut Topology,
    site: Site<'_>,
    step: &Step,
    opts: &LabOptions,
    run_id: &str,
    loads: &BTreeMap<KeyMix, Vec<u32>>,
    progress: &Progress,
) -> Result<Record, LabError> {
    let params = &opts.params;
    let key = step.key;
    let mut reps: Vec<RepResult> = Vec::new();
    for rep in 1..=step.repetitions {
        let mode = key
            .on_error
            .map_or_else(String::new, |m| format!(" (on_error = {m})"));
        progress.phase(&format!(
            "  {}{}: {}{mode} {rep}/{}",
            key.subject.name(),
            rtt_text(key.store_rtt_ms),
            step.label(),
            step.repetitions
        ));
        let tag = format!("{run_id}-{rep}");
        let result = if is_load_scenario(key.scenario) {
            let mix = key.keys.unwrap_or(KeyMix::Hot);
            let rtt = key
                .store_rtt_ms
                .map_or_else(String::new, |r| format!("-{r}ms"));
            let prefix = format!("{}-{}-{mix}{rtt}-{tag}", key.subject.name(), key.scenario);
            let requests = (params.capacity_max_rps as f64
                * params
                    .capacity_step
                    .max(params.throughput_step)
                    .as_secs_f64())
            .min(2_000_000.0) as usize;
            let plan = Arc::new(KeyPlan::new(
                &prefix,
                mix,
                requests.min(200_000),
                u64::from(rep),
            ));
            if key.scenario == ScenarioId::Capacity {
                let hint = reps.first().and_then(|r| r.capacity).map(|c| c.rps);
                load::capacity(topo, site, params, plan, hint).await?
            } else {
                let rates = loads
                    .get(&mix)
                    .cloned()
                    .unwrap_or_else(|| params.throughput_rates.clone());
                load::throughput(topo, site, params, plan, &rates).await?
            }
        } else {
            runner::run_once(topo, site, key.scenario, params, &tag).await?
        };
        reps.push(result);
    }
    Ok(summarize::record(key, opts.replicas, params, &reps))
}

/// The report's notes about how this run measured.
fn notes(opts: &LabOptions) -> Vec<String> {
    let mut notes = Vec::new();
    for &store in opts.stores.iter().filter(|s| !s.shared_across_replicas()) {
        notes.push(format!(
            "{store}: each of the {} replicas keeps its own buckets, so a client may get up to {}× its limit; it is the baseline that shows why a shared store exists.",
            opts.replicas, opts.replicas
        ));
    }
    if opts.scenarios.contains(&ScenarioId::StoreOutage) {
        for &store in opts.stores.iter().filter(|s| s.needs_cluster()) {
            notes.push(format!(
                "{store} {}: one of the three masters (no replicas) is killed and restarted; requests whose slot lives elsewhere may still be decided.",
                ScenarioId::StoreOutage
            ));
        }
    }
    let slo = &opts.params.slo;
    notes.push(format!(
        "capacity: per subject and workload, the highest open-model arrival rate at which ≥ {:.0} % of requests succeed and p99 (from each request's intended start) stays under {} ms; doubling from {} req/s, then bisection to within {:.0} %, {} ms per probe, a failing rate probed twice (it fails only if both runs miss); later repetitions start around the first one's result. loadgen-bound: the generator used more than 0.8 core at the capacity rate, or more than 1 % of the lowest failing rate's requests were sent over a quarter of the p99 bound late by an idle connection.",
        slo.min_success * 100.0,
        slo.p99.as_millis(),
        opts.params.capacity_start_rps,
        opts.params.capacity_precision * 100.0,
        opts.params.capacity_step.as_millis()
    ));
    notes.push(format!(
        "throughput: open model at {} of the slowest store's good capacity for the same key mix (median of its repetitions that were not loadgen-bound; at least {:.0} % of the median good capacity and {} req/s), the same offered loads for every subject and RTT; its figures stand at the middle load.",
        opts.params.throughput_load_fractions.iter().map(|f| format!("{:.0} %", f * 100.0)).collect::<Vec<_>>().join(", "),
        loads::FLOOR_SHARE_OF_MEDIAN * 100.0,
        opts.params.throughput_floor_rps
    ));
    notes.push(format!(
        "backends: {} answers capacity, throughput and sustained itself (NGINX return 200 with a fixed JSON body, as just perf does), so a request there costs the backend side little and the limiter's cost dominates; burst, distribution and store-outage go to the {} mock backends, whose replies name them.",
        BackendKind::Return200,
        opts.backends
    ));
    if opts.needs_delay() {
        notes.push("store RTT: above 0 ms the gateways reach Redis through the lab's TCP delay proxies (each direction held RTT/2, in order; a second cluster announces one proxy per node so redirects go through them too); at 0 ms they connect directly. The proxies' own CPU is in no role.".into());
    }
    notes.push("CPU µs per request: user + system time of each role's processes (/proc/<pid>/stat) over the measured window, divided by the requests completed in it; nginx is the NGINX in front (of the gateways, or doing limit_req), backends the mock backends and their own NGINX; loadgen is the lab process itself. Every process runs on this machine, so roles compete for its cores.".into());
    if opts.rls && opts.scenarios.contains(&ScenarioId::Capacity) {
        notes.push(format!("rls: {} `rateguard rls` replicas per store, called over gRPC (ShouldRateLimit, one descriptor per call, {} concurrent calls on HTTP/2 channels of {} each, spread over the replicas) by the open-model client; capacity only, at the first store RTT and key mix; rls CPU is in the gateway role, and no nginx or backends are in its path.", opts.replicas, opts.params.open_connections, open_model::WORKERS_PER_CHANNEL));
    }
    notes.push("nginx-limit-req: NGINX limit_req zones (burst = capacity − 1, nodelay) in one NGINX instance: its limits are per instance, so it is exact here with one instance and would admit N× with N instances.".into());
    notes.push("burst, distribution, store-outage: goose users (closed model); sustained: the open-model generator at a fixed rate per client (so every decision has its send and answer times); all at the first store RTT.".into());
    notes
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
        ms(p.throughput_step) * p.throughput_load_fractions.len() as u64,
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
            "open model, {} clients × {} req/s each, in random order; capacity {}, refill {}/s, {} s; over-admission in every {} ms window",
            p.sustained_clients,
            p.sustained_rps_per_client,
            p.sustained.capacity,
            p.sustained.refill_per_sec,
            p.sustained_secs,
            WINDOWS_MS.map(|w| w.to_string()).join(" and ")
        ),
    );
    put(
        ScenarioId::Throughput,
        if opts.throughput_from_capacity && opts.scenarios.contains(&ScenarioId::Capacity) {
            format!(
                "open model at {:?} × the slowest store's capacity per key mix, {} ms each, {} connections; figures at the middle load",
                p.throughput_load_fractions,
                ms(p.throughput_step),
                p.open_connections
            )
        } else {
            format!(
                "open model at {:?} req/s, {} ms each, {} connections; figures at the middle rate",
                p.throughput_rates,
                ms(p.throughput_step),
                p.open_connections
            )
        },
    );
    put(
        ScenarioId::Capacity,
        format!(
            "open model, SLO: ≥ {:.0} % 2xx and p99 < {} ms; doubling from {} req/s (≥ {}, ≤ {}), bisection to {:.0} %, {} ms per probe, {} connections",
            p.slo.min_success * 100.0,
            p.slo.p99.as_millis(),
            p.capacity_start_rps,
            p.capacity_min_rps,
            p.capacity_max_rps,
            p.capacity_precision * 100.0,
            ms(p.capacity_step),
            p.open_connections
        ),
    );
    put(
        ScenarioId::Distribution,
        format!("{} sequential requests, 1 user", p.distribution_requests),
    );
    put(
        ScenarioId::StoreOutage,
        format!(
            "{} clients, capacity {}, refill {}/s; kill after {} s, restart {} s later, then {} s; on_error = {}{} (local: replicas_hint = {}); {} runs each",
            p.outage_clients,
            p.outage.capacity,
            p.outage.refill_per_sec,
            p.outage_phases_secs[0],
            p.outage_phases_secs[1],
            p.outage_phases_secs[2],
            opts.on_error.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            if opts.one_mode_per_store { ", one mode per store in turn" } else { " on every store" },
            opts.replicas,
            opts.outage_repetitions.min(opts.repetitions)
        ),
    );
    Settings {
        replicas: opts.replicas,
        backends: opts.backends,
        repetitions: opts.repetitions,
        durations_ms,
        stores: opts.stores.clone(),
        references: opts.references.clone(),
        rls_stores: if opts.rls {
            opts.stores.clone()
        } else {
            Vec::new()
        },
        store_rtts_ms: opts.store_rtts_ms.clone(),
        keys: opts.keys.clone(),
        slo_p99_ms: Some(p.slo.p99.as_secs_f64() * 1e3),
        scenarios: opts.scenarios.clone(),
        on_error: opts.on_error.clone(),
        one_mode_per_store: opts.one_mode_per_store,
        params,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short unmeasured run so pools and connections are warm.
async fn warm_up(deployment: &Deployment, key: &str) -> Result<(), LabError> {
    let host = deployment.url();
    let plan = open_model::OpenPlan {
        url: format!("{host}{}/warmup", path_prefix(ScenarioId::Distribution)),
        rls: deployment.rls_target().cloned(),
        rate_per_sec: 400,
        duration: Duration::from_millis(500),
        connections: 32,
        keys: Arc::new(KeyPlan::rotating(key, 16)),
        timeout: Duration::from_secs(5),
        slo: None,
    };
    open_model::run(&plan, Arc::new(Recorder::new())).await?;
    Ok(())
}
