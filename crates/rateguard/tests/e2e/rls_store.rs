//! `rateguard rls` on a real redis-server through the runtime's decision
//! layer, spoken to over gRPC directly (no Envoy): `on_error = "local"`
//! with Redis killed and restarted (each replica enforces its
//! `1/replicas_hint` share, counted as `local_fallback`, then back on
//! Redis), and the deny cache keeping a flood of over-limit calls on one
//! descriptor off Redis.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use rateguard_testkit::{GatewayProcess, RedisServer};
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::support::*;

/// `requests_per_unit` per `user` an hour (no refill within a test).
pub(crate) fn limits(requests_per_unit: u32) -> String {
    format!(
        "domain: edge\ndescriptors:\n  - key: user\n    rate_limit: {{ name: per_user, unit: hour, requests_per_unit: {requests_per_unit} }}\n"
    )
}

/// An `rls` process with `[store]` `store` and the limits file `yaml`
/// (kept in the returned dir).
pub(crate) fn rls(store: &str, yaml: &str) -> (TempDir, GatewayProcess) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.yaml");
    std::fs::write(&path, yaml).unwrap();
    let text = format!(
        "[server]\nshutdown_grace_ms = 2000\n\n[store]\n{store}\n\n[rls]\nlimits = [{:?}]\n",
        path.display().to_string()
    );
    let process = GatewayProcess::start_subcommand(binary(), "rls", &text, &[]).expect("rls");
    (dir, process)
}

pub(crate) async fn client(rls: &GatewayProcess) -> RateLimitServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", rls.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    RateLimitServiceClient::new(channel)
}

/// `n` sequential `ShouldRateLimit` calls for `user`: overall code → count.
pub(crate) async fn calls(
    client: &mut RateLimitServiceClient<Channel>,
    user: &str,
    n: usize,
) -> BTreeMap<&'static str, usize> {
    let request = RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "user".into(),
                value: user.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    };
    let mut codes = BTreeMap::new();
    for _ in 0..n {
        let res = client.should_rate_limit(request.clone()).await.unwrap();
        let code = match res.into_inner().overall_code() {
            Code::Ok => "ok",
            Code::OverLimit => "over",
            Code::Unknown => "unknown",
        };
        *codes.entry(code).or_default() += 1;
    }
    codes
}

/// `per_user`'s decisions of `decision` (`ok`, `local_fallback`, ...).
async fn decisions(rls: &GatewayProcess, decision: &str) -> f64 {
    metric(
        rls,
        &format!(
            "rateguard_rls_decisions_total{{domain=\"edge\",limit=\"per_user\",decision=\"{decision}\"}} "
        ),
    )
    .await
}

/// `[store]` on `redis` with `on_error = "local"` and `replicas_hint`.
fn local_store(redis: &RedisServer, replicas_hint: u32) -> String {
    format!(
        "{}\nreplicas_hint = {replicas_hint}",
        redis_store("redis-lua", &[redis.url()], "local", FAILURE_BUDGET_MS)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_enforces_its_local_share_while_redis_is_down_then_returns_to_redis() {
    let mut redis = RedisServer::start().unwrap();
    let (_alone_dir, alone) = rls(&local_store(&redis, 1), &limits(5));
    let (_fifth_dir, fifth) = rls(&local_store(&redis, 5), &limits(5));
    let (mut to_alone, mut to_fifth) = (client(&alone).await, client(&fifth).await);

    redis.kill().unwrap();
    // replicas_hint 1: the whole limit; 5: a fifth of it.
    let codes = calls(&mut to_alone, "a", 20).await;
    assert_eq!(codes, BTreeMap::from([("ok", 5), ("over", 15)]));
    let codes = calls(&mut to_fifth, "a", 6).await;
    assert_eq!(codes, BTreeMap::from([("ok", 1), ("over", 5)]));
    assert_eq!(decisions(&alone, "local_fallback").await, 20.0);
    assert_eq!(decisions(&alone, "ok").await, 0.0);
    assert_eq!(
        metric(
            &alone,
            "rateguard_rls_requests_total{outcome=\"local_fallback\"} "
        )
        .await,
        20.0
    );

    redis.restart().unwrap();
    // Back on Redis: a decision counted as the store's, not a local one.
    let deadline = Instant::now() + Duration::from_secs(15);
    while decisions(&alone, "ok").await == 0.0 {
        assert!(
            Instant::now() < deadline,
            "not back on Redis: {}",
            alone.log()
        );
        calls(&mut to_alone, "probe", 1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let local = decisions(&alone, "local_fallback").await;
    // A fresh user through Redis: exactly the limit, nothing local.
    assert_eq!(
        calls(&mut to_alone, "c", 7).await,
        BTreeMap::from([("ok", 5), ("over", 2)])
    );
    assert_eq!(decisions(&alone, "local_fallback").await, local);
}

/// One `rls` process, 2 an hour per user, `n` sequential calls for one
/// user: the first denial asks Redis, the rest are answered by the deny
/// cache (unless `deny_cache = false`). Returns Redis's script calls.
async fn flood(redis: &RedisServer, deny_cache: bool, n: usize) -> u64 {
    redis.cli(&["CONFIG", "RESETSTAT"]).await.unwrap();
    let mut store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    store.push_str(&format!("\ndeny_cache = {deny_cache}"));
    let (_dir, service) = rls(&store, &limits(2));
    let mut client = client(&service).await;
    let codes = calls(&mut client, &format!("flood-{deny_cache}"), n).await;
    assert_eq!(codes, BTreeMap::from([("ok", 2), ("over", n - 2)]));
    assert_eq!(decisions(&service, "over_limit").await, (n - 2) as f64);
    command_calls(redis, "evalsha").await + command_calls(redis, "eval").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_over_limit_calls_on_one_descriptor_stays_off_redis() {
    let redis = RedisServer::start().unwrap();
    // 2 allowed and one denial reach Redis; the other 197 denials do not.
    assert_eq!(flood(&redis, true, 200).await, 3);
    // Without the cache every call is a script call.
    assert_eq!(flood(&redis, false, 50).await, 50);
}

/// `rateguard rls` on `redis-leased`: a hot descriptor gets exactly its
/// limit (the replica's leases are spent by the calls that follow), for
/// far fewer script calls than calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_on_redis_leased_holds_a_hot_descriptor_with_fewer_script_calls() {
    let redis = RedisServer::start().unwrap();
    let store = redis_store("redis-leased", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let (_dir, service) = rls(&store, &limits(300));
    let mut client = client(&service).await;
    let before = command_calls(&redis, "evalsha").await;
    let codes = calls(&mut client, "hot", 400).await;
    assert_eq!(codes, BTreeMap::from([("ok", 300), ("over", 100)]));
    let script_calls = command_calls(&redis, "evalsha").await - before;
    eprintln!("rls on redis-leased: {script_calls} script calls for 400 calls");
    assert!(script_calls < 240, "{script_calls} script calls for 400");
}
