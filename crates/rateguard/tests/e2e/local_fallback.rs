//! `on_error = "local"` with Redis killed (issue 12 §2): each replica
//! enforces its `1/replicas_hint` share of every limit alone, counted as
//! `local_fallback`, and goes back to Redis once it answers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, RedisServer};

use crate::support::*;

/// `[store]` on `redis` with `on_error = "local"` and `replicas_hint`.
fn local_store(redis: &RedisServer, replicas_hint: u32) -> String {
    format!(
        "{}\nreplicas_hint = {replicas_hint}",
        redis_store("redis-lua", &[redis.url()], "local", FAILURE_BUDGET_MS)
    )
}

/// Decisions of one replica with `decision` (`allowed`, `local_fallback`, ...).
async fn decisions(gw: &GatewayProcess, decision: &str) -> f64 {
    metric(
        gw,
        &format!(
            "rateguard_decisions_total{{policy=\"default\",limit=\"client\",decision=\"{decision}\"}} "
        ),
    )
    .await
}

/// `n` sequential requests with `x-api-key: key`: status → count; every
/// answer must carry `RateLimit` (a decision, local or shared).
async fn sequential(url: &str, key: &str, n: usize) -> BTreeMap<u16, usize> {
    let client = client_from("127.0.0.2");
    let mut statuses = BTreeMap::new();
    for _ in 0..n {
        let r = get(&client, url, &[("x-api-key", key)]).await;
        assert!(r.header("ratelimit").is_some(), "{:?}", r.headers);
        *statuses.entry(r.status.as_u16()).or_default() += 1;
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_enforces_the_whole_limit_alone_then_returns_to_redis() {
    let mut redis = RedisServer::start().unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let text = config(backend.addr(), &local_store(&redis, 1), 5);
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    let url = format!("{}/x", gw.url());

    redis.kill().unwrap();
    let statuses = sequential(&url, "a", 20).await;
    assert_eq!(statuses, BTreeMap::from([(200, 5), (429, 15)]));
    assert_eq!(decisions(&gw, "local_fallback").await, 20.0);
    assert_eq!(decisions(&gw, "allowed").await, 0.0);

    redis.restart().unwrap();
    // Back on Redis: a decision counted as the store's, not a local one.
    let client = client_from("127.0.0.3");
    let deadline = Instant::now() + Duration::from_secs(15);
    while decisions(&gw, "allowed").await == 0.0 {
        assert!(Instant::now() < deadline, "not back on Redis: {}", gw.log());
        get(&client, &url, &[("x-api-key", "probe")]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let local = decisions(&gw, "local_fallback").await;
    // A fresh client through Redis: exactly its capacity, nothing local.
    assert_eq!(
        sequential(&url, "c", 7).await,
        BTreeMap::from([(200, 5), (429, 2)])
    );
    assert_eq!(decisions(&gw, "local_fallback").await, local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_replicas_hint_3_admit_at_most_the_limit_through_nginx() {
    let mut redis = RedisServer::start().unwrap();
    let stack = stack(&local_store(&redis, 3), 3, 6);
    redis.kill().unwrap();
    let url = format!("{}/x", stack.nginx.url());
    let statuses = sequential(&url, "k", 30).await;
    let allowed = statuses.get(&200).copied().unwrap_or(0);
    println!("local fallback, 3 replicas, capacity 6, replicas_hint 3: {statuses:?}");
    // Each replica admits ⌊6/3⌋ = 2 of the client's requests it sees.
    assert!(allowed <= 6, "{statuses:?}");
    let mut local = 0.0;
    for gw in &stack.gateways {
        local += decisions(gw, "local_fallback").await;
    }
    assert_eq!(local, 30.0);
    // nginx spreads 30 requests over the 3: each saw at least 2 of them.
    assert_eq!(allowed, 6, "{statuses:?}");
}
