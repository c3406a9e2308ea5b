//! `token_bucket.lua` and `rateguard_core::bucket` make identical decisions
//! on the same arrivals (the script's test-only "now" override pins time),
//! and what the script stores is exactly the core's `tat`, with a TTL.

use std::num::{NonZeroU32, NonZeroU64};

use rateguard_core::bucket;
use rateguard_core::quota::MAX_FILL_TIME_US;
use rateguard_store::{conformance::unique_key, BucketKey, Quota, RedisLuaStore};
use rateguard_testkit::RedisServer;

use crate::{relaxed, server};

/// One arrival: µs since the previous one, cost, count.
type Arrival = (u64, u32, u32);

/// A realistic Redis `TIME` in µs (late 2026), far below 2^53.
const T0: u64 = 1_795_000_000_000_000;

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

/// A small deterministic generator (no dependency, reproducible failures).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
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
