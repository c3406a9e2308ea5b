//! Redis going away, freezing, flushing its scripts or restarting: calls
//! fail fast with typed errors (never hang or panic) and decisions resume by
//! themselves once Redis is back.

use std::time::{Duration, Instant};

use rateguard_store::{
    conformance::unique_key, BucketStore, Quota, RedisLeasedStore, RedisLuaStore, RedisOptions,
    RedisPipelinedStore, StoreError,
};
use rateguard_testkit::{free_port, RedisServer};

use crate::{relaxed, server, strict};

/// A generous bound for "within the 50 ms budget" on a noisy 2-core machine.
const FAIL_FAST: Duration = Duration::from_secs(1);

fn quota() -> Quota {
    Quota::new(100, 0.001).unwrap()
}

/// Acquires until a call succeeds (errors allowed meanwhile) or `within` passes.
async fn until_ok<S: BucketStore>(store: &S, within: Duration) -> rateguard_store::Decision {
    let start = Instant::now();
    let key = unique_key("recover");
    loop {
        match store.acquire(&key, &quota(), 1).await {
            Ok(d) => return d,
            Err(e) if start.elapsed() < within => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{}: still failing after {within:?}: {e}", store.name()),
        }
    }
}

async fn flush_and_restart_are_transparent<S: BucketStore>(store: &S, redis: &mut RedisServer) {
    let key = unique_key("flush");
    let first = store.acquire(&key, &quota(), 1).await.unwrap();
    assert_eq!(first.remaining, 99);
    assert_eq!(redis.cli(&["SCRIPT", "FLUSH"]).await.unwrap(), "OK");
    // NOSCRIPT is answered by reloading: no error, and the state is intact.
    let second = store.acquire(&key, &quota(), 1).await.unwrap();
    assert_eq!(second.remaining, 98, "{}", store.name());

    redis.restart().unwrap();
    // The data is gone (no persistence) and the script cache too; the
    // client reconnects and reloads by itself.
    let after = until_ok(store, Duration::from_secs(5)).await;
    assert!(after.allowed && after.remaining == 99, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_survives_script_flush_and_restart() {
    let mut redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    flush_and_restart_are_transparent(&store, &mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_survives_script_flush_and_restart() {
    let mut redis = server();
    let store = RedisPipelinedStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    flush_and_restart_are_transparent(&store, &mut redis).await;
}

/// Kills Redis under `store`: every call errs within the bound, the breaker
/// opens (so a dead Redis is not hammered), and after a restart decisions
/// come back without any action on the store.
async fn killed_redis_fails_fast_then_recovers<S: BucketStore>(store: &S, redis: &mut RedisServer) {
    let key = unique_key("kill");
    assert!(store.acquire(&key, &quota(), 1).await.unwrap().allowed);
    redis.kill().unwrap();
    let mut circuit_opened = false;
    for _ in 0..20 {
        let start = Instant::now();
        let result = store.acquire(&key, &quota(), 1).await;
        let took = start.elapsed();
        assert!(took < FAIL_FAST, "{}: error took {took:?}", store.name());
        match result {
            Err(StoreError::CircuitOpen(_)) => circuit_opened = true,
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_)) => {}
            other => panic!("{}: expected a store error, got {other:?}", store.name()),
        }
    }
    assert!(circuit_opened, "{}: the breaker never opened", store.name());
    assert!(store.ping().await.is_err());
    redis.restart().unwrap();
    until_ok(store, Duration::from_secs(5)).await;
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_fails_fast_when_killed_and_recovers() {
    let mut redis = server();
    let store = RedisLuaStore::connect(&strict(vec![redis.url()]))
        .await
        .unwrap();
    killed_redis_fails_fast_then_recovers(&store, &mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_fails_fast_when_killed_and_recovers() {
    let mut redis = server();
    let store = RedisPipelinedStore::connect(&strict(vec![redis.url()]))
        .await
        .unwrap();
    killed_redis_fails_fast_then_recovers(&store, &mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leased_survives_script_flush_and_restart() {
    let mut redis = server();
    let store = RedisLeasedStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    flush_and_restart_are_transparent(&store, &mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leased_fails_fast_when_killed_and_recovers() {
    let mut redis = server();
    let store = RedisLeasedStore::connect(&strict(vec![redis.url()]))
        .await
        .unwrap();
    killed_redis_fails_fast_then_recovers(&store, &mut redis).await;
}

/// While Redis is down a replica keeps spending the lease it holds (the
/// tokens are counted in the store already), until the lease's slice has
/// drained; then calls fail and the caller's `on_error` applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_replica_spends_its_lease_while_redis_is_down_then_fails() {
    let mut redis = server();
    let mut opts = strict(vec![redis.url()]);
    opts.lease.hot_rate = 0; // every key leases
    let store = RedisLeasedStore::connect(&opts).await.unwrap();
    // 1000/s, 50 ms periods: leases of up to 50 tokens.
    let quota = Quota::new(1_000, 1_000.0).unwrap();
    let key = unique_key("outage");
    for _ in 0..200 {
        assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    }
    let calls = store.script_calls();
    assert!(calls < 100, "{calls} script calls for 200 requests");
    redis.kill().unwrap();
    let down = Instant::now();
    let (mut local, mut failed) = (0u32, 0u32);
    while failed < 3 {
        match store.acquire(&key, &quota, 1).await {
            Ok(d) => {
                assert!(d.allowed, "{d:?}");
                local += 1;
            }
            Err(_) => failed += 1,
        }
    }
    let lasted = down.elapsed();
    // What it held: at most one lease (50 tokens) plus what was left of
    // the previous, spent within the lease's slice (about 50 ms).
    assert!(local > 0, "no request was served from the lease");
    assert!(local <= 100, "{local} requests served with Redis down");
    assert!(lasted < FAIL_FAST, "took {lasted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_times_out_within_the_budget() {
    let mut redis = server();
    let opts = strict(vec![redis.url()]);
    let lua = RedisLuaStore::connect(&opts).await.unwrap();
    let pipelined = RedisPipelinedStore::connect(&opts).await.unwrap();
    let key = unique_key("frozen");
    assert!(lua.acquire(&key, &quota(), 1).await.unwrap().allowed);
    assert!(pipelined.acquire(&key, &quota(), 1).await.unwrap().allowed);
    redis.freeze().unwrap();
    for result in [
        timed(lua.acquire(&key, &quota(), 1)).await,
        timed(pipelined.acquire(&key, &quota(), 1)).await,
    ] {
        assert!(
            matches!(result, Err(StoreError::Timeout(d)) if d == opts.timeout),
            "{result:?}"
        );
    }
    redis.thaw().unwrap();
    until_ok(&lua, Duration::from_secs(5)).await;
    until_ok(&pipelined, Duration::from_secs(5)).await;
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = call.await;
    assert!(start.elapsed() < FAIL_FAST, "took {:?}", start.elapsed());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stores_connect_lazily_to_a_redis_that_is_not_there() {
    let opts = strict(vec![format!("redis://127.0.0.1:{}", free_port())]);
    let lua = timed(RedisLuaStore::connect(&opts)).await.unwrap();
    let pipelined = timed(RedisPipelinedStore::connect(&opts)).await.unwrap();
    let key = unique_key("absent");
    let lua_err = timed(lua.acquire(&key, &quota(), 1)).await.unwrap_err();
    let pipe_err = timed(pipelined.acquire(&key, &quota(), 1))
        .await
        .unwrap_err();
    for err in [lua_err, pipe_err] {
        assert!(
            matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
            "{err}"
        );
    }
    let bad = RedisOptions {
        urls: vec!["not a url".into()],
        ..opts
    };
    assert!(matches!(
        RedisLuaStore::connect(&bad).await,
        Err(StoreError::Backend(_))
    ));
}
