//! `peek.lua` and `rateguard_core::peek` read the same bucket the same
//! way (the script's test-only "now" pins time), whatever state the token
//! bucket script left it in, a quota that shrank included; and a peek
//! writes nothing.

use std::num::{NonZeroU32, NonZeroU64};

use rateguard_core::quota::MAX_FILL_TIME_US;
use rateguard_core::{bucket, peek};
use rateguard_store::{conformance::unique_key, BucketStore, Quota, RedisLuaStore};

use crate::{relaxed, server, Lcg, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_lua_matches_the_core_and_spends_nothing() {
    let redis = server();
    let store = RedisLuaStore::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let longest = Quota::from_interval(
        NonZeroU32::new(1).unwrap(),
        NonZeroU64::new(MAX_FILL_TIME_US).unwrap(),
    )
    .unwrap();
    let mut quotas = vec![
        Quota::new(3, 10.0).unwrap(),
        Quota::new(10, 3.0).unwrap(),
        Quota::new(1_000, 1_000_000.0).unwrap(),
        Quota::new(1, 0.1).unwrap(),
        longest,
    ];
    let mut rng = Lcg(24);
    for _ in 0..20 {
        let capacity = 1 + rng.below(200);
        let rate = (1 + rng.below(10_000)) as f64 / 100.0;
        quotas.push(Quota::new(capacity, rate).unwrap());
    }
    let mut peeks = 0;
    for quota in &quotas {
        let key = unique_key("peek");
        // Never seen: full, on both sides.
        let lua = store.peek_at(&key, quota, T0).await.unwrap();
        assert_eq!(lua, peek::peek(0, T0, quota), "{quota:?}: absent key");
        let (mut tat, mut now) = (0u64, T0);
        for step in 0..30 {
            now += rng.below(quota.interval_us() * 2 + 1);
            let cost = 1 + rng.below(u64::from(quota.capacity().min(3))) as u32;
            let count = 1 + rng.below(4) as u32;
            let core = bucket::acquire_batch(tat, now, quota, cost, count);
            let spent = store
                .acquire_batch_at(&key, quota, cost, count, now)
                .await
                .unwrap();
            assert_eq!(spent.allowed, core.allowed, "{quota:?} step {step}");
            tat = core.tat;
            let before = redis.cli(&["GET", key.as_str()]).await.unwrap();
            for offset in [0, 1, quota.interval_us() / 2, quota.fill_time_us()] {
                let at = now + offset;
                let lua = store.peek_at(&key, quota, at).await.unwrap();
                assert_eq!(
                    lua,
                    peek::peek(tat, at, quota),
                    "{quota:?} step {step} +{offset} µs"
                );
                peeks += 1;
            }
            let after = redis.cli(&["GET", key.as_str()]).await.unwrap();
            assert_eq!(before, after, "a peek wrote to the bucket");
            // Under a smaller quota (a plan or a reload that shrank it),
            // the stored time may lie beyond a full bucket.
            let small = Quota::new(1, quota.refill_per_sec().max(0.01)).unwrap();
            let lua = store.peek_at(&key, &small, now).await.unwrap();
            assert_eq!(lua, peek::peek(tat, now, &small), "{quota:?} shrunk");
        }
    }
    assert!(peeks > 2_000, "{peeks}");
    // Through Redis TIME too: a fresh key is full.
    let key = unique_key("peek-time");
    let q = Quota::new(7, 1.0).unwrap();
    let p = store.peek(&key, &q).await.unwrap();
    assert_eq!((p.limit, p.remaining), (7, 7));
    assert!(p.retry_after.is_zero() && p.reset_after.is_zero());
}
