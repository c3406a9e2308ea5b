//! Redis killed and restarted under a replica: fail open, fail closed,
//! recovery. Each request is bounded by the store timeout, never a hang.

use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, RedisServer};

use crate::support::*;

fn replica(redis: &RedisServer, kind: &str, on_error: &str) -> (MockBackend, GatewayProcess) {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let text = config(
        backend.addr(),
        &redis_store(kind, &[redis.url()], on_error),
        2,
    );
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
    for i in 0..10 {
        let start = Instant::now();
        let r = get(&client, &url, &[("x-api-key", "a")]).await;
        // Real time: the store timeout is 200 ms; allow for a slow machine.
        assert!(
            start.elapsed() < Duration::from_secs(2),
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
        "rateguard_decisions_total{policy=\"default\",decision=\"failed_open\"}",
    )
    .await;
    assert_eq!(failed_open, 10.0);
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
        "rateguard_decisions_total{policy=\"default\",decision=\"failed_closed\"}",
    )
    .await;
    assert_eq!(closed, 1.0);
    redis.restart().unwrap();
    let r = until_enforced(&client, &url, "c").await;
    assert_eq!(r.status, 200, "served again once Redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let redis = RedisServer::start().unwrap();
    let (_backend, mut gw) = replica(&redis, "redis-lua", "allow");
    let url = format!("{}/slow?delay_ms=700", gw.url());
    let client = client_from("127.0.0.2");
    let in_flight = tokio::spawn(async move { get(&client, &url, &[("x-api-key", "d")]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        gw.terminate(Duration::from_secs(5)),
        "exits by itself after draining"
    );
    assert_eq!(in_flight.await.unwrap().status, 200);
    assert!(gw.log().contains("Gateway stopped."), "{}", gw.log());
}
