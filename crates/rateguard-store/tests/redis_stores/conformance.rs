//! Every Redis store passes the suite the memory store passes (with "now"
//! pinned through the script's test-only argument), separate instances (as
//! separate gateway replicas hold) share one exact limit, and the command
//! counts the README states hold exactly.

use rateguard_store::conformance::{self, ManualClock, T0_US};
use rateguard_store::{
    AcquireRequest, BucketStore, Quota, RedisLuaStore, RedisOptions, RedisPipelinedStore,
};

use crate::{evalsha_calls, relaxed, server};

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

/// `callers` concurrent acquires of one hot key over `stores`.
async fn hot_key<S: BucketStore + Clone>(stores: &[S], callers: usize) {
    let quota = Quota::new(1_000_000, 1.0).unwrap();
    let key = conformance::unique_key("hot");
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let (store, key) = (stores[i % stores.len()].clone(), key.clone());
            tokio::spawn(async move { store.acquire(&key, &quota, 1).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().allowed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lua_passes_the_suite_and_replicas_share_one_limit() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let clock = ManualClock::new(T0_US);
    let store = RedisLuaStore::connect(&opts)
        .await
        .unwrap()
        .with_test_clock(clock.clone());
    assert_eq!(store.name(), "redis-lua");
    store.ping().await.unwrap();
    conformance::run_all(&store, &clock).await;
    let stores: Vec<_> = replicas(&opts, |o| async move { RedisLuaStore::connect(&o).await })
        .await
        .into_iter()
        .map(|s| s.with_test_clock(clock.clone()))
        .collect();
    conformance::exact_under_concurrency(&stores, 200).await;
    conformance::denials_never_speed_up_refill(&stores, &clock, 12).await;
    assert_eq!(
        conformance::layered_limits_under_concurrency(&stores, 10, 10).await,
        30
    );

    // The README's "1 round trip per request": exactly one script call per
    // decision, a one-limit or a two-limit one.
    let before = evalsha_calls(&redis).await;
    hot_key(&stores, 300).await;
    conformance::denied_limit_spends_nothing_elsewhere(&store).await; // 12 requests
    assert_eq!(
        evalsha_calls(&redis).await - before,
        312,
        "script calls per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_passes_the_suite_and_replicas_share_one_limit() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let clock = ManualClock::new(T0_US);
    let store = RedisPipelinedStore::connect(&opts)
        .await
        .unwrap()
        .with_test_clock(clock.clone());
    assert_eq!(store.name(), "redis-pipelined");
    store.ping().await.unwrap();
    conformance::run_all(&store, &clock).await;
    let stores: Vec<_> = replicas(
        &opts,
        |o| async move { RedisPipelinedStore::connect(&o).await },
    )
    .await
    .into_iter()
    .map(|s| s.with_test_clock(clock.clone()))
    .collect();
    conformance::exact_under_concurrency(&stores, 200).await;
    conformance::denials_never_speed_up_refill(&stores, &clock, 12).await;
    assert_eq!(
        conformance::layered_limits_under_concurrency(&stores, 10, 10).await,
        30
    );

    // The README's hot-key claim: all requests for one key that meet in a
    // pipeline are one script call, so on a hot key script calls equal
    // round trips, and 300 concurrent callers need far fewer of either.
    let one = &stores[..1];
    let (requests, commands, trips) = (
        one[0].requests(),
        one[0].commands_sent(),
        one[0].round_trips(),
    );
    let server_before = evalsha_calls(&redis).await;
    hot_key(one, 300).await;
    let requests = one[0].requests() - requests;
    let commands = one[0].commands_sent() - commands;
    let trips = one[0].round_trips() - trips;
    assert_eq!(requests, 300);
    assert_eq!(commands, trips, "one script call per pipeline on a hot key");
    assert_eq!(
        evalsha_calls(&redis).await - server_before,
        commands,
        "the store counts what Redis ran"
    );
    assert!(
        commands * 2 < requests,
        "300 concurrent callers on one key took {commands} script calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_merge_same_key_requests_into_one_call() {
    let redis = server();
    let store = RedisPipelinedStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let quota = Quota::new(3, 0.001).unwrap();
    let key = conformance::unique_key("merge");
    let requests: Vec<_> = (0..5)
        .map(|_| AcquireRequest::new(key.clone(), quota, 1))
        .collect();
    let before = (store.commands_sent(), evalsha_calls(&redis).await);
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
    assert_eq!(
        store.commands_sent() - before.0,
        1,
        "one merged batch, one script call"
    );
    assert_eq!(evalsha_calls(&redis).await - before.1, 1);
}
