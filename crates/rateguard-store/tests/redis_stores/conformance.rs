//! Every Redis store passes the suite the memory store passes, and separate
//! instances (as separate gateway replicas hold) share one exact limit.

use std::time::Duration;

use rateguard_store::{conformance, BucketStore, RedisLuaStore, RedisOptions, RedisPipelinedStore};

use crate::{relaxed, server};

async fn replicas<S, F, Fut>(opts: &RedisOptions, connect: F) -> Vec<S>
where
    F: Fn(RedisOptions) -> Fut,
    Fut: std::future::Future<Output = Result<S, rateguard_store::StoreError>>,
{
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(connect(opts.clone()).await.expect("connect"));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_passes_the_suite_and_replicas_share_one_limit() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let store = RedisLuaStore::connect(&opts).await.unwrap();
    assert_eq!(store.name(), "redis-lua");
    store.ping().await.unwrap();
    conformance::run_all(&store).await;
    let stores = replicas(&opts, |o| async move { RedisLuaStore::connect(&o).await }).await;
    conformance::exact_under_concurrency(&stores, 200).await;
    conformance::denials_never_speed_up_refill(&stores, 12, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_passes_the_suite_and_replicas_share_one_limit() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let store = RedisPipelinedStore::connect(&opts).await.unwrap();
    assert_eq!(store.name(), "redis-pipelined");
    store.ping().await.unwrap();
    conformance::run_all(&store).await;
    let stores = replicas(
        &opts,
        |o| async move { RedisPipelinedStore::connect(&o).await },
    )
    .await;
    conformance::exact_under_concurrency(&stores, 200).await;
    conformance::denials_never_speed_up_refill(&stores, 12, Duration::from_secs(1)).await;
    // 200 concurrent callers on one key per instance: batches merged them.
    let (requests, commands) = (stores[0].requests(), stores[0].commands_sent());
    assert!(requests >= 200, "requests {requests}");
    assert!(
        commands < requests,
        "merging must send fewer script calls ({commands}) than requests ({requests})"
    );
    assert!(stores[0].round_trips() <= commands);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_merge_same_key_requests_into_one_call() {
    let redis = server();
    let store = RedisPipelinedStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let quota = rateguard_store::Quota::new(3, 0.001).unwrap();
    let key = conformance::unique_key("merge");
    let requests: Vec<_> = (0..5)
        .map(|_| rateguard_store::AcquireRequest::new(key.clone(), quota, 1))
        .collect();
    let before = store.commands_sent();
    let results = store.acquire_many(&requests).await;
    let allowed: Vec<bool> = results
        .iter()
        .map(|r| r.as_ref().unwrap().allowed)
        .collect();
    // The first three get the tokens, in arrival order.
    assert_eq!(allowed, [true, true, true, false, false]);
    let remaining: Vec<u32> = results
        .iter()
        .map(|r| r.as_ref().unwrap().remaining)
        .collect();
    assert_eq!(remaining, [2, 1, 0, 0, 0]);
    let sent = store.commands_sent() - before;
    assert!(sent < 5, "5 same-key requests took {sent} script calls");
}
