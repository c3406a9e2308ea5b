//! Three replicas behind nginx share one limit: a burst for one client is
//! allowed exactly `capacity` times, whichever replica answers. The store
//! fails closed with a generous budget ([`EXACT_BUDGET_MS`]): a slow decision
//! on a loaded machine shows up as a 503, never as a silent fail-open.

use rateguard_testkit::{RedisCluster, RedisServer};

use crate::support::*;

const CAPACITY: u32 = 25;
const BURST: usize = 90;

async fn exactly_capacity_across_three_replicas(store: &str) {
    let stack = stack(store, 3, CAPACITY);
    let url = format!("{}/api/burst", stack.nginx.url());
    let (statuses, replicas) = burst(&url, "burst-client", BURST).await;
    assert_eq!(
        statuses.get(&200).copied().unwrap_or(0),
        CAPACITY as usize,
        "{store}: {statuses:?}"
    );
    assert_eq!(
        statuses.get(&429).copied().unwrap_or(0),
        BURST - CAPACITY as usize
    );
    assert_eq!(
        replicas.keys().cloned().collect::<Vec<_>>(),
        ["gw-1", "gw-2", "gw-3"],
        "nginx spreads the burst over every replica: {replicas:?}"
    );
    // The decisions really were split between replicas.
    let mut allowed = 0.0;
    for g in &stack.gateways {
        allowed += metric(
            g,
            "rateguard_decisions_total{policy=\"default\",limit=\"client\",decision=\"allowed\"}",
        )
        .await;
    }
    assert_eq!(allowed, f64::from(CAPACITY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_holds_the_limit_across_replicas() {
    let redis = RedisServer::start().unwrap();
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    exactly_capacity_across_three_replicas(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_holds_the_limit_across_replicas() {
    let redis = RedisServer::start().unwrap();
    let store = redis_store("redis-pipelined", &[redis.url()], "deny", EXACT_BUDGET_MS);
    exactly_capacity_across_three_replicas(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fred_cluster_holds_the_limit_across_replicas() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = redis_store("fred-cluster", &cluster.urls(), "deny", EXACT_BUDGET_MS);
    exactly_capacity_across_three_replicas(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_limits_each_replica_separately() {
    // The embedded store is per process: the documented trade-off.
    let stack = stack("kind = \"memory\"", 3, 5);
    let url = format!("{}/api/burst", stack.nginx.url());
    let client = client_from("127.0.0.2");
    let mut allowed = 0;
    for _ in 0..30 {
        if get(&client, &url, &[("x-api-key", "m")]).await.status == 200 {
            allowed += 1;
        }
    }
    // Round robin gives each replica 10 requests; each admits its own 5.
    assert_eq!(allowed, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_the_client_is_the_address_nginx_saw() {
    let redis = RedisServer::start().unwrap();
    let stack = stack(
        &redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS),
        3,
        3,
    );
    let url = format!("{}/who", stack.nginx.url());
    // No API key: 127.0.0.2 is identified by address; its own
    // X-Forwarded-For is left of the hop nginx appends, so it is ignored.
    let client = client_from("127.0.0.2");
    for i in 0..3 {
        let spoof = format!("203.0.113.{i}");
        let r = get(&client, &url, &[("x-forwarded-for", &spoof)]).await;
        assert_eq!(r.status, 200, "request {i}");
        let xff = r.json()["headers"]["x-forwarded-for"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(xff, format!("{spoof}, 127.0.0.2, 127.0.0.1"));
        assert_eq!(r.header("x-backend"), Some("b1"));
        assert!(r.header("ratelimit").is_some());
    }
    let r = get(&client, &url, &[("x-forwarded-for", "203.0.113.99")]).await;
    assert_eq!(r.status, 429, "a new spoofed address buys no new bucket");
    assert_eq!(r.header("retry-after"), Some("1000"));
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=3;w=3000"));
    // Another client address has its own bucket.
    let r = get(&client_from("127.0.0.3"), &url, &[]).await;
    assert_eq!(r.status, 200);
}
