//! A tiny lab run (every store, both reference frontends, every store
//! behind `rateguard rls` (capacity), every scenario (store-outage: one
//! `on_error` mode per store),
//! store RTTs 0 and 1 ms, the Zipf key mix, 2 replicas, 1 repetition,
//! second-long phases) against real redis-server, Redis Clusters, delay
//! proxies, nginx and `rateguard` processes: `summary.json` must be
//! complete, the atomic stores' burst exact, and what the design fixes
//! (which roles have processes, the RTT's lower bound on latency, the
//! throughput loads derived from the slowest capacity) exactly so.

mod common;

use common::gateway_bin;
use rateguard_contract::{Frontend, KeyMix, OnError, Role, ScenarioId, StoreKind};
use rateguard_lab::LabOptions;
use rateguard_loadtests::Params;
use rateguard_report::{Record, Subject, Summary};

/// `summary.record` by ids.
fn record<'a>(summary: &'a Summary, store: &str, scenario: &str) -> &'a Record {
    let (kind, id): (StoreKind, ScenarioId) = (store.parse().unwrap(), scenario.parse().unwrap());
    summary
        .record(kind, id)
        .unwrap_or_else(|| panic!("no {store}/{scenario} record"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_lab_run_is_complete_and_atomic_stores_burst_exactly() {
    let results = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(gateway_bin());
    opts.replicas = 2;
    opts.repetitions = 1;
    opts.params = Params::tiny();
    opts.params.outage_phases_secs = [1, 1, 1];
    // redis-lua: allow, redis-pipelined: deny, fred-cluster: local.
    opts.one_mode_per_store = true;
    opts.keys = vec![KeyMix::Zipf];
    opts.store_rtts_ms = vec![0.0, 1.0];
    opts.results_dir = results.path().to_path_buf();
    opts.run_id = Some("tiny".into());
    opts.verbose = false;
    // Generous: a debug build on a busy CI machine must not fail open (and
    // over-allow) merely because a decision took longer than 50 ms.
    opts.store_timeout_ms = 1000;
    let capacity = u64::from(opts.params.burst.capacity);

    let outcome = rateguard_lab::run(&opts).await.expect("lab run");

    // The files: report, summary, latest.
    assert!(outcome.report.ends_with("tiny/report.html"));
    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("<svg"), "report has inline charts");
    let summary = Summary::read(&results.path().join("tiny/summary.json")).unwrap();
    assert_eq!(summary.run_id, outcome.summary.run_id);
    assert_eq!(summary.records.len(), outcome.summary.records.len());
    assert!(results.path().join("latest").exists());
    assert_eq!(summary.missing(), Vec::<String>::new());
    let planned = summary.settings.planned();
    assert_eq!(summary.records.len(), planned.len());
    // Every store × 4 accuracy scenarios (but the outage of those without
    // a store server), + burst on nginx-limit-req; capacity and throughput
    // on the stores and 2 references, twice for those with a store server
    // (2 RTTs); capacity on every store behind rls (first RTT and key mix).
    let stores = StoreKind::ALL.len();
    let served = StoreKind::ALL.iter().filter(|k| k.needs_server()).count();
    assert_eq!(
        planned.len(),
        stores * 4 - (stores - served) + 1 + 2 * (stores + 2 + served) + stores
    );
    rls_decides(&summary);

    cpu_roles_follow_the_processes(&summary);
    load_scenarios(&summary, &opts.params);

    for store in ["redis-lua", "redis-pipelined", "fred-cluster"] {
        let burst = record(&summary, store, "burst");
        // One Lua script call per decision (redis-lua, fred-cluster); the
        // pipelined store may merge same-key requests, never add calls.
        let calls = burst
            .script_calls_per_request()
            .expect("script calls counted");
        if store == "redis-pipelined" {
            assert!(
                calls > 0.0 && calls <= 1.0,
                "{store}: {calls} script calls/request"
            );
        } else {
            assert_eq!(calls, 1.0, "{store}: script calls/request");
        }
        println!("{store}: burst {calls:.3} script calls/request");
        assert_eq!(
            burst.allowed, capacity,
            "{store}: a shared bucket allows exactly C (failed open: {:?})",
            burst.failed_open
        );
        assert_eq!(burst.expected_allowed, Some(capacity), "{store}");
        assert_eq!(burst.accuracy_error_pct, Some(0.0), "{store}");
        assert_eq!(burst.errors, 0, "{store}");
        assert_eq!(
            burst.failed_open,
            Some(0),
            "{store}: every decision came from the store"
        );
        // The script's own commands (TIME, GET, SET) come on top.
        assert!(
            burst.store_commands_per_request.unwrap() >= calls,
            "{store}: {:?}",
            burst.store_command_calls
        );

        // The ideal replays the clients' send times, the store decides at
        // Redis TIME, up to one request's latency later: per client, that
        // shifts the allowed count by at most the tokens refilled in the
        // slowest request's time, plus one for rounding.
        let sustained = record(&summary, store, "sustained");
        let expected = sustained.expected_allowed.unwrap() as f64;
        let skew_secs = sustained.latency_us.max as f64 / 1e6;
        let shape = opts.params.sustained;
        let bound = opts.params.sustained_clients as f64 * (1.0 + shape.refill_per_sec * skew_secs);
        let off = sustained.allowed as f64 - expected;
        println!("{store}: sustained {off:+} of {expected} (bound {bound:.1})");
        assert!(
            off.abs() <= bound,
            "{store}: sustained allowed {} of an ideal {expected}: off by more than {bound:.1} \
             (slowest request {skew_secs:.3} s)",
            sustained.allowed
        );

        let outage = record(&summary, store, "store-outage");
        let marks = outage.outage.expect("outage markers");
        assert!(
            marks.killed_at_ms < marks.restarted_at_ms,
            "{store}: {marks:?}"
        );
        assert!(!outage.timeline.is_empty());
        let window = outage.outage_window.expect("outage window");
        assert_eq!(window.runs, 1);
        let clients = f64::from(opts.params.outage_clients);
        let failed_open = outage.failed_open.unwrap();
        let mode = outage.on_error.expect("outage mode");
        println!("{store}: outage on_error = {mode}: {window:?}");
        match mode {
            OnError::Allow => {
                assert!(
                    failed_open > 0 && failed_open <= outage.allowed,
                    "{store}: requests during the outage fail open (and are counted as allowed): \
                     {failed_open} of {}",
                    outage.allowed
                );
                assert_eq!(outage.errors, 0, "{store}: fail open, not fail");
            }
            OnError::Deny => {
                assert_eq!(failed_open, 0, "{store}: deny never fails open");
                assert!(window.errors.max > 0.0, "{store}: 503s while down");
                // A request sent as the kill began may still reach Redis.
                assert!(window.admitted.max <= clients, "{store}: {window:?}");
            }
            OnError::Local => {
                assert_eq!(failed_open, 0, "{store}: local never fails open");
                assert_eq!(outage.errors, 0, "{store}: local decides, never fails");
                assert!(
                    outage.local_fallback.unwrap() > 0,
                    "{store}: local decisions"
                );
                let bound = window.bound.expect("local bound");
                assert!(
                    window.admitted.max <= bound.ceil() + clients,
                    "{store}: admitted while down over the bound: {window:?}"
                );
            }
        }
    }

    // Per-replica buckets: the memory store lets each replica allow C.
    let memory = record(&summary, "memory", "burst");
    assert!(
        memory.allowed > capacity && memory.allowed <= 2 * capacity,
        "memory burst allowed {}",
        memory.allowed
    );
    assert_eq!(memory.store_commands_per_request, None);
    let memory = record(&summary, "memory", "sustained");
    assert!(
        memory.accuracy_error_pct.unwrap() > 50.0,
        "memory sustained: {:?}",
        memory.accuracy_error_pct
    );

    let dist = record(&summary, "redis-lua", "distribution");
    assert_eq!(dist.per_replica.len(), 2, "{:?}", dist.per_replica);
    assert_eq!(dist.per_backend.len(), 2, "{:?}", dist.per_backend);
    assert_eq!(dist.per_replica.values().sum::<u64>(), dist.requests);

    // NGINX limit_req in one instance: exact, like a shared store.
    let nginx = Subject::reference(Frontend::NginxLimitReq);
    let burst = summary
        .first(nginx, ScenarioId::Burst)
        .expect("nginx burst");
    assert_eq!(burst.allowed, capacity, "nginx-limit-req burst");
    assert_eq!(burst.errors, 0);
}

/// The rls frontend ran on every store over gRPC: decisions were made
/// (its limit is the lab's "unlimited": nothing denied), the search found
/// a rate, and no nginx or backend was in its path.
fn rls_decides(summary: &Summary) {
    let rls: Vec<&Record> = summary
        .records
        .iter()
        .filter(|r| r.frontend == Frontend::Rls)
        .collect();
    assert_eq!(rls.len(), StoreKind::ALL.len());
    for r in rls {
        assert_eq!(r.scenario, ScenarioId::Capacity, "{:?}", r.key());
        assert!(r.allowed > 0, "{:?}: {} allowed", r.key(), r.allowed);
        assert_eq!(r.denied, 0, "{:?}", r.key());
        let cpu = r.cpu_us_per_request.as_ref().expect("rls cpu");
        assert!(cpu.get(Role::Gateway) > 0.0, "{:?}: rls CPU", r.key());
        println!(
            "{}: {:?} decisions/s, p99 {} µs",
            r.subject().name(),
            r.capacity_rps,
            r.latency_us.p99
        );
    }
}

/// Every record but store-outage charges CPU to all five roles; a role with
/// no process in the subject's topology is charged exactly nothing.
fn cpu_roles_follow_the_processes(summary: &Summary) {
    for r in &summary.records {
        let Some(cpu) = &r.cpu_us_per_request else {
            assert_eq!(r.scenario, ScenarioId::StoreOutage, "{:?}", r.key());
            continue;
        };
        assert_eq!(cpu.0.len(), Role::ALL.len(), "{:?}", r.key());
        let subject = r.subject();
        if !subject.has_store_server() {
            assert_eq!(cpu.get(Role::Store), 0.0, "{:?}: no store process", r.key());
        }
        if subject.frontend == Frontend::NginxLimitReq {
            assert_eq!(cpu.get(Role::Gateway), 0.0, "{:?}: no gateway", r.key());
        }
        if subject.frontend == Frontend::Rls {
            assert_eq!(cpu.get(Role::Nginx), 0.0, "{:?}: no nginx", r.key());
            assert_eq!(cpu.get(Role::Backends), 0.0, "{:?}: no backend", r.key());
        }
        assert!(cpu.total() > 0.0, "{:?}", r.key());
    }
}

/// Capacity results are probed passing rates; throughput runs at the
/// fractions of the slowest store's capacity; 1 ms of store RTT is a floor
/// under every request's latency.
fn load_scenarios(summary: &Summary, params: &Params) {
    let capacity = |r: &Record| r.capacity_rps.expect("capacity_rps");
    let caps: Vec<&Record> = summary
        .records
        .iter()
        .filter(|r| r.scenario == ScenarioId::Capacity)
        .collect();
    for r in &caps {
        let c = capacity(r);
        assert!(r.loadgen_bound.is_some(), "{:?}", r.key());
        assert!(
            c == 0.0
                || r.rate_levels
                    .iter()
                    .any(|l| l.sustained && l.target_rps == c),
            "{:?}: {c} is a passing probe: {:?}",
            r.key(),
            r.rate_levels
        );
        assert_eq!(r.denied, 0, "capacity limits never deny");
    }
    // The gateways' stores only (not rls): throughput runs behind them.
    let slowest = caps
        .iter()
        .filter(|r| r.frontend == Frontend::Gateway)
        .map(|r| capacity(r))
        .filter(|&c| c > 0.0)
        .reduce(f64::min);
    let loads: Vec<f64> = params
        .throughput_loads(slowest)
        .into_iter()
        .map(f64::from)
        .collect();
    for r in summary
        .records
        .iter()
        .filter(|r| r.scenario == ScenarioId::Throughput)
    {
        let offered: Vec<f64> = r.rate_levels.iter().map(|l| l.target_rps).collect();
        assert_eq!(offered, loads, "{:?}", r.key());
        assert_eq!(r.denied, 0, "throughput limits never deny");
        assert!(!r.latency_curve.is_empty());
        if r.store_rtt_ms == Some(1.0) {
            let p50 = r.latency_curve[0].1;
            assert!(
                p50 >= 1_000,
                "{:?}: p50 {p50} µs under a 1 ms store RTT",
                r.key()
            );
        }
    }
}
