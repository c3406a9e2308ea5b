//! Issue 9 §2 against real processes: layered limits hold exactly across
//! three replicas behind nginx for every Redis store kind (200 concurrent
//! requests per phase, failing closed with a generous budget, so a slow
//! decision shows as a 503, never as a silent fail-open), and the deny
//! cache keeps a flood of denials off Redis.
//!
//! One redis-server serves both standalone kinds in turn (flushed in
//! between), and the deny cache's checks after them.

use std::collections::BTreeMap;

use rateguard_testkit::{GatewayProcess, RedisCluster, RedisServer};

use crate::support::*;

/// A generous default; `login` with a per-client limit of 5 and a per-ip
/// limit of 8; `export` spending 5 of a per-ip 12 per request. No refill a
/// test could see.
fn policies() -> String {
    let login = layered_policy(
        "login",
        "path_prefix = \"/api/login\"\n",
        &[("per-client", "client", 5), ("per-ip", "ip", 8)],
    );
    let export = layered_policy(
        "export",
        "path_prefix = \"/api/export\"\ncost = 5\n",
        &[("per-ip", "ip", 12)],
    );
    policy("default", None, 1000, 100.0) + &login + &export
}

/// `rateguard_decisions_total{policy="login",limit,decision}` summed over replicas.
async fn login_decisions(stack: &Stack, limit: &str, decision: &str) -> f64 {
    let line = format!(
        "rateguard_decisions_total{{policy=\"login\",limit=\"{limit}\",decision=\"{decision}\"}}"
    );
    let mut sum = 0.0;
    for g in &stack.gateways {
        sum += metric(g, &line).await;
    }
    sum
}

/// Key A sends 200 at once (5 allowed: its per-client limit); key B from
/// the same address 200 more (exactly 3: what A's allowed requests left of
/// the per-ip 8, since A's 195 denials spent nothing); 30 invented keys
/// from another address (8: the per-ip limit); cost 5 of 12 (2).
/// `exact_labels`: whether the reported limit is certain (not for
/// fred-cluster, whose slot-by-slot spends and refunds let either limit
/// look tighter for a moment; the counts are exact all the same).
async fn layered_limits_hold_across_three_replicas(store: &str, exact_labels: bool) {
    let stack = stack_with(store, 3, &policies());
    let url = format!("{}/api/login", stack.nginx.url());
    let (a, replicas) = burst_from("127.0.0.2", &url, 200, |_| "A".into()).await;
    assert_eq!(a, BTreeMap::from([(200, 5), (429, 195)]), "{store}: key A");
    assert_eq!(
        replicas.keys().cloned().collect::<Vec<_>>(),
        ["gw-1", "gw-2", "gw-3"],
        "{store}: nginx spreads the burst over every replica: {replicas:?}"
    );
    let client = client_from("127.0.0.2");
    let policy = "\"login.per-client\";q=5;w=5000, \"login.per-ip\";q=8;w=8000";
    // What a denied client reads, whichever replica answers (a denied
    // request spends nothing).
    let denied = |key: &'static str, limit: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = get(&client, &url, &[("x-api-key", key)]).await;
            assert_eq!(r.status, 429, "{key}");
            assert_eq!(r.json()["limit"], limit, "{key}");
            // One token per 1000 s; a few seconds may have gone by.
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((990..=1000).contains(&retry), "{key}: {retry}");
            assert_eq!(r.header("ratelimit-policy"), Some(policy), "{key}");
        }
    };
    denied("A", "login.per-client").await;
    let (b, _) = burst_from("127.0.0.2", &url, 200, |_| "B".into()).await;
    assert_eq!(b, BTreeMap::from([(200, 3), (429, 197)]), "{store}: key B");
    let mut totals = [0.0; 2];
    for (total, decision) in totals.iter_mut().zip(["allowed", "denied"]) {
        *total = login_decisions(&stack, "per-client", decision).await
            + login_decisions(&stack, "per-ip", decision).await;
    }
    assert_eq!(totals, [8.0, 393.0], "{store}: allowed, denied");
    if exact_labels {
        // A's allowed requests left fewest per-client tokens, B's fewest
        // per-ip ones; A was denied by per-client, B by per-ip.
        for (limit, decision, n) in [
            ("per-client", "allowed", 5.0),
            ("per-ip", "allowed", 3.0),
            ("per-client", "denied", 196.0),
            ("per-ip", "denied", 197.0),
        ] {
            let got = login_decisions(&stack, limit, decision).await;
            assert_eq!(got, n, "{store}: {limit} {decision}");
        }
    }
    denied("B", "login.per-ip").await;
    let (invented, _) = burst_from("127.0.0.3", &url, 30, |i| format!("invented-{i}")).await;
    assert_eq!(
        invented,
        BTreeMap::from([(200, 8), (429, 22)]),
        "{store}: invented keys"
    );
    let export = format!("{}/api/export", stack.nginx.url());
    let (cost, _) = burst_from("127.0.0.4", &export, 6, |i| format!("e{i}")).await;
    assert_eq!(
        cost,
        BTreeMap::from([(200, 2), (429, 4)]),
        "{store}: cost 5 of 12"
    );
}

/// One replica, capacity 2, `n` sequential requests with one key: the
/// first denial asks Redis, the rest are answered by the deny cache
/// (unless `deny_cache = false`). Returns (script calls, cache hits).
async fn flood(redis: &RedisServer, deny_cache: bool, n: usize) -> (u64, f64) {
    redis.cli(&["CONFIG", "RESETSTAT"]).await.unwrap();
    let backend = rateguard_testkit::MockBackend::start(binary(), "b1").unwrap();
    let mut store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    store.push_str(&format!("\ndeny_cache = {deny_cache}"));
    let policies = policy("flood", None, 2, 0.001);
    let text = config_text(backend.addr(), "", &store, &policies);
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    let client = client_from("127.0.0.2");
    let key = format!("flood-{deny_cache}");
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..n {
        let r = get(&client, &format!("{}/x", gw.url()), &[("x-api-key", &key)]).await;
        *statuses.entry(r.status.as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 2), (429, n - 2)]));
    let calls = command_calls(redis, "evalsha").await + command_calls(redis, "eval").await;
    let hits = metric(&gw, "rateguard_deny_cache_hits_total{policy=\"flood\"}").await;
    (calls, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_limits_and_the_deny_cache_on_one_redis() {
    let redis = RedisServer::start().unwrap();
    for kind in ["redis-lua", "redis-pipelined"] {
        redis.cli(&["FLUSHALL"]).await.unwrap();
        let store = redis_store(kind, &[redis.url()], "deny", EXACT_BUDGET_MS);
        layered_limits_hold_across_three_replicas(&store, true).await;
    }
    // 2 allowed and one denial reach Redis; the other 197 denials do not.
    assert_eq!(flood(&redis, true, 200).await, (3, 197.0));
    // Without the cache every request is a script call.
    assert_eq!(flood(&redis, false, 50).await, (50, 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fred_cluster_holds_layered_limits_across_replicas() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = redis_store("fred-cluster", &cluster.urls(), "deny", EXACT_BUDGET_MS);
    layered_limits_hold_across_three_replicas(&store, false).await;
}
