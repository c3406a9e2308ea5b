//! Redis killed, restarted, refusing writes, or absent at start-up under a
//! replica: fail open, fail closed, recovery, and how each failure is
//! counted. Each request is bounded by the store budget, never a hang.

use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, RedisServer};

use crate::support::*;

fn replica(redis: &RedisServer, kind: &str, on_error: &str) -> (MockBackend, GatewayProcess) {
    replica_with(redis, kind, on_error, "")
}

/// [`replica`] with extra `[store]` lines.
fn replica_with(
    redis: &RedisServer,
    kind: &str,
    on_error: &str,
    store_extra: &str,
) -> (MockBackend, GatewayProcess) {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let store = redis_store(kind, &[redis.url()], on_error, FAILURE_BUDGET_MS);
    let text = config(backend.addr(), &format!("{store}\n{store_extra}"), 2);
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    (backend, gw)
}

/// Requests with `key` until one is decided by the store again (it carries
/// `RateLimit`), within 15 s.
async fn until_enforced(client: &HttpClient, url: &str, key: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(client, url, &[("x-api-key", key)]).await;
        if r.header("ratelimit").is_some() || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fail_open_then_recover(kind: &str) {
    let mut redis = RedisServer::start().unwrap();
    let (_backend, gw) = replica(&redis, kind, "allow");
    let url = format!("{}/x", gw.url());
    let client = client_from("127.0.0.2");
    let codes = [
        get(&client, &url, &[("x-api-key", "a")]).await.status,
        get(&client, &url, &[("x-api-key", "a")]).await.status,
        get(&client, &url, &[("x-api-key", "a")]).await.status,
    ];
    assert_eq!(
        codes.map(|c| c.as_u16()),
        [200, 200, 429],
        "{kind}: enforcing"
    );

    redis.kill().unwrap();
    // The store denied "a" with a wait of ~1000 s: the deny cache answers
    // for it without Redis (exact: the bucket would deny it anyway).
    let cached = get(&client, &url, &[("x-api-key", "a")]).await;
    assert_eq!(cached.status, 429, "{kind}: a cached denial holds");
    // A key the store has not denied fails open.
    for i in 0..10 {
        let start = Instant::now();
        let r = get(&client, &url, &[("x-api-key", "c")]).await;
        // Bounded by the store budget (plus slack for a slow machine).
        assert!(
            start.elapsed() < Duration::from_millis(FAILURE_BUDGET_MS + 2000),
            "{kind}: request {i} took {:?}",
            start.elapsed()
        );
        assert_eq!(r.status, 200, "{kind}: fails open (request {i})");
        assert_eq!(r.json()["backend"], "b1");
        assert!(
            r.header("ratelimit").is_none(),
            "no limit headers without a decision"
        );
    }
    let failed_open = metric(
        &gw,
        "rateguard_decisions_total{policy=\"default\",limit=\"\",decision=\"failed_open\"}",
    )
    .await;
    assert_eq!(failed_open, 10.0);
    // Every failure is counted once, by kind: the first ones reach Redis
    // (refused or timed out), then the circuit breaker answers for it.
    let errors = |kind: &'static str| {
        let gw = &gw;
        async move {
            metric(
                gw,
                &format!("rateguard_store_errors_total{{error=\"{kind}\"}}"),
            )
            .await
        }
    };
    let (unavailable, timeout) = (errors("unavailable").await, errors("timeout").await);
    let (circuit_open, backend) = (errors("circuit_open").await, errors("backend").await);
    assert_eq!(
        unavailable + timeout + circuit_open + backend,
        10.0,
        "{kind}"
    );
    assert!(
        unavailable + timeout >= 5.0,
        "{kind}: the breaker opens after 5 failures"
    );
    assert!(circuit_open >= 1.0, "{kind}: then the open circuit answers");
    assert_eq!(backend, 0.0);
    let (status, health) = gw.admin_get("/healthz").await.unwrap();
    assert_eq!(status, 200);
    assert!(health.contains("\"reachable\":false"), "{health}");

    redis.restart().unwrap();
    let first = until_enforced(&client, &url, "b").await;
    assert_eq!(first.status, 200, "{kind}: enforcement resumes");
    assert_eq!(first.header("ratelimit"), Some("\"default\";r=1;t=1000"));
    let second = get(&client, &url, &[("x-api-key", "b")]).await;
    assert_eq!(second.header("ratelimit"), Some("\"default\";r=0;t=2000"));
    let third = get(&client, &url, &[("x-api-key", "b")]).await;
    assert_eq!(third.status, 429, "{kind}: limit enforced after recovery");
    let (_, health) = gw.admin_get("/healthz").await.unwrap();
    assert!(health.contains("\"reachable\":true"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_fails_open_and_recovers() {
    fail_open_then_recover("redis-lua").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_fails_open_and_recovers() {
    fail_open_then_recover("redis-pipelined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_answers_503_until_redis_is_back() {
    let mut redis = RedisServer::start().unwrap();
    let (_backend, gw) = replica(&redis, "redis-lua", "deny");
    let url = format!("{}/x", gw.url());
    let client = client_from("127.0.0.2");
    assert_eq!(get(&client, &url, &[("x-api-key", "c")]).await.status, 200);
    redis.kill().unwrap();
    let r = get(&client, &url, &[("x-api-key", "c")]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], "store_unavailable");
    assert!(
        r.header("x-backend").is_none(),
        "nothing reaches the backend"
    );
    let closed = metric(
        &gw,
        "rateguard_decisions_total{policy=\"default\",limit=\"\",decision=\"failed_closed\"}",
    )
    .await;
    assert_eq!(closed, 1.0);
    redis.restart().unwrap();
    let r = until_enforced(&client, &url, "c").await;
    assert_eq!(r.status, 200, "served again once Redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reply_from_redis_is_counted_as_backend_and_fails_open() {
    let redis = RedisServer::start().unwrap();
    let (_backend, gw) = replica(&redis, "redis-lua", "allow");
    let url = format!("{}/x", gw.url());
    let client = client_from("127.0.0.2");
    assert!(get(&client, &url, &[("x-api-key", "e")])
        .await
        .header("ratelimit")
        .is_some());
    // Redis now refuses every write (the script writes): an error reply.
    redis
        .cli(&["CONFIG", "SET", "min-replicas-to-write", "1"])
        .await
        .unwrap();
    for _ in 0..6 {
        let r = get(&client, &url, &[("x-api-key", "e")]).await;
        assert_eq!(r.status, 200, "fails open");
        assert!(r.header("ratelimit").is_none());
    }
    let backend = metric(&gw, "rateguard_store_errors_total{error=\"backend\"}").await;
    assert_eq!(backend, 6.0, "an error reply is not a connection failure");
    let open = metric(&gw, "rateguard_store_errors_total{error=\"circuit_open\"}").await;
    assert_eq!(open, 0.0, "error replies do not open the circuit");
    redis
        .cli(&["CONFIG", "SET", "min-replicas-to-write", "0"])
        .await
        .unwrap();
    let r = get(&client, &url, &[("x-api-key", "e")]).await;
    assert_eq!(
        r.header("ratelimit"),
        Some("\"default\";r=0;t=2000"),
        "enforced again"
    );
}

/// `Duration`'s `Debug` text (`287.5ms`, `1.6s`) as seconds.
fn debug_secs(text: &str) -> Option<f64> {
    let units = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)];
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| Some((text.strip_suffix(unit)?, *scale)))?;
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_max_cooldown_ms_caps_the_pause_between_probes() {
    const CAP_MS: f64 = 150.0;
    let mut redis = RedisServer::start().unwrap();
    let (_backend, gw) = replica_with(
        &redis,
        "redis-lua",
        "allow",
        "breaker_max_cooldown_ms = 150",
    );
    redis.kill().unwrap();
    // Each /healthz pings through the breaker: a failed probe, or the open
    // circuit saying when the next probe is due. With the default cap the
    // pause doubles 100, 200, then stays at 250 ms.
    let (mut probes, mut longest, mut opened) = (0, 0.0_f64, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while probes < 5 {
        assert!(Instant::now() < deadline, "only {probes} probes");
        let (_, body) = gw.admin_get("/healthz").await.unwrap();
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        let error = health["store"]["error"].as_str().unwrap_or("").to_owned();
        if let Some(next) = error.split("next probe in ").nth(1) {
            opened = true;
            longest = longest.max(debug_secs(next).unwrap_or_else(|| panic!("{error}")));
        } else if opened && !error.is_empty() {
            probes += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(longest > 0.0);
    assert!(
        longest * 1000.0 <= CAP_MS,
        "a probe was {longest} s away, over the {CAP_MS} ms cap"
    );
}

async fn starts_while_redis_is_down(kind: &str) {
    let mut redis = RedisServer::start().unwrap();
    redis.kill().unwrap();
    let (_backend, gw) = replica(&redis, kind, "allow");
    let url = format!("{}/x", gw.url());
    let client = client_from("127.0.0.2");
    for _ in 0..3 {
        let r = get(&client, &url, &[("x-api-key", "s")]).await;
        assert_eq!(r.status, 200, "{kind}: serves, failing open");
        assert!(r.header("ratelimit").is_none());
    }
    redis.restart().unwrap();
    let first = until_enforced(&client, &url, "s").await;
    assert_eq!(
        first.header("ratelimit"),
        Some("\"default\";r=1;t=1000"),
        "{kind}"
    );
    assert_eq!(get(&client, &url, &[("x-api-key", "s")]).await.status, 200);
    assert_eq!(
        get(&client, &url, &[("x-api-key", "s")]).await.status,
        429,
        "{kind}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_starts_while_redis_is_down() {
    starts_while_redis_is_down("redis-lua").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_starts_while_redis_is_down() {
    starts_while_redis_is_down("redis-pipelined").await;
}
