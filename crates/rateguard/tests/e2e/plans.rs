//! Issue 24 §1 against real processes: keys on plans `free` (capacity 3)
//! and `pro` (capacity 10) on one route, three replicas on redis-lua
//! behind nginx, concurrent bursts: exactly 3 and 10; a key without a plan
//! and an unknown key (limited as its IP) get the policy's 5;
//! `RateLimit-Policy`, the 429 body and the metrics say which plan
//! applied. Then the keys file moves `free-key` to `pro` and every
//! replica (`watch_config`) applies the new quota to the same bucket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisServer};

use crate::support::*;

/// SHA-256 of `free-key`, `pro-key` and `plain-key`.
const FREE: &str = "0c7e232ca6aa55ab05a0287b1c4198c7b4275500bce25c40b5a6aa7d564d3c45";
const PRO: &str = "344914c72e5b6734f125bc9779485eb91b91f7bc43c037cc7b109a1678c852b9";
const PLAIN: &str = "2b5cde0108a957d90d131d664db092b0b604ee9741ef89e937ebc526be94cc57";

const PLANS: &str = r#"
[[plans]]
name = "free"
  [[plans.limits]]
  limit = "client"
  capacity = 3
  refill_per_sec = 0.001

[[plans]]
name = "pro"
  [[plans.limits]]
  limit = "client"
  policy = "default"
  capacity = 10
  refill_per_sec = 0.001
"#;

/// `rateguard_decisions_total{policy="default",limit="client",decision,plan}`
/// summed over the replicas.
async fn decisions(gateways: &[GatewayProcess], decision: &str, plan: &str) -> f64 {
    let line = format!(
        "rateguard_decisions_total{{policy=\"default\",limit=\"client\",decision=\"{decision}\",plan=\"{plan}\"}}"
    );
    let mut sum = 0.0;
    for g in gateways {
        sum += metric(g, &line).await;
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plans_hold_exactly_across_three_replicas_and_follow_the_keys_file() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("{FREE} free\n{PRO} pro\n{PLAIN}\n")).unwrap();
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let policies = format!("{}{PLANS}", default_policy(5));
    let text = config_text(
        backend.addr(),
        "shutdown_grace_ms = 2000\nwatch_config = true",
        &store,
        &policies,
    );
    let keys_file = keys.to_str().unwrap();
    let gateways: Vec<GatewayProcess> = (1..=3)
        .map(|i| {
            let id = format!("gw-{i}");
            GatewayProcess::start_with_env(
                binary(),
                &text,
                &[
                    ("RATEGUARD_SERVER_REPLICA_ID", &id),
                    ("RATEGUARD_IDENTITY_API_KEYS_FILE", keys_file),
                ],
            )
            .expect("gateway replica")
        })
        .collect();
    let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
    let nginx = Nginx::start(&addrs).expect("nginx");
    let url = format!("{}/hello", nginx.url());

    for (key, allowed) in [("free-key", 3), ("pro-key", 10), ("plain-key", 5)] {
        let (statuses, replicas) = burst(&url, key, 60).await;
        assert_eq!(
            statuses,
            BTreeMap::from([(200, allowed), (429, 60 - allowed)]),
            "{key}"
        );
        assert_eq!(replicas.len(), 3, "{key}: every replica answered");
    }
    // Invented keys are limited as their IP, at the policy's quota.
    let (invented, _) = burst_from("127.0.0.3", &url, 60, |i| format!("invented-{i}")).await;
    assert_eq!(invented, BTreeMap::from([(200, 5), (429, 55)]));

    let client = client_from("127.0.0.2");
    for (key, plan, q) in [("free-key", Some("free"), 3), ("pro-key", Some("pro"), 10)] {
        let r = get(&client, &url, &[("x-api-key", key)]).await;
        assert_eq!(r.status, 429, "{key}");
        assert_eq!(
            r.header("ratelimit-policy"),
            Some(format!("\"default\";q={q};w={}", q * 1000).as_str()),
            "{key}"
        );
        assert_eq!(r.json()["plan"].as_str(), plan, "{key}");
    }
    let r = get(&client, &url, &[("x-api-key", "plain-key")]).await;
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=5;w=5000"));
    assert!(r.json().get("plan").is_none(), "no plan, no \"plan\"");
    assert_eq!(decisions(&gateways, "allowed", "pro").await, 10.0);
    assert_eq!(decisions(&gateways, "allowed", "free").await, 3.0);

    // free-key moves to pro: its bucket keeps its 3 spent tokens, so 7
    // more pass under the new quota, on every replica, without a reload.
    std::fs::write(&keys, format!("{FREE} pro\n{PRO} pro\n{PLAIN}\n")).unwrap();
    let moved = Instant::now();
    for g in &gateways {
        loop {
            let r = get(
                &client_from("127.0.0.2"),
                &format!("http://{}/hello", g.addr()),
                &[("x-api-key", "free-key")],
            )
            .await;
            if r.status == 200 {
                assert_eq!(
                    r.header("ratelimit-policy"),
                    Some("\"default\";q=10;w=10000")
                );
                break;
            }
            assert_eq!(r.json()["plan"], "free");
            assert!(
                moved.elapsed() < Duration::from_secs(5),
                "{} never applied the new plan",
                g.addr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // 3 of the 7 went to the probes above: 4 left, whichever replica.
    let (statuses, _) = burst(&url, "free-key", 20).await;
    assert_eq!(statuses, BTreeMap::from([(200, 4), (429, 16)]));
    drop(nginx);
}
