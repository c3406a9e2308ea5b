//! Enforcement back within a second of Redis returning, for each Redis
//! store kind, without a probe storm while it is down (issue 12 §3).
//!
//! One replica under steady traffic; the Redis node holding the test's
//! buckets is killed for [`OUTAGE`] and restarted (a standalone server, or
//! the cluster's node 0 as the lab does). From the moment it answers again
//! (`PING`, or `cluster_state:ok` everywhere), a `429` decided through the
//! store must come back within [`RECOVERY`]. Each round of the traffic uses
//! a fresh client, so a `429` is the store's own denial (the first request
//! spent the only token through the store, the second was denied there),
//! never an answer cached before the outage. Prints each figure; rerun with
//! `cargo test -p rateguard --test e2e recovery -- --nocapture`.

use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, RedisCluster, RedisServer};
use tokio::sync::watch;

use crate::support::*;

/// How long the Redis node stays down: long enough for the breaker's
/// cooldown to reach its cap (100, 200, then 250 ms).
const OUTAGE: Duration = Duration::from_secs(2);
/// The target: a store decision again within this of Redis answering.
const RECOVERY: Duration = Duration::from_secs(1);
/// Pause between two rounds of the traffic.
const PACE: Duration = Duration::from_millis(10);
/// Clients whose buckets live on the node that goes down: one per round
/// after the restart (at most `RECOVERY / PACE`), reused while it is down.
const CLIENTS: usize = 128;
/// Consecutive failures that open the breaker, and the default longest
/// pause between its probes (`store.breaker_max_cooldown_ms`).
const THRESHOLD: f64 = 5.0;
const MAX_COOLDOWN_MS: f64 = 250.0;

fn replica(urls: &[String], kind: &str) -> (MockBackend, GatewayProcess) {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    // A budget far above a healthy decision on a loaded machine, well
    // under the recovery target.
    let store = redis_store(kind, urls, "allow", 200);
    let gw = GatewayProcess::start(binary(), &config(backend.addr(), &store, 1)).unwrap();
    (backend, gw)
}

/// Rounds of two requests per client until `stop`; publishes when the
/// last `429` carrying `RateLimit` came back.
async fn traffic(
    url: String,
    clients: Vec<String>,
    denied: watch::Sender<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) {
    let client = client_from("127.0.0.2");
    let mut tick = tokio::time::interval(PACE);
    for key in clients.iter().cycle() {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        for _ in 0..2 {
            let r = get(&client, &url, &[("x-api-key", key)]).await;
            if r.status == 429 && r.header("ratelimit").is_some() {
                denied.send_replace(Some(Instant::now()));
            }
        }
    }
}

/// Kills the node with `down`, waits [`OUTAGE`], restarts it with `up`
/// (which returns once it answers), and asserts a store `429` within
/// [`RECOVERY`] and a bounded number of store calls meanwhile.
async fn enforced_again_within_a_second(
    kind: &str,
    gw: &GatewayProcess,
    clients: Vec<String>,
    down: impl FnOnce(),
    up: impl FnOnce(),
) {
    let url = format!("{}/x", gw.url());
    let (denied_tx, mut denied) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let load = tokio::spawn(traffic(url, clients, denied_tx, stop));
    denied.wait_for(Option::is_some).await.unwrap();
    let reached_store = || async {
        metric(gw, "rateguard_store_errors_total{error=\"unavailable\"}").await
            + metric(gw, "rateguard_store_errors_total{error=\"timeout\"}").await
    };
    let before = reached_store().await;
    let killed = Instant::now();
    tokio::task::block_in_place(down);
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(up);
    let back = Instant::now();
    let enforced = tokio::time::timeout_at(
        (back + RECOVERY).into(),
        denied.wait_for(|at| at.is_some_and(|t| t > back)),
    )
    .await
    .is_ok();
    let after = Instant::now();
    stop_tx.send_replace(true);
    load.await.unwrap();
    assert!(
        enforced,
        "{kind}: no 429 through the store within {RECOVERY:?} of Redis answering"
    );
    println!(
        "{kind}: a 429 through the store {} ms after Redis answered",
        (after - back).as_millis()
    );
    // While it was down, only the probes reached it: at most one per
    // breaker cooldown once the breaker opened (plus one probe after).
    let calls = reached_store().await - before;
    let down_ms = (after - killed).as_secs_f64() * 1000.0;
    let bound = THRESHOLD + (down_ms / MAX_COOLDOWN_MS).ceil() + 1.0;
    assert!(
        calls <= bound,
        "{kind}: {calls} failed store calls in {down_ms:.0} ms, over {bound}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_enforces_again_within_a_second() {
    standalone("redis-lua").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_enforces_again_within_a_second() {
    standalone("redis-pipelined").await;
}

async fn standalone(kind: &str) {
    let mut redis = RedisServer::start().unwrap();
    let (_backend, gw) = replica(&[redis.url()], kind);
    let clients = (0..CLIENTS).map(|i| format!("recovery-{i}")).collect();
    let redis = std::sync::Mutex::new(&mut redis);
    enforced_again_within_a_second(
        kind,
        &gw,
        clients,
        || redis.lock().unwrap().kill().unwrap(),
        || redis.lock().unwrap().restart().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fred_cluster_enforces_again_within_a_second() {
    let mut cluster = RedisCluster::start(3).unwrap();
    let (_backend, gw) = replica(&cluster.urls(), "fred-cluster");
    let clients = clients_on_node_0(&cluster, &gw).await;
    let cluster = std::sync::Mutex::new(&mut cluster);
    enforced_again_within_a_second(
        "fred-cluster",
        &gw,
        clients,
        || cluster.lock().unwrap().kill_node(0).unwrap(),
        || cluster.lock().unwrap().restart_node(0).unwrap(),
    )
    .await;
}

/// [`CLIENTS`] API keys whose buckets node 0 holds: one request each, kept
/// when node 0's key count grew.
async fn clients_on_node_0(cluster: &RedisCluster, gw: &GatewayProcess) -> Vec<String> {
    let client = client_from("127.0.0.2");
    let url = format!("{}/x", gw.url());
    let keys = || async { cluster.cli(0, &["DBSIZE"]).await.unwrap() };
    let mut found = Vec::new();
    for i in 0.. {
        let key = format!("recovery-{i}");
        let before = keys().await;
        let r = get(&client, &url, &[("x-api-key", &key)]).await;
        assert!(r.header("ratelimit").is_some(), "decided by the cluster");
        if keys().await != before {
            found.push(key);
        }
        if found.len() == CLIENTS {
            break;
        }
    }
    found
}
