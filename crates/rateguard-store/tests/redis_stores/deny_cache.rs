//! The deny cache in front of real Redis stores: a flood on a denied key
//! stays off Redis, and limits stay exact across instances.

use rateguard_store::conformance;
use rateguard_store::deny_cache::DEFAULT_CAPACITY;
use rateguard_store::{BucketStore, DenyCache, Quota, RedisLuaStore, RedisPipelinedStore};

use crate::{evalsha_calls, relaxed, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_a_denied_key_sends_a_handful_of_script_calls() {
    let redis = server();
    let lua = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let store = DenyCache::new(lua, DEFAULT_CAPACITY);
    let quota = Quota::new(1, 0.01).unwrap(); // back after 100 s
    let key = conformance::unique_key("flood");
    let before = evalsha_calls(&redis).await;
    assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let mut denied = 0;
                for _ in 0..625 {
                    let limits = [rateguard_store::AcquireRequest::new(key.clone(), quota, 1)];
                    denied += usize::from(!store.acquire_all(&limits).await.unwrap().allowed());
                }
                denied
            })
        })
        .collect();
    let mut denied = 0;
    for task in tasks {
        denied += task.await.unwrap();
    }
    assert_eq!(denied, 5_000);
    let calls = evalsha_calls(&redis).await - before;
    // One allowed, then at most one denial per task before the cache knows.
    assert!(calls <= 9, "{calls} script calls for 5 001 requests");
    assert!(store.hits() >= 4_992, "{} hits", store.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_stay_exact_across_cached_instances() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let mut lua = Vec::new();
    let mut pipelined = Vec::new();
    for _ in 0..3 {
        let store = RedisLuaStore::connect(&opts).await.unwrap();
        lua.push(DenyCache::new(store, DEFAULT_CAPACITY));
        let store = RedisPipelinedStore::connect(&opts).await.unwrap();
        pipelined.push(DenyCache::new(store, DEFAULT_CAPACITY));
    }
    conformance::exact_under_concurrency(&lua, 200).await;
    conformance::exact_under_concurrency(&pipelined, 200).await;
    assert_eq!(
        conformance::layered_limits_under_concurrency(&lua, 10, 10).await,
        30
    );
    assert_eq!(
        conformance::layered_limits_under_concurrency(&pipelined, 10, 10).await,
        30
    );
    conformance::denied_limit_spends_nothing_elsewhere(&lua[0]).await;
    assert_eq!(lua[0].name(), "redis-lua");
}
