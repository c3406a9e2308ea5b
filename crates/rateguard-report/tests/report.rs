//! The report crate end to end: JSON round trip, completeness, rendering,
//! and the files `write_report` leaves behind.
//!
//! The summary used here is a *fixture for the renderer*: made-up numbers
//! of the right shape, not a measurement.

use std::collections::BTreeMap;

use rateguard_contract::{OnError, StoreKind};
use rateguard_lab_model::Role;
use rateguard_lab_model::{Frontend, ScenarioId};
use rateguard_report::{
    accuracy_error_pct, render, write_report, Admission, CpuPerRequest, LatencyUs, Machine, Outage,
    OutageRep, OutageWindow, RateLevel, Record, RecordKey, RecordSpread, RepetitionStats,
    SeriesPoint, Settings, Summary, TimelinePoint, Versions, REPORT_FILE, SUMMARY_FILE,
};

/// The fixture's stores: the four its figures were written for (a new
/// kind renders the same way and needs no new numbers here).
const STORES: [&str; 4] = ["memory", "redis-lua", "redis-pipelined", "fred-cluster"];

/// `s.record` by ids.
fn record<'a>(s: &'a Summary, store: &str, scenario: &str) -> Option<&'a Record> {
    s.record(store.parse().unwrap(), scenario.parse().unwrap())
}

const REPLICAS: u32 = 3;

fn latency(base: u64) -> LatencyUs {
    LatencyUs {
        p50: base,
        p90: base * 2,
        p99: base * 4,
        p999: base * 8,
        max: base * 20,
    }
}

/// CPU per request of store `k` (its gateway costs 10·k µs).
fn cpu(k: u64) -> CpuPerRequest {
    CpuPerRequest(BTreeMap::from([
        (Role::Gateway, 10.0 * k as f64),
        (Role::Store, 5.0),
        (Role::Nginx, 8.0),
        (Role::Backends, 6.0),
        (Role::Loadgen, 12.0),
    ]))
}

/// A record of the given shape; `k` varies the numbers per store.
fn fixture_record(key: RecordKey, k: u64) -> Record {
    let store = key.subject.name();
    let scenario = key.scenario.as_str();
    let shared = store != "memory";
    let mut r = Record {
        replicas: REPLICAS,
        requests: 1_000,
        allowed: 900,
        denied: 100,
        throughput_rps: 1_000.0 * k as f64,
        latency_us: latency(100 * k),
        store_rtt_ms: key.store_rtt_ms,
        keys: key.keys,
        cpu_us_per_request: Some(cpu(k)),
        ..Record::new(key.subject, key.scenario)
    };
    match scenario {
        "capacity" => {
            r.repetitions = (0..3)
                .map(|i| RepetitionStats {
                    throughput_rps: 1_500.0 * k as f64 + 10.0 * i as f64,
                    capacity_rps: Some(1_500.0 * k as f64 + 10.0 * i as f64),
                    cpu_us_per_request: Some(cpu(k)),
                    latency_us: latency(100 * k),
                    requests: 1_000,
                    allowed: 1_000,
                    ..RepetitionStats::default()
                })
                .collect();
            r.compute_spread();
            r.capacity_rps = r.spread.and_then(|s| s.capacity_rps).map(|c| c.median);
            r.loadgen_bound = Some(false);
            r.loadgen_cpu_cores = Some(0.3);
        }
        "burst" | "sustained" => {
            let expected = 100;
            r.allowed = if shared {
                expected
            } else {
                expected * u64::from(REPLICAS)
            };
            r.expected_allowed = Some(expected);
            r.accuracy_error_pct = accuracy_error_pct(r.allowed, expected);
            r.allowed_series = (0..=10)
                .map(|i| SeriesPoint {
                    t_ms: i * 100,
                    allowed: r.allowed * i / 10,
                    ideal: expected * i / 10,
                })
                .collect();
            if scenario == "sustained" {
                // The memory store's replicas each admit the whole bucket.
                let over = if shared { (-5.0, -1.0) } else { (40.0, 60.0) };
                r.admission = Some(Admission {
                    capacity: 20,
                    refill_per_sec: 10.0,
                    offered: 7_200,
                    admitted: r.allowed,
                    ideal: expected as f64,
                    over_admission_100ms: over.0,
                    over_admission_1s: over.1,
                    under_admission: if shared { 0.02 } else { 0.0 },
                    under_admission_spread: None,
                    worst_window_by_replica: BTreeMap::from([("gw-1".into(), 10)]),
                });
            }
        }
        "throughput" => {
            r.repetitions = (0..3)
                .map(|i| RepetitionStats {
                    throughput_rps: r.throughput_rps + 50.0 * i as f64,
                    latency_us: latency(100 * k + i),
                    requests: 1_000,
                    allowed: 1_000,
                    cpu_us_per_request: Some(cpu(k)),
                    ..RepetitionStats::default()
                })
                .collect();
            r.compute_spread();
            r.latency_curve = vec![(50.0, 100 * k), (99.0, 400 * k), (99.99, 2_000 * k)];
            // Store k keeps up to 1 500·k requests per second.
            r.rate_levels = [1_000.0, 2_000.0, 4_000.0]
                .map(|target: f64| {
                    let achieved = target.min(1_500.0 * k as f64);
                    RateLevel {
                        target_rps: target,
                        achieved_rps: achieved,
                        errors: 0,
                        latency_us: latency(100 * k),
                        sustained: achieved >= 0.95 * target,
                        cpu_us_per_request: Some(cpu(k)),
                        loadgen_cpu_cores: Some(0.2),
                    }
                })
                .to_vec();
        }
        "distribution" => {
            r.per_replica = (1..=REPLICAS)
                .map(|i| (format!("gw-{i}"), 333 + u64::from(i)))
                .collect();
            r.per_backend = BTreeMap::from([("backend-1".into(), 500), ("backend-2".into(), 500)]);
        }
        "store-outage" => {
            r.timeline = (0..30)
                .map(|i| TimelinePoint {
                    t_ms: i * 100,
                    ok: 50,
                    denied: if (10..20).contains(&i) { 0 } else { 5 },
                    errors: u64::from(i == 10),
                    p99_us: if (10..20).contains(&i) { 50_000 } else { 900 },
                })
                .collect();
            r.outage = Some(Outage {
                killed_at_ms: 1_000,
                restarted_at_ms: 2_000,
                enforcement_resumed_at_ms: Some(2_100),
                fallback_ended_at_ms: Some(2_150),
            });
            r.on_error = Some(OnError::Allow);
            r.outage_window = OutageWindow::of(
                &[OutageRep {
                    admitted: 500,
                    ideal: 50,
                    denied: 0,
                    errors: 1,
                    down_ms: 1_000,
                    recovery_ms: Some(150),
                }],
                None,
            );
            r.store_commands_per_request = None;
            r.cpu_us_per_request = None;
        }
        _ => unreachable!("unknown scenario {scenario}"),
    }
    r.failed_open = Some(0);
    if scenario == "store-outage" {
        // Store k failed open 700 + k times.
        r.failed_open = Some(700 + k);
    } else if shared {
        // One script call per request, except redis-pipelined on the burst,
        // which merges same-key requests: 400 calls for 1 000 requests.
        let calls = if store == "redis-pipelined" && scenario == "burst" {
            400
        } else {
            r.requests
        };
        r.store_command_calls = BTreeMap::from([
            ("evalsha".into(), calls),
            ("time".into(), calls),
            ("get".into(), calls),
            ("set".into(), r.allowed.min(calls)),
        ]);
        let total: u64 = r.store_command_calls.values().sum();
        r.store_commands_per_request = Some(total as f64 / r.requests as f64);
    }
    r
}

fn fixture() -> Summary {
    let settings = Settings {
        replicas: REPLICAS,
        backends: 2,
        repetitions: 3,
        durations_ms: BTreeMap::from([("sustained".into(), 1_000)]),
        stores: STORES.map(|s| s.parse::<StoreKind>().unwrap()).to_vec(),
        scenarios: ScenarioId::ALL.to_vec(),
        params: BTreeMap::from([("burst capacity".into(), "100".into())]),
        ..Settings::default()
    };
    let records = settings
        .planned()
        .into_iter()
        .map(|key| {
            let k = STORES
                .iter()
                .position(|s| *s == key.subject.name())
                .unwrap_or(0);
            fixture_record(key, k as u64 + 1)
        })
        .collect();
    Summary {
        run_id: "fixture-run".into(),
        created_at: "2026-11-28T13:00:00Z".into(),
        machine: Machine {
            cores: 2,
            cpu_model: "Fixture CPU <model> & co".into(),
            os: "Linux".into(),
            memory_gib: 7.5,
        },
        versions: Versions {
            rateguard: "0.1.0".into(),
            rustc: "rustc 1.95.0".into(),
            redis: "8.0".into(),
            nginx: "1.27".into(),
            other: BTreeMap::from([("goose".into(), "0.19".into())]),
        },
        git_commit: "0123456789abcdef".into(),
        settings,
        records,
        bench_summary_path: Some("../../target/criterion/report/index.html".into()),
        notes: vec!["Fixture for the renderer, not a measurement.".into()],
    }
}

#[test]
fn json_round_trip_keeps_everything() {
    let s = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = s.write(dir.path()).unwrap();
    assert_eq!(path, dir.path().join(SUMMARY_FILE));
    assert_eq!(Summary::read(&path).unwrap(), s);
}

#[test]
fn json_has_the_issue_fields_on_every_record() {
    let v: serde_json::Value = serde_json::to_value(fixture()).unwrap();
    let fields = [
        "store",
        "scenario",
        "replicas",
        "requests",
        "allowed",
        "denied",
        "errors",
        "expected_allowed",
        "accuracy_error_pct",
        "throughput_rps",
        "latency_us",
        "store_commands_per_request",
    ];
    for rec in v["records"].as_array().unwrap() {
        for f in fields {
            assert!(rec.get(f).is_some(), "record lacks {f}: {rec}");
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(rec["latency_us"].get(p).is_some());
        }
    }
}

#[test]
fn reading_a_broken_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SUMMARY_FILE);
    std::fs::write(&path, "{\"run_id\": 3}").unwrap();
    let err = Summary::read(&path).unwrap_err().to_string();
    assert!(err.contains(SUMMARY_FILE), "{err}");
}

#[test]
fn missing_is_empty_for_a_complete_run() {
    assert_eq!(fixture().missing(), Vec::<String>::new());
}

#[test]
fn missing_names_absent_records_and_fields() {
    let mut s = fixture();
    s.records
        .retain(|r| !(r.subject().name() == "fred-cluster" && r.scenario.as_str() == "burst"));
    let sustained = s
        .records
        .iter_mut()
        .find(|r| r.subject().name() == "redis-lua" && r.scenario.as_str() == "sustained")
        .unwrap();
    sustained.expected_allowed = None;
    let tp = s
        .records
        .iter_mut()
        .find(|r| r.subject().name() == "redis-pipelined" && r.scenario.as_str() == "throughput")
        .unwrap();
    tp.repetitions.truncate(1);
    tp.store_commands_per_request = None;
    s.machine.cpu_model.clear();
    let missing = s.missing();
    for expected in [
        "fred-cluster/burst: no record",
        "redis-lua/sustained: expected_allowed is absent",
        "redis-pipelined/throughput/hot/0 ms: 1 repetitions, settings ask for 3",
        "redis-pipelined/throughput/hot/0 ms: store_commands_per_request is absent",
        "machine.cpu_model is empty",
    ] {
        assert!(
            missing.iter().any(|m| m == expected),
            "{expected:?} not in {missing:#?}"
        );
    }
    assert_eq!(missing.len(), 5, "{missing:#?}");
}

#[test]
fn the_memory_store_needs_no_outage_run() {
    let s = fixture();
    assert!(record(&s, "memory", "store-outage").is_none());
    assert!(s.missing().is_empty());
}

#[test]
fn spread_comes_from_repetitions() {
    let s = fixture();
    let r = record(&s, "redis-lua", "throughput").unwrap();
    let sp: RecordSpread = r.spread.unwrap();
    assert_eq!(sp.throughput_rps.min, r.throughput_rps);
    assert_eq!(sp.throughput_rps.max, r.throughput_rps + 100.0);
    assert_eq!(sp.throughput_rps.median, r.throughput_rps + 50.0);
}

/// Checks that every element is closed in order (void and self-closing
/// elements aside) and returns the opened tag names, in order.
fn check_balanced(html: &str) -> Vec<String> {
    const VOID: [&str; 3] = ["meta", "br", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut opened = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed <") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name.trim(), "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        opened.push(name.clone());
        if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    opened
}

#[test]
fn render_draws_every_chart_and_names_every_store() {
    let s = fixture();
    let html = render(&s);
    let tags = check_balanced(&html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // CPU, capacity, latency at the same load (one key mix), latency
    // percentiles, burst, sustained, commands, per replica, per backend, and
    // one outage timeline per store that has one.
    let outages = s
        .records
        .iter()
        .filter(|r| r.scenario.as_str() == "store-outage")
        .count();
    assert_eq!(outages, 3);
    assert_eq!(html.matches("<svg").count(), 9 + outages);
    assert_eq!(tags.iter().filter(|t| *t == "svg").count(), 9 + outages);
    assert!(!html.contains("class=\"error\""), "a chart failed to draw");
    assert!(!html.contains("class=\"nodata\""));
    for store in STORES {
        assert!(html.contains(store), "{store} missing");
    }
    for needle in [
        "Fixture CPU &lt;model&gt; &amp; co",
        "0123456789abcdef",
        "rustc 1.95.0",
        "goose version",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("http://") && !lower.contains("https://"));
    assert!(!lower.contains("<script"));
    // Axis labels and legends are SVG text, so no font files are needed.
    assert!(html.contains("<text"));
    assert!(html.contains("ideal token bucket"));
}

#[test]
fn findings_follow_the_data() {
    let s = fixture();
    let html = render(&s);
    // The fixture's memory store allows 3× the limit; the shared ones are exact.
    assert!(
        html.contains("memory allowed 300 of 100 (+200.00 %)"),
        "memory burst line"
    );
    assert!(html.contains("redis-lua allowed 100 of 100 (exact)"));
    assert!(html.contains("Did not hold the limit across 3 replicas</b>"));
    // Every store costs Redis 5 µs per decision (a tie); store k's gateway
    // costs 10·k µs per request in every repetition: redis-lua (k = 2) is
    // the cheapest store that held the limit, beyond the spread.
    let top = verdict_section(&html);
    assert!(
        top.contains(
            "<b>redis-lua</b>: 33 % less gateway CPU per request than redis-pipelined, \
             beyond the spread; held the limit exactly<br><span class=\"spread\">gateway CPU \
             per request 20.0 µs (20.0 – 20.0) against 30.0 µs (30.0 – 30.0); \
             Redis CPU per decision overlaps"
        ),
        "{top}"
    );
    assert!(top.contains("did not: memory"), "{top}");
    // The verdict and the sizing table open the report, before the run table.
    let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("id=\"verdict\"") < at("id=\"sizing\""));
    assert!(at("id=\"sizing\"") < at("<h2>The run</h2>"));
    // Sizing: 5 µs of Redis per decision is 0.50 cores per 100 000/s.
    assert!(html.contains("<td>0.50 <span class=\"spread\">(0.50 – 0.50)</span></td>"));
    assert!(html.contains("<b>Reading a row:</b> 100\u{2009}000 requests/s of the hot · 0 ms workload on <b>redis-lua</b> need ≈ 2.0 gateway cores"));
    // Accuracy: the memory store's over-admission shows, the others' does not.
    assert!(html.contains("<span class=\"over\">+40</span>"));

    // Overlapping costs: a stated tie.
    let mut s2 = s.clone();
    for r in &mut s2.records {
        for rep in &mut r.repetitions {
            if let Some(c) = rep.cpu_us_per_request.as_mut() {
                c.0.insert(Role::Gateway, 30.0);
            }
            rep.latency_us.p99 = 1_000;
        }
    }
    let top = verdict_section(&render(&s2));
    assert!(
        top.contains(
            "<b>any of redis-lua, redis-pipelined, fred-cluster</b>: their costs overlap here"
        ),
        "{top}"
    );
}

/// The verdict section of a report.
fn verdict_section(html: &str) -> String {
    let t = &html[html.find("id=\"verdict\"").expect("section")..];
    t[..t.find("<h2").unwrap_or(t.len())].to_owned()
}

#[test]
fn fixture_report_can_be_written_for_inspection() {
    let Some(dir) = std::env::var_os("RATEGUARD_REPORT_FIXTURE_OUT") else {
        return;
    };
    let path = write_report(std::path::Path::new(&dir), &fixture()).unwrap();
    eprintln!("fixture report: {}", path.display());
}

#[test]
fn render_survives_an_empty_run() {
    let mut s = fixture();
    s.records.clear();
    let html = render(&s);
    check_balanced(&html);
    assert_eq!(html.matches("<svg").count(), 0);
    assert!(html.contains("class=\"nodata\""));
}

#[test]
fn write_report_writes_both_files_and_points_latest_at_the_run() {
    let root = tempfile::tempdir().unwrap();
    let mut s = fixture();
    let report = write_report(root.path(), &s).unwrap();
    assert_eq!(report, root.path().join("fixture-run").join(REPORT_FILE));
    let latest = root.path().join("latest");
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        std::path::Path::new("fixture-run")
    );
    assert_eq!(Summary::read(&latest.join(SUMMARY_FILE)).unwrap(), s);

    s.run_id = "second-run".into();
    write_report(root.path(), &s).unwrap();
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        std::path::Path::new("second-run")
    );
    let html = std::fs::read_to_string(latest.join(REPORT_FILE)).unwrap();
    assert!(html.contains("second-run"));
}

#[test]
fn render_survives_degenerate_figures() {
    let mut s = fixture();
    for (i, r) in s.records.iter_mut().enumerate() {
        match i % 4 {
            0 => {
                r.throughput_rps = f64::NAN;
                r.latency_curve = vec![(50.0, 0)];
                r.allowed_series = vec![SeriesPoint::default()];
            }
            1 => {
                r.throughput_rps = 0.0;
                r.latency_curve = vec![(99.99, u64::MAX / 4)];
                r.timeline = vec![TimelinePoint::default()];
            }
            2 => {
                r.accuracy_error_pct = Some(f64::INFINITY);
                r.spread = None;
                r.per_replica.clear();
            }
            _ => {
                r.rate_levels
                    .iter_mut()
                    .for_each(|l| l.achieved_rps = f64::NAN);
                r.outage = Some(Outage {
                    killed_at_ms: 5_000,
                    restarted_at_ms: 1_000,
                    enforcement_resumed_at_ms: None,
                    fallback_ended_at_ms: None,
                });
            }
        }
    }
    let html = render(&s);
    check_balanced(&html);
    for store in STORES {
        assert!(html.contains(store));
    }
}

#[test]
fn rerender_rewrites_the_report_beside_the_summary() {
    let root = tempfile::tempdir().unwrap();
    let s = fixture();
    let report = write_report(root.path(), &s).unwrap();
    std::fs::write(&report, "stale").unwrap();
    let summary = report.with_file_name(SUMMARY_FILE);
    assert_eq!(rateguard_report::rerender(&summary).unwrap(), report);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), render(&s));
    assert!(rateguard_report::rerender(&root.path().join("nope.json")).is_err());
}

#[test]
fn the_cli_rerenders_a_run() {
    let root = tempfile::tempdir().unwrap();
    let report = write_report(root.path(), &fixture()).unwrap();
    std::fs::remove_file(&report).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rateguard-report"))
        .arg(report.with_file_name(SUMMARY_FILE))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.is_file());
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_rateguard-report"))
        .arg(root.path().join("absent.json"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("absent.json"));
}

/// The `<tr>` of the figures table for (`store`, `scenario`).
fn figures_row<'a>(html: &'a str, store: &str, scenario: &str) -> &'a str {
    let key = format!("{store}</td><td class=\"l\">{scenario}</td>");
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no figures row for {store}/{scenario}"));
    let start = html[..at].rfind("<tr>").unwrap();
    let end = at + html[at..].find("</tr>").unwrap();
    &html[start..end]
}

#[test]
fn script_calls_per_request_counts_evalsha_and_eval() {
    let s = fixture();
    let r = record(&s, "redis-pipelined", "burst").unwrap();
    assert_eq!(r.script_calls_per_request(), Some(0.4));
    let mut r = r.clone();
    r.store_command_calls.insert("eval".into(), 100);
    assert_eq!(r.script_calls_per_request(), Some(0.5));
    assert_eq!(
        record(&s, "memory", "burst")
            .unwrap()
            .script_calls_per_request(),
        None
    );
    r.requests = 0;
    assert_eq!(r.script_calls_per_request(), None);
}

#[test]
fn render_shows_round_trips_beside_all_commands() {
    let html = render(&fixture());
    // The table: one column each, per (store, scenario).
    assert!(html.contains("<th>round trips / req</th>"));
    assert!(html.contains("<th>all Redis cmds / req</th>"));
    // redis-pipelined burst: 400 calls for 1 000 requests; 400·3 + 100 SETs.
    let row = figures_row(&html, "redis-pipelined", "burst");
    assert!(row.contains("<td>0.40</td><td>1.30</td>"), "{row}");
    let row = figures_row(&html, "redis-lua", "burst");
    assert!(row.contains("<td>1.00</td><td>3.10</td>"), "{row}");
    let row = figures_row(&html, "memory", "burst");
    assert!(
        row.contains("<td>0</td><td>–</td><td>–</td><td>–</td>"),
        "{row}"
    );
    // The chart: both bars per store, labelled apart.
    let chart = &html[html
        .find("<h2>Redis round trips and commands per request</h2>")
        .expect("commands section")..];
    let chart = &chart[..chart.find("</figure>").unwrap()];
    assert_eq!(chart.matches("<svg").count(), 1);
    for store in ["redis-lua", "redis-pipelined", "fred-cluster"] {
        assert!(chart.contains(&format!("{store}: script calls (round trips)")));
        assert!(chart.contains(&format!("{store}: all commands")));
    }
    assert!(!chart.contains("memory:"), "memory has no Redis commands");
}

#[test]
fn render_shows_failed_open() {
    let html = render(&fixture());
    assert!(html.contains("<th>failed open</th>"));
    // Figures table: the column before the two Redis columns.
    let row = figures_row(&html, "redis-lua", "store-outage");
    assert!(row.contains("<td>702</td><td>–</td><td>–</td>"), "{row}");
    let row = figures_row(&html, "memory", "burst");
    assert!(row.contains("<td>0</td><td>–</td><td>–</td>"), "{row}");
    // Outage table, outage caption and findings, per store.
    assert!(html.contains("<th>failed open (whole scenario)</th>"));
    for (store, n) in [
        ("redis-lua", 702),
        ("redis-pipelined", 703),
        ("fred-cluster", 704),
    ] {
        let section = &html[html
            .find(&format!("<h2>Store outage: {store}, on_error = allow</h2>"))
            .unwrap_or_else(|| panic!("{store} outage section"))..];
        let caption = &section[..section.find("</figcaption>").unwrap()];
        assert!(
            caption.contains(&format!("{n} in 1 run.")),
            "{store} caption"
        );
        assert!(
            html.contains(&format!("<td>{n} in 1 run</td></tr>")),
            "{store} row"
        );
        assert!(html.contains(&format!(
            "The gateways failed open (let requests through without the store) {n} in 1 run."
        )));
    }
    // Not measured: said so, not shown as zero.
    let mut s = fixture();
    s.records.iter_mut().for_each(|r| r.failed_open = None);
    let html = render(&s);
    assert!(html.contains("Failed open: not measured in this run."));
    assert!(!html.contains("in 1 run"));
}

#[test]
fn choice_names_the_round_trip_difference_from_the_data() {
    let s = fixture();
    let html = render(&s);
    let choice = &html[html.find("<b>Held the limit</b>").unwrap()..];
    let choice = &choice[..choice.find("</li>").unwrap()];
    assert!(
        choice.contains(
            "Round trips to Redis differ (Lua script calls per request, fewest first, where they \
             differ by more than 5 %): burst (redis-pipelined 0.40, redis-lua 1.00, fred-cluster 1.00)."
        ),
        "{choice}"
    );
    assert!(choice.contains("Level (within 5 %) on sustained, capacity, throughput, distribution."));

    // One call per request everywhere: the finding says they are level.
    let mut level = s.clone();
    for r in &mut level.records {
        if !r.store_command_calls.is_empty() {
            r.store_command_calls.insert("evalsha".into(), r.requests);
        }
    }
    let html = render(&level);
    assert!(!html.contains("Round trips to Redis differ"));
    assert!(html.contains(
        "Round trips to Redis (Lua script calls per request) were level, within 5 %, in every \
         scenario (burst, sustained, capacity, throughput, distribution)"
    ));

    // No per-command counts: nothing is claimed.
    let mut none = s.clone();
    none.records
        .iter_mut()
        .for_each(|r| r.store_command_calls.clear());
    assert!(!render(&none).contains("Round trips to Redis"));
}

#[test]
fn rls_table_has_a_row_per_store_beside_the_gateway_capacity() {
    let mut s = fixture();
    assert!(!render(&s).contains("Envoy RLS path"), "no rls, no section");
    s.settings.rls_stores = vec![StoreKind::RedisLua];
    let key = s
        .settings
        .planned()
        .into_iter()
        .find(|k| k.subject.frontend == Frontend::Rls)
        .expect("an rls key");
    assert_eq!(key.scenario, ScenarioId::Capacity);
    s.records.push(fixture_record(key, 2));
    assert_eq!(s.missing(), Vec::<String>::new());
    let html = render(&s);
    check_balanced(&html);
    let heading = "<h2>Envoy RLS path: decisions/s and CPU µs per decision per store</h2>";
    let table = &html[html.find(heading).expect("rls section")..];
    let table = &table[..table.find("</table>").unwrap()];
    let row = table
        .lines()
        .find(|l| l.contains("rls/redis-lua"))
        .expect("rls/redis-lua row");
    assert!(!row.ends_with("<td>–</td></tr>"), "gateway capacity: {row}");
}
