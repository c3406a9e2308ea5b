//! A tiny lab run (every store and scenario, 2 replicas, 1 repetition,
//! second-long phases) against real redis-server, Redis Cluster, nginx and
//! `rateguard` processes: `summary.json` must be complete, and the atomic
//! stores' burst must be exact.

mod common;

use common::gateway_bin;
use rateguard_lab::LabOptions;
use rateguard_loadtests::Params;
use rateguard_report::Summary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_lab_run_is_complete_and_atomic_stores_burst_exactly() {
    let results = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(gateway_bin());
    opts.replicas = 2;
    opts.repetitions = 1;
    opts.params = Params::tiny();
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
    assert_eq!(
        summary.records.len(),
        4 * 5 - 1,
        "every store × scenario but memory's outage"
    );

    for store in ["redis-lua", "redis-pipelined", "fred-cluster"] {
        let burst = summary.record(store, "burst").unwrap();
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
        assert!(burst.store_commands_per_request.unwrap() > 0.0, "{store}");
        assert!(
            burst
                .store_command_calls
                .keys()
                .any(|k| k.starts_with("eval")),
            "{store}: {:?}",
            burst.store_command_calls
        );

        // Real time is involved (client send times vs. Redis TIME), so a
        // tolerance; a store that leaked like the memory one would be far off.
        let sustained = summary.record(store, "sustained").unwrap();
        let err = sustained.accuracy_error_pct.unwrap();
        assert!(err.abs() <= 5.0, "{store}: sustained off by {err} %");

        let outage = summary.record(store, "store-outage").unwrap();
        let marks = outage.outage.expect("outage markers");
        assert!(
            marks.killed_at_ms < marks.restarted_at_ms,
            "{store}: {marks:?}"
        );
        assert!(!outage.timeline.is_empty());
        assert!(
            outage.failed_open.unwrap() > 0,
            "{store}: requests during the outage fail open"
        );
    }

    // Per-replica buckets: the memory store lets each replica allow C.
    let memory = summary.record("memory", "burst").unwrap();
    assert!(
        memory.allowed > capacity && memory.allowed <= 2 * capacity,
        "memory burst allowed {}",
        memory.allowed
    );
    assert_eq!(memory.store_commands_per_request, None);
    let memory = summary.record("memory", "sustained").unwrap();
    assert!(
        memory.accuracy_error_pct.unwrap() > 50.0,
        "memory sustained: {:?}",
        memory.accuracy_error_pct
    );

    let dist = summary.record("redis-lua", "distribution").unwrap();
    assert_eq!(dist.per_replica.len(), 2, "{:?}", dist.per_replica);
    assert_eq!(dist.per_backend.len(), 2, "{:?}", dist.per_backend);
    assert_eq!(dist.per_replica.values().sum::<u64>(), dist.requests);

    let tp = summary.record("redis-pipelined", "throughput").unwrap();
    assert_eq!(tp.rate_levels.len(), opts.params.throughput_rates.len());
    assert_eq!(tp.denied, 0, "throughput limits never deny");
    assert!(!tp.latency_curve.is_empty());
}
