//! Every Redis store passes the suite the memory store passes (with "now"
//! pinned through the script's test-only argument), separate instances (as
//! separate gateway replicas hold) share one exact limit, and the command
//! counts the README states hold exactly.

use rateguard_core::Clock;
use rateguard_store::conformance::{self, ManualClock, T0_US};
use rateguard_store::{
    AcquireRequest, BucketStore, Quota, RedisLeasedStore, RedisLuaStore, RedisOptions,
    RedisPipelinedStore,
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

/// `redis-leased` with leasing off decides exactly as `redis-lua` (the
/// whole suite, exact counts); with its default leasing, replicas still
/// share one limit and never over-admit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leased_passes_the_suite_and_replicas_share_one_limit() {
    let redis = server();
    let mut opts = relaxed(vec![redis.url()]);
    opts.lease.hot_rate = u32::MAX; // no key is hot: ordinary decisions
    let clock = ManualClock::new(T0_US);
    let store = RedisLeasedStore::connect(&opts)
        .await
        .unwrap()
        .with_test_clock(clock.clone());
    assert_eq!(store.name(), "redis-leased");
    store.ping().await.unwrap();
    conformance::run_all(&store, &clock).await;
    assert_eq!(store.lease_answers(), 0);

    let opts = relaxed(vec![redis.url()]);
    let stores: Vec<_> = replicas(
        &opts,
        |o| async move { RedisLeasedStore::connect(&o).await },
    )
    .await
    .into_iter()
    .map(|s| s.with_test_clock(clock.clone()))
    .collect();
    // 600 concurrent requests on 50 tokens: never more than 50; a token
    // leased by a replica that gets no further request is the only loss.
    for _ in 0..5 {
        let allowed = concurrent_allowed(&stores, 200, 50).await;
        assert!(
            (50 - stores.len() as u64..=50).contains(&allowed),
            "{allowed} of 50"
        );
    }
    conformance::denied_limit_spends_nothing_elsewhere(&stores[0]).await;
    conformance::shadow_limits_never_deny(&stores[0]).await;
    for _ in 0..5 {
        conformance::overlapping_requests_never_over_admit(&stores).await;
    }
    let leased: u64 = stores.iter().map(RedisLeasedStore::lease_answers).sum();
    assert!(leased > 0, "the default leasing was never used");
}

/// Allowed requests when `per_store` concurrent acquires per store hit one
/// key of `capacity` tokens that do not refill.
async fn concurrent_allowed<S: BucketStore + Clone>(
    stores: &[S],
    per_store: usize,
    capacity: u64,
) -> u64 {
    let quota = Quota::new(capacity, 0.001).unwrap();
    let key = conformance::unique_key("concurrent");
    let tasks: Vec<_> = (0..per_store * stores.len())
        .map(|i| {
            let (store, key) = (stores[i % stores.len()].clone(), key.clone());
            tokio::spawn(async move { store.acquire(&key, &quota, 1).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += u64::from(task.await.unwrap());
    }
    allowed
}

/// A hot key through leases: the same admissions as one exact bucket
/// (`C + ⌊elapsed/T⌋` while over the limit, everything while under it),
/// for a fraction of the script calls, counted by Redis itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_leased_hot_key_takes_one_call_per_lease_and_never_over_admits() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let clock = ManualClock::new(T0_US);
    let store = RedisLeasedStore::connect(&opts)
        .await
        .unwrap()
        .with_test_clock(clock.clone());
    // 1000/s, capacity 100; lease period 50 ms: leases of up to 50 tokens.
    let quota = Quota::new(100, 1000.0).unwrap();
    let key = conformance::unique_key("leased-hot");
    let before = evalsha_calls(&redis).await;
    // Under the limit: 2 000 requests, one every 2 ms (500/s), all admitted.
    let mut allowed = 0u64;
    for _ in 0..2_000 {
        allowed += u64::from(store.acquire(&key, &quota, 1).await.unwrap().allowed);
        clock.advance_us(2_000);
    }
    assert_eq!(allowed, 2_000, "under the limit, every request");
    let under_calls = evalsha_calls(&redis).await - before;
    assert_eq!(under_calls, store.script_calls());
    assert!(
        under_calls * 10 <= 2_000,
        "{under_calls} script calls for 2000 requests"
    );
    // Over the limit: 4 requests per ms (4x the rate) for 2 s.
    let start = clock.now_us();
    let mut allowed = 0u64;
    for _ in 0..2_000 {
        for _ in 0..4 {
            allowed += u64::from(store.acquire(&key, &quota, 1).await.unwrap().allowed);
        }
        clock.advance_us(1_000);
    }
    let elapsed = clock.now_us() - start - 1_000;
    let ideal = 100 + elapsed / quota.interval_us();
    let over_calls = evalsha_calls(&redis).await - before - under_calls;
    assert!(allowed <= ideal, "over-admitted: {allowed} > {ideal}");
    assert!(
        allowed * 100 >= ideal * 95,
        "under-admission above 5 %: {allowed} of {ideal}"
    );
    assert!(
        over_calls * 20 <= 8_000,
        "{over_calls} script calls for 8000 requests over the limit"
    );
    eprintln!(
        "leased hot key: under the limit {under_calls} calls / 2000; \
         over it {allowed} of {ideal} admitted, {over_calls} calls / 8000"
    );
}
