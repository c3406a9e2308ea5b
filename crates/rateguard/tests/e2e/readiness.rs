//! `/readyz` follows the store's reachability (a real `redis-server` killed,
//! restarted, then hung with SIGSTOP), while `/healthz` stays `200`
//! throughout; a hung Redis costs a probe the store budget, no more.

use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, RedisServer};

use crate::support::*;

/// Polls `/readyz` until it answers `want`, for at most 15 s; returns the
/// last (status, body).
async fn readyz_until(gw: &GatewayProcess, want: u16) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = gw.admin_get("/readyz").await.expect("admin port answers");
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        if status == want || Instant::now() > deadline {
            return (status, json);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_follows_the_store_and_healthz_stays_200() {
    let mut redis = RedisServer::start().unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let text = config(
        backend.addr(),
        &redis_store("redis-lua", &[redis.url()], "deny", FAILURE_BUDGET_MS),
        5,
    );
    let gw = GatewayProcess::start(binary(), &text).unwrap();

    let (status, ready) = readyz_until(&gw, 200).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"]["kind"], "redis-lua");

    redis.kill().unwrap();
    let (status, not_ready) = readyz_until(&gw, 503).await;
    assert_eq!(status, 503, "store down: not ready");
    assert_eq!(not_ready["status"], "not_ready");
    assert_eq!(not_ready["store"]["kind"], "redis-lua");
    let error = not_ready["store"]["error"].as_str().unwrap_or("");
    assert!(!error.is_empty(), "{not_ready}");
    let (status, health) = gw.admin_get("/healthz").await.unwrap();
    assert_eq!(status, 200, "still alive: {health}");
    assert!(health.contains("\"reachable\":false"), "{health}");

    redis.restart().unwrap();
    let (status, ready) = readyz_until(&gw, 200).await;
    assert_eq!(status, 200, "ready again once Redis is back: {ready}");
    assert_eq!(ready["status"], "ready");

    // Hung, not gone: connections open, nothing answers. /readyz answers
    // 503 once the store budget is spent, not when a TCP timeout fires.
    redis.freeze().unwrap();
    let start = Instant::now();
    let (status, body) = gw
        .admin_get("/readyz")
        .await
        .expect("answers while Redis hangs");
    let elapsed = start.elapsed();
    redis.thaw().unwrap();
    assert_eq!(status, 503, "{body}");
    let budget = Duration::from_millis(FAILURE_BUDGET_MS);
    assert!(
        body.contains("timed out") || body.contains("no answer within"),
        "{body}"
    );
    assert!(
        elapsed >= budget,
        "answered in {elapsed:?}, before the budget: {body}"
    );
    assert!(
        elapsed < budget + Duration::from_millis(2500),
        "took {elapsed:?}"
    );
    let (status, ready) = readyz_until(&gw, 200).await;
    assert_eq!(status, 200, "ready again once Redis runs again: {ready}");
}
