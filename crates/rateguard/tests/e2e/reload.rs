//! Hot reload by `SIGHUP` on real processes: `serve` replicas on a real
//! redis-server behind nginx, and `rateguard rls` asked over gRPC. Every
//! wait polls `/config`'s hash or `/metrics` with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use rateguard_testkit::{GatewayProcess, MockBackend, RedisServer, Signal};
use tokio::sync::watch;

use crate::support::*;

/// How long a reload may take to show (it is one file read and a swap).
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

/// Polls `probe` every 20 ms until it gives `Some`, for at most
/// [`RELOAD_DEADLINE`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "not within {RELOAD_DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /config` of a replica.
async fn active_config(gw: &GatewayProcess) -> serde_json::Value {
    let (status, body) = gw.admin_get("/config").await.expect("GET /config");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn hash(gw: &GatewayProcess) -> String {
    active_config(gw).await["hash"].as_str().unwrap().to_owned()
}

/// Rewrites `gw`'s config file with `text`, sends `SIGHUP`, and waits
/// until the reload counter for `result` went up by one.
async fn reload(gw: &mut GatewayProcess, text: &str, result: &str) {
    let line = format!("rateguard_config_reloads_total{{result=\"{result}\"}} ");
    let before = metric(gw, &line).await;
    std::fs::write(gw.config_path(), text).unwrap();
    gw.signal(Signal::SIGHUP).unwrap();
    let gw = &*gw;
    eventually(&format!("{line}> {before}"), || async {
        (metric(gw, &line).await > before).then_some(())
    })
    .await;
}

/// A replica's config on `redis` with one default policy of `capacity`
/// (a refill so slow that no test sees one: counts are exact).
fn redis_config(backend: &MockBackend, redis: &str, capacity: u32) -> String {
    config_text(
        backend.addr(),
        "shutdown_grace_ms = 2000",
        &redis_store("redis-lua", &[redis.to_owned()], "deny", EXACT_BUDGET_MS),
        &default_policy(capacity),
    )
}

/// Requests from `source` until `stop`; counts 200 and 429 per phase
/// (before / after `phase` turned true) and everything else as failed.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    ok: [usize; 2],
    limited: [usize; 2],
    failed: usize,
}

fn steady_traffic(
    url: String,
    source: &'static str,
    phase: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> (
    watch::Receiver<Traffic>,
    tokio::task::JoinHandle<(Traffic, Vec<String>)>,
) {
    let (tx, rx) = watch::channel(Traffic::default());
    let task = tokio::spawn(async move {
        let client = client_from(source);
        let mut t = Traffic::default();
        let mut failures = Vec::new();
        while !*stop.borrow() {
            // The phase is read before the request is sent: a request
            // counted "after" started after the reload showed.
            let after = usize::from(*phase.borrow());
            match try_get(&client, &url, &[]).await {
                Ok(r) if r.status == 200 => t.ok[after] += 1,
                Ok(r) if r.status == 429 => t.limited[after] += 1,
                Ok(r) => {
                    t.failed += 1;
                    failures.push(format!("{}: {:?}", r.status, r.body));
                }
                Err(e) => {
                    t.failed += 1;
                    failures.push(e);
                }
            }
            let _ = tx.send(t);
        }
        (t, failures)
    });
    (rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_raises_a_capacity_under_steady_traffic_without_a_failed_request() {
    let redis = RedisServer::start().unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let mut gw = GatewayProcess::start(binary(), &redis_config(&backend, &redis.url(), 5)).unwrap();
    let old_hash = hash(&gw).await;

    // A request held at the backend: decided under capacity 5, in flight
    // across the reload.
    let held_client = client_from("127.0.0.4");
    let held_url = format!("{}/held?hold=h1", gw.url());
    let held = tokio::spawn(async move { try_get(&held_client, &held_url, &[]).await });
    backend_stats(&backend, "held=1").await;

    let (phase_tx, phase) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    let (mut seen, traffic) =
        steady_traffic(format!("{}/data", gw.url()), "127.0.0.2", phase, stop);
    // All 5 spent: the client is being refused.
    seen.wait_for(|t| t.limited[0] > 0).await.unwrap();
    assert_eq!(seen.borrow().ok[0], 5);

    reload(&mut gw, &redis_config(&backend, &redis.url(), 10), "ok").await;
    let new_hash = hash(&gw).await;
    assert_ne!(new_hash, old_hash);
    phase_tx.send(true).unwrap();
    // The same bucket at capacity 10: five more, then refused again.
    let deadline = tokio::time::timeout(
        RELOAD_DEADLINE,
        seen.wait_for(|t| t.limited[1] > 0 && t.ok[0] + t.ok[1] >= 10),
    );
    deadline
        .await
        .expect("no refusal after the reload")
        .unwrap();
    stop_tx.send(true).unwrap();
    let (t, failures) = traffic.await.unwrap();
    assert_eq!(t.failed, 0, "failed requests: {failures:?}");
    // Exactly 10 in all (requests between the swap and the test seeing
    // it count as "before").
    assert_eq!(t.ok[0] + t.ok[1], 10, "{t:?}");

    // A client new since the reload gets the new capacity in full.
    let (statuses, _) = burst_from("127.0.0.3", &format!("{}/data", gw.url()), 12, |_| {
        String::new()
    })
    .await;
    assert_eq!(statuses.get(&200), Some(&10), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&2), "{statuses:?}");

    // The held request finishes, with the policy it was decided under.
    release(&backend, "h1").await;
    let reply = held.await.unwrap().expect("the held request is answered");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("ratelimit-policy"),
        Some("\"default\";q=5;w=5000")
    );
    assert!(gw.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_on_sighup_keeps_the_old_limits() {
    let redis = RedisServer::start().unwrap();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let good = redis_config(&backend, &redis.url(), 2);
    let mut gw = GatewayProcess::start(binary(), &good).unwrap();
    let old_hash = hash(&gw).await;
    let url = format!("{}/data", gw.url());
    let (statuses, _) = burst_from("127.0.0.2", &url, 3, |_| String::new()).await;
    assert_eq!(statuses.get(&200), Some(&2), "{statuses:?}");

    let bad = good.replace("capacity = 2", "capacity = -5");
    assert_ne!(bad, good);
    reload(&mut gw, &bad, "error").await;
    assert!(gw.is_running(), "{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("policies[0].capacity: must be > 0, got -5"),
        "the error names the key: {log}"
    );
    assert_eq!(hash(&gw).await, old_hash);
    assert_eq!(
        metric(&gw, "rateguard_config_reloads_total{result=\"ok\"} ").await,
        0.0
    );
    // The old limits: the spent client stays refused, a new one gets 2.
    let (statuses, _) = burst_from("127.0.0.2", &url, 1, |_| String::new()).await;
    assert_eq!(statuses.get(&429), Some(&1), "{statuses:?}");
    let (statuses, _) = burst_from("127.0.0.3", &url, 3, |_| String::new()).await;
    assert_eq!(statuses.get(&200), Some(&2), "{statuses:?}");

    // A good file that also changes what needs a restart: the policies
    // apply, the rest is named and left as it runs.
    let next = redis_config(&backend, &redis.url(), 4)
        .replace("shutdown_grace_ms = 2000", "shutdown_grace_ms = 3000");
    reload(&mut gw, &next, "ok").await;
    let log = gw.log();
    assert!(
        log.contains("needs a restart: server.shutdown_grace_ms"),
        "{log}"
    );
    let config = active_config(&gw).await;
    assert_eq!(config["config"]["server"]["shutdown_grace_ms"], 2000);
    assert_eq!(config["config"]["policies"][0]["capacity"], 4);
    let (statuses, _) = burst_from("127.0.0.5", &url, 5, |_| String::new()).await;
    assert_eq!(statuses.get(&200), Some(&4), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_hashes_agree_across_replicas_and_change_on_each_after_a_reload() {
    let redis = RedisServer::start().unwrap();
    redis
        .blocking_cli(&["CONFIG", "SET", "requirepass", "s3cret"])
        .unwrap();
    let url = format!("redis://:s3cret@{}", redis.addr());
    let store = redis_store("redis-lua", &[url], "deny", EXACT_BUDGET_MS);
    let mut stack = stack_with(&store, 3, &default_policy(6));
    let mut hashes = Vec::new();
    for gw in &stack.gateways {
        let config = active_config(gw).await;
        let text = config.to_string();
        assert!(!text.contains("s3cret"), "a password in /config: {text}");
        assert_eq!(
            config["config"]["store"]["urls"][0],
            format!("redis://:***@{}", redis.addr())
        );
        let metrics = gw.admin_get("/metrics").await.unwrap().1;
        let hash = config["hash"].as_str().unwrap().to_owned();
        assert!(
            metrics.contains(&format!("rateguard_config_info{{hash=\"{hash}\"}} 1")),
            "{metrics}"
        );
        hashes.push(hash);
    }
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    // The limit holds through nginx: 6 in total over the three replicas.
    let (statuses, _) = burst(&format!("{}/data", stack.nginx.url()), "", 9).await;
    assert_eq!(statuses.get(&200), Some(&6), "{statuses:?}");

    for gw in &mut stack.gateways {
        let text = std::fs::read_to_string(gw.config_path())
            .unwrap()
            .replace("capacity = 6", "capacity = 9");
        reload(gw, &text, "ok").await;
    }
    let mut after = Vec::new();
    for gw in &stack.gateways {
        let hash = hash(gw).await;
        assert_ne!(hash, hashes[0]);
        let metrics = gw.admin_get("/metrics").await.unwrap().1;
        assert!(
            !metrics.contains(&hashes[0]),
            "the old hash series is removed"
        );
        after.push(hash);
    }
    assert!(after.iter().all(|h| *h == after[0]), "{after:?}");
    // The same buckets at capacity 9: three more through nginx.
    let (statuses, _) = burst(&format!("{}/data", stack.nginx.url()), "", 6).await;
    assert_eq!(statuses.get(&200), Some(&3), "{statuses:?}");
}

fn rls_request(client: &str) -> RateLimitRequest {
    RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "client".into(),
                value: client.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    }
}

/// How many of `n` `ShouldRateLimit` calls for `client` answer `OK`.
async fn rls_oks(
    client: &mut RateLimitServiceClient<tonic::transport::Channel>,
    who: &str,
    n: usize,
) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let res = client.should_rate_limit(rls_request(who)).await.unwrap();
        if res.into_inner().overall_code() == Code::Ok {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_rls_limits_files() {
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("edge.yaml");
    let file = |n: u32| {
        format!("domain: edge\ndescriptors:\n  - key: client\n    rate_limit: {{ unit: hour, requests_per_unit: {n} }}\n")
    };
    std::fs::write(&limits, file(2)).unwrap();
    let text = format!(
        "[server]\nshutdown_grace_ms = 2000\n\n[store]\n{}\n\n[rls]\nlimits = [{:?}]\n",
        redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS),
        limits.display().to_string()
    );
    let mut rls = GatewayProcess::start_subcommand(binary(), "rls", &text, &[]).unwrap();
    let old_hash = hash(&rls).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", rls.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RateLimitServiceClient::new(channel);
    assert_eq!(rls_oks(&mut client, "a", 3).await, 2);

    std::fs::write(&limits, file(5)).unwrap();
    // The config file itself is unchanged: rewrite it as it is.
    reload(&mut rls, &text, "ok").await;
    assert_ne!(hash(&rls).await, old_hash);
    // 5 an hour now: a new client gets 5 of 6 over the same connection.
    assert_eq!(rls_oks(&mut client, "b", 6).await, 5);
    let res = client
        .should_rate_limit(rls_request("a"))
        .await
        .unwrap()
        .into_inner();
    let limit = res.statuses[0].current_limit.as_ref().unwrap();
    assert_eq!(limit.requests_per_unit, 5);

    // A broken limits file: refused, 5 an hour stay.
    std::fs::write(&limits, "domain: edge\nextra: 1\n").unwrap();
    reload(&mut rls, &text, "error").await;
    assert!(rls.is_running());
    assert!(rls.log().contains("rls.limits: "), "{}", rls.log());
    assert_eq!(rls_oks(&mut client, "c", 6).await, 5);
}

/// Writes `path` whole by a rename, as a deployment should: the watcher
/// never reads a half-written file.
fn replace_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_reloads_a_changed_file_without_a_signal() {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let text = |capacity: i64| {
        config_text(
            backend.addr(),
            "shutdown_grace_ms = 2000\nwatch_config = true",
            "kind = \"memory\"",
            &format!(
                "[[policies]]\nname = \"default\"\ncapacity = {capacity}\nrefill_per_sec = 0.001\n"
            ),
        )
    };
    let gw = GatewayProcess::start(binary(), &text(2)).unwrap();
    let url = format!("{}/data", gw.url());
    let first = hash(&gw).await;
    let (statuses, _) = burst_from("127.0.0.2", &url, 3, |_| String::new()).await;
    assert_eq!(statuses.get(&200), Some(&2), "{statuses:?}");

    replace_file(&gw.config_path(), &text(4));
    let second = eventually("the new file applied", || async {
        let now = hash(&gw).await;
        (now != first).then_some(now)
    })
    .await;
    let (statuses, _) = burst_from("127.0.0.2", &url, 3, |_| String::new()).await;
    assert_eq!(
        statuses.get(&200),
        Some(&2),
        "two more on the same bucket: {statuses:?}"
    );

    // A bad file is refused once, not once per check.
    let errors = "rateguard_config_reloads_total{result=\"error\"} ";
    replace_file(&gw.config_path(), &text(-1));
    eventually("the bad file counted", || async {
        (metric(&gw, errors).await == 1.0).then_some(())
    })
    .await;
    replace_file(&gw.config_path(), &text(5));
    eventually("the fixed file applied", || async {
        let now = hash(&gw).await;
        (now != second).then_some(())
    })
    .await;
    assert_eq!(metric(&gw, errors).await, 1.0);
    assert_eq!(
        metric(&gw, "rateguard_config_reloads_total{result=\"ok\"} ").await,
        2.0
    );
    let (statuses, _) = burst_from("127.0.0.3", &url, 6, |_| String::new()).await;
    assert_eq!(statuses.get(&200), Some(&5), "{statuses:?}");
}
