//! The memory store passes the suite every store must pass, on a manual clock.

use rateguard_store::conformance::{self, ManualClock, T0_US};
use rateguard_store::deny_cache::DEFAULT_CAPACITY;
use rateguard_store::{DenyCache, MemoryStore};

fn store() -> (MemoryStore<ManualClock>, ManualClock) {
    let clock = ManualClock::new(T0_US);
    (MemoryStore::with_clock(clock.clone()), clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    let (store, clock) = store();
    conformance::run_all(&store, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_one_memory_store_share_buckets_exactly() {
    let (store, clock) = store();
    let replicas = [store.clone(), store.clone(), store];
    conformance::exact_under_concurrency(&replicas, 200).await;
    conformance::denials_never_speed_up_refill(&replicas, &clock, 12).await;
    assert_eq!(
        conformance::layered_limits_under_concurrency(&replicas, 10, 10).await,
        30
    );
}

/// The deny cache changes no decision: the whole suite passes through it,
/// with the cache on the same manual clock as the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_through_the_deny_cache() {
    let (store, clock) = store();
    let cached = DenyCache::with_clock(store, DEFAULT_CAPACITY, clock.clone());
    conformance::run_all(&cached, &clock).await;
    let replicas = [cached.clone(), cached.clone(), cached.clone()];
    conformance::denials_never_speed_up_refill(&replicas, &clock, 12).await;
    assert_eq!(
        conformance::layered_limits_under_concurrency(&replicas, 10, 10).await,
        30
    );
    assert!(cached.hits() > 100, "{} hits", cached.hits());
}
