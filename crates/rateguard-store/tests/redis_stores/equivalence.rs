//! `token_bucket.lua` and `rateguard_core::bucket` / `::multi` make
//! identical decisions on the same arrivals, one limit or several (the
//! script's test-only "now" override pins time), and what the script stores
//! is exactly the core's `tat`, with a TTL; a denied request writes nothing.

use std::num::{NonZeroU32, NonZeroU64};

use rateguard_core::quota::MAX_FILL_TIME_US;
use rateguard_core::{bucket, multi, Limit};
use rateguard_store::{conformance::unique_key, AcquireRequest, BucketKey, Quota, RedisLuaStore};
use rateguard_testkit::RedisServer;

use crate::{relaxed, server, Lcg, T0};

/// One arrival: µs since the previous one, cost, count.
type Arrival = (u64, u32, u32);

/// The key's `PTTL` in ms.
async fn pttl_ms<T: std::str::FromStr>(redis: &RedisServer, key: &BucketKey) -> T
where
    T::Err: std::fmt::Debug,
{
    redis
        .cli(&["PTTL", key.as_str()])
        .await
        .unwrap()
        .parse()
        .unwrap()
}

/// Drives one key through `arrivals` (µs since the previous one, cost,
/// count) on both sides and compares every field of every decision, the
/// stored `tat` and its TTL.
async fn compare(
    store: &RedisLuaStore,
    redis: &RedisServer,
    key: &BucketKey,
    quota: &Quota,
    arrivals: &[Arrival],
) {
    let (mut tat, mut now) = (0u64, T0);
    for (step, &(dt, cost, count)) in arrivals.iter().enumerate() {
        now += dt;
        let core = bucket::acquire_batch(tat, now, quota, cost, count);
        let lua = store
            .acquire_batch_at(key, quota, cost, count, now)
            .await
            .expect("script call");
        let at = format!("step {step}: {quota:?} cost {cost} count {count} dt {dt}");
        assert_eq!(lua.allowed, core.allowed, "{at}");
        assert_eq!(lua.backlog_us, core.backlog_us, "{at}");
        let (lua_d, core_d): (Vec<_>, Vec<_>) =
            (lua.decisions().collect(), core.decisions().collect());
        assert_eq!(lua_d, core_d, "{at}");
        tat = core.tat;
        let stored = redis.cli(&["GET", key.as_str()]).await.unwrap();
        if core.allowed > 0 {
            assert_eq!(stored, tat.to_string(), "{at}: stored tat");
            let pttl: u64 = pttl_ms(redis, key).await;
            let needed_ms = (tat - now) / 1000;
            assert!(
                pttl > needed_ms && pttl <= needed_ms + 1000,
                "{at}: PTTL {pttl} ms for a backlog of {needed_ms} ms"
            );
        } else if tat == 0 {
            assert_eq!(stored, "", "{at}: a denial wrote a key");
        } else {
            assert_eq!(stored, tat.to_string(), "{at}: a denial changed the tat");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_matches_the_core_on_a_table_of_edge_cases() {
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let longest = Quota::from_interval(
        NonZeroU32::new(1).unwrap(),
        NonZeroU64::new(MAX_FILL_TIME_US).unwrap(),
    )
    .unwrap();
    let cases: Vec<(Quota, Vec<Arrival>)> = vec![
        // Drain, deny, refill partly, cost 0 inspects.
        (
            Quota::new(3, 10.0).unwrap(),
            vec![
                (0, 1, 1),
                (0, 2, 1),
                (0, 1, 1),
                (50_000, 1, 1),
                (100_000, 0, 1),
                (0, 1, 4),
            ],
        ),
        // A batch larger than the bucket: the first ones win.
        (
            Quota::new(5, 1.0).unwrap(),
            vec![(0, 1, 8), (999_999, 1, 3), (1, 1, 3), (10_000_000, 2, 4)],
        ),
        // Cost above capacity can never succeed; nothing is written.
        (
            Quota::new(2, 1.0).unwrap(),
            vec![(0, 3, 1), (0, 3, 2), (0, 2, 1), (0, 1, 1)],
        ),
        // Rounded intervals (3/s = 333,333 µs) and 1 µs intervals.
        (
            Quota::new(10, 3.0).unwrap(),
            vec![(0, 4, 2), (333_332, 1, 1), (1, 1, 1), (1, 1, 1)],
        ),
        (
            Quota::new(1_000, 1_000_000.0).unwrap(),
            vec![(0, 1, 999), (0, 2, 1), (1, 1, 2), (5, 3, 3)],
        ),
        // The longest fill time (366 days) and a huge capacity: precision edges.
        (
            longest,
            vec![
                (0, 1, 1),
                (MAX_FILL_TIME_US - 1, 1, 1),
                (1, 1, 1),
                (0, 1, 1),
            ],
        ),
        (
            Quota::new(u64::from(u32::MAX), 1_000_000.0).unwrap(),
            vec![(0, u32::MAX, 1), (0, 1, 1), (7, 7, 1), (0, 0, 3)],
        ),
    ];
    for (quota, arrivals) in &cases {
        compare(&store, &redis, &unique_key("eq-table"), quota, arrivals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_matches_the_core_on_generated_arrival_sequences() {
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let mut rng = Lcg(0x5eed_2026);
    for case in 0..36 {
        let capacity = 1 + rng.below(50);
        let rate = [0.5, 1.0, 3.0, 7.0, 20.0, 1000.0][rng.below(6) as usize];
        let quota = Quota::new(capacity, rate).unwrap();
        let arrivals: Vec<_> = (0..12)
            .map(|_| {
                let dt = [
                    0,
                    1,
                    rng.below(quota.interval_us() * 2),
                    rng.below(quota.fill_time_us() + 1),
                ][rng.below(4) as usize];
                let cost =
                    [0, 1, 1, 1, 2, capacity as u32, capacity as u32 + 1][rng.below(7) as usize];
                (dt, cost, 1 + rng.below(4) as u32)
            })
            .collect();
        let key = unique_key(&format!("eq-gen-{case}"));
        compare(&store, &redis, &key, &quota, &arrivals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_a_ttl_and_never_the_raw_client_id() {
    use rateguard_store::BucketStore;
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let secret = "sk_live_9f8e7d6c5b4a";
    let key = BucketKey::new("api", secret);
    let quota = Quota::new(10, 1.0).unwrap();
    assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    let keys = redis.cli(&["KEYS", "*"]).await.unwrap();
    assert_eq!(keys, key.as_str());
    assert!(!keys.contains(secret), "{keys}");
    let pttl: i64 = pttl_ms(&redis, &key).await;
    // One token spent at 1/s: full again in 1 s, plus 1 s of slack.
    assert!(pttl > 1000 && pttl <= 2000, "PTTL {pttl}");
}

/// One multi-limit arrival: µs since the previous one, count, and per
/// limit its cost (the limits' quotas and enforced flags stay fixed).
type MultiArrival = (u64, u32, Vec<u32>);

/// A multi-limit case: each limit's quota and enforced flag, and the arrivals.
type MultiCase = (Vec<(Quota, bool)>, Vec<MultiArrival>);

/// Drives N keys through `arrivals` on both sides (the script over all N
/// keys in one call, and `rateguard_core::multi::acquire_all`) and compares
/// the verdicts, every limit's decision of every request, and each stored
/// `tat`: a denied request must have written nothing anywhere.
async fn compare_multi(
    store: &RedisLuaStore,
    redis: &RedisServer,
    limits: &[(Quota, bool)],
    arrivals: &[MultiArrival],
) {
    let keys: Vec<BucketKey> = (0..limits.len())
        .map(|i| unique_key(&format!("eq-multi-{i}")))
        .collect();
    let (mut tats, mut now) = (vec![0u64; limits.len()], T0);
    for (step, (dt, count, costs)) in arrivals.iter().enumerate() {
        now += dt;
        let requests: Vec<AcquireRequest> = keys
            .iter()
            .zip(limits)
            .zip(costs)
            .map(|((key, &(quota, enforced)), &cost)| AcquireRequest {
                key: key.clone(),
                quota,
                cost,
                enforced,
            })
            .collect();
        let buckets: Vec<(u64, Limit)> = tats
            .iter()
            .zip(&requests)
            .map(|(&tat, r)| (tat, r.limit()))
            .collect();
        let core = multi::acquire_all(now, &buckets, *count);
        let lua = store
            .acquire_all_at(&requests, *count, now)
            .await
            .expect("script call");
        let at = format!("step {step}: {limits:?} costs {costs:?} count {count} dt {dt}");
        assert_eq!(lua.allowed, core.allowed, "{at}");
        let (lua_d, core_d): (Vec<_>, Vec<_>) =
            (lua.decisions().collect(), core.decisions().collect());
        assert_eq!(lua_d, core_d, "{at}");
        let stored = read_and_persist(redis, &keys).await;
        for (i, stored) in stored.iter().enumerate() {
            let spent = core.buckets[i].allowed > 0;
            if spent {
                tats[i] = core.buckets[i].tat;
            }
            let expected = if tats[i] == 0 {
                String::new()
            } else {
                tats[i].to_string()
            };
            assert_eq!(
                *stored, expected,
                "{at}: limit {i}'s stored tat (spent: {spent})"
            );
        }
    }
}

/// Each key's stored value ("" when absent), in one call, and drops the
/// keys' TTLs: "now" is pinned here, so real time must not expire a key
/// whose bucket is still in use in pinned time (the next script call that
/// spends sets a fresh TTL anyway).
async fn read_and_persist(redis: &RedisServer, keys: &[BucketKey]) -> Vec<String> {
    const READ: &str = "local r = {} for i, k in ipairs(KEYS) do \
        r[i] = 'v' .. (redis.call('GET', k) or '') redis.call('PERSIST', k) end return r";
    let n = keys.len().to_string();
    let mut args = vec!["EVAL", READ, n.as_str()];
    args.extend(keys.iter().map(BucketKey::as_str));
    let out = redis.cli(&args).await.unwrap();
    // Each value comes prefixed with "v", so empty ones keep their line.
    let values: Vec<String> = out
        .lines()
        .map(|l| l.strip_prefix('v').unwrap_or(l).to_owned())
        .collect();
    assert_eq!(values.len(), keys.len(), "{out:?}");
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_matches_the_core_on_generated_multi_limit_arrivals() {
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let mut rng = Lcg(0x1a7e_2ed5);
    for _ in 0..30 {
        let n = 1 + rng.below(4) as usize;
        let limits: Vec<(Quota, bool)> = (0..n)
            .map(|_| {
                let capacity = 1 + rng.below(12);
                let rate = [0.5, 1.0, 3.0, 20.0, 1000.0][rng.below(5) as usize];
                (Quota::new(capacity, rate).unwrap(), rng.below(4) != 0)
            })
            .collect();
        let arrivals: Vec<MultiArrival> = (0..14)
            .map(|_| {
                let slowest = limits.iter().map(|(q, _)| q.interval_us()).max().unwrap();
                let dt = [0, 1, rng.below(slowest * 2)][rng.below(3) as usize];
                let costs = limits
                    .iter()
                    .map(|(q, _)| {
                        [0, 1, 1, 1, 2, q.capacity(), q.capacity() + 1][rng.below(7) as usize]
                    })
                    .collect();
                (dt, 1 + rng.below(4) as u32, costs)
            })
            .collect();
        compare_multi(&store, &redis, &limits, &arrivals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_denies_all_or_nothing_on_a_table_of_multi_limit_cases() {
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let q = |c, r| Quota::new(c, r).unwrap();
    let cases: Vec<MultiCase> = vec![
        // Per-client 5 and per-ip 8: the 6th is denied by the first and
        // spends nothing on the second.
        (
            vec![(q(5, 0.01), true), (q(8, 0.01), true)],
            vec![(0, 6, vec![1, 1]), (0, 1, vec![1, 1]), (0, 1, vec![0, 3])],
        ),
        // A shadow limit spends while it fits and never denies.
        (
            vec![(q(3, 1.0), true), (q(1, 1.0), false)],
            vec![
                (0, 4, vec![1, 1]),
                (1_000_000, 2, vec![1, 1]),
                (0, 1, vec![1, 5]),
            ],
        ),
        // No enforced limit: everything passes; cost above capacity never.
        (
            vec![(q(2, 1.0), false), (q(2, 1.0), true)],
            vec![(0, 3, vec![1, 0]), (0, 1, vec![3, 1]), (0, 1, vec![1, 3])],
        ),
    ];
    for (limits, arrivals) in &cases {
        compare_multi(&store, &redis, limits, arrivals).await;
    }
}
