//! Sentinel (`store.sentinel_master`): `redis-lua` and `redis-pipelined`
//! ask three real sentinels for the master, follow a manual failover (the
//! old master, demoted, answers `READONLY`) and a killed master (the
//! replica promoted), enforce on the new master within seconds, and keep
//! counting exactly across the switch.

use std::time::{Duration, Instant};

use rateguard_store::conformance;
use rateguard_store::{
    BucketKey, BucketStore, Quota, RedisLuaStore, RedisOptions, RedisPipelinedStore, StoreError,
};
use rateguard_testkit::redis::MASTER_NAME;
use rateguard_testkit::SentinelSet;

use crate::relaxed;

/// How long a switch may take, from the failover's start to the first
/// decision on the new master (down-after 1 s, election, promotion).
const SWITCH_WITHIN: Duration = Duration::from_secs(15);

fn sentinel_opts(set: &SentinelSet, master: &str) -> RedisOptions {
    let mut opts = relaxed(set.sentinel_urls());
    opts.access.sentinel_master = Some(master.to_owned());
    opts
}

/// Retries `key` until the store decides again (errors meanwhile are the
/// switch: the gateway applies `on_error` to them); the first decision.
async fn first_decision<S: BucketStore>(store: &S, key: &BucketKey, quota: &Quota) -> bool {
    let started = Instant::now();
    loop {
        match store.acquire(key, quota, 1).await {
            Ok(decision) => return decision.allowed,
            Err(
                StoreError::Unavailable(_) | StoreError::CircuitOpen(_) | StoreError::Timeout(_),
            ) => {
                assert!(
                    started.elapsed() < SWITCH_WITHIN,
                    "no decision after {SWITCH_WITHIN:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("unexpected error during the switch: {e}"),
        }
    }
}

/// Waits until `store`'s decisions land on `master` (a probe key shows up
/// there): the event the switch is.
async fn on_master<S: BucketStore>(store: &S, master: &rateguard_testkit::RedisServer) {
    let quota = Quota::new(1_000, 1.0).unwrap();
    let started = Instant::now();
    loop {
        let probe = conformance::unique_key("probe");
        if store.acquire(&probe, &quota, 1).await.is_ok() {
            let key = probe.as_str();
            if master.cli(&["EXISTS", key]).await.unwrap() == "1" {
                return;
            }
        }
        assert!(
            started.elapsed() < SWITCH_WITHIN,
            "not on the new master after {SWITCH_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn allowed<S: BucketStore>(store: &S, key: &BucketKey, quota: &Quota, n: usize) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        allowed += usize::from(store.acquire(key, quota, 1).await.unwrap().allowed);
    }
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_follow_failovers_and_count_exactly_across_them() {
    let mut set = SentinelSet::start().expect("start a master, a replica and three sentinels");
    let opts = sentinel_opts(&set, MASTER_NAME);
    let lua = RedisLuaStore::connect(&opts).await.unwrap();
    let pipelined = RedisPipelinedStore::connect(&opts).await.unwrap();
    // Capacity 10, no refill to speak of: what is spent stays spent.
    let quota = Quota::new(10, 0.001).unwrap();
    let key = conformance::unique_key("sentinel");
    assert_eq!(allowed(&lua, &key, &quota, 3).await, 3);
    assert_eq!(allowed(&pipelined, &key, &quota, 3).await, 3);

    // 1. A manual failover, the old master still up: it keeps accepting
    //    writes until the sentinels demote it, so the stores must move on
    //    the sentinels' `+switch-master`, not on errors.
    set.wait_replicated(SWITCH_WITHIN).await.unwrap();
    let first = set.master_port().await.unwrap();
    set.failover().await.unwrap();
    let second = set.wait_failover(first, SWITCH_WITHIN).await.unwrap();
    assert_eq!(second, set.replica().port());
    let started = Instant::now();
    on_master(&lua, set.server(second).unwrap()).await;
    on_master(&pipelined, set.server(second).unwrap()).await;
    let switched = started.elapsed();
    assert_eq!(
        allowed(&lua, &key, &quota, 3).await,
        3,
        "the 7th to 9th of 10"
    );
    assert_eq!(
        allowed(&pipelined, &key, &quota, 2).await,
        1,
        "exactly 10 in all"
    );
    eprintln!("manual failover: both stores on the new master {switched:?} after the switch");
    assert_eq!(set.wait_settled(SWITCH_WITHIN).await.unwrap(), second);

    // 2. The new master is killed: the old one, its replica now, is promoted.
    let fresh = conformance::unique_key("sentinel-kill");
    assert_eq!(allowed(&lua, &fresh, &quota, 4).await, 4);
    set.wait_replicated(SWITCH_WITHIN).await.unwrap();
    let killed = set.kill_master().await.unwrap();
    assert_eq!(killed, second);
    let started = Instant::now();
    assert!(
        first_decision(&pipelined, &fresh, &quota).await,
        "the 5th of 10"
    );
    let switched = started.elapsed();
    assert!(first_decision(&lua, &fresh, &quota).await, "the 6th of 10");
    assert_eq!(
        set.wait_failover(killed, SWITCH_WITHIN).await.unwrap(),
        first
    );
    assert_eq!(
        allowed(&lua, &fresh, &quota, 6).await,
        4,
        "exactly 10 in all"
    );
    conformance::exact_under_concurrency(&[lua.clone(), lua.clone()], 40).await;
    conformance::exact_under_concurrency(&[pipelined.clone(), pipelined], 40).await;
    eprintln!("killed master: enforcing on the promoted replica {switched:?} after the kill");
    assert!(switched < SWITCH_WITHIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_master_name_is_unavailable_not_fatal() {
    let set = SentinelSet::start().unwrap();
    let store = RedisLuaStore::connect(&sentinel_opts(&set, "no-such-master"))
        .await
        .unwrap();
    let quota = Quota::new(1, 1.0).unwrap();
    match store
        .acquire(&conformance::unique_key("x"), &quota, 1)
        .await
    {
        Err(StoreError::Unavailable(e)) => {
            assert!(e.contains("no master \"no-such-master\""), "{e}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}
