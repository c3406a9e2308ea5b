use super::*;
use rateguard_core::clock::ManualClock;

const SEC: u64 = 1_000_000;

fn store() -> (MemoryStore<ManualClock>, ManualClock) {
    let clock = ManualClock::new(1_000 * SEC);
    (MemoryStore::with_clock(clock.clone()), clock)
}

#[test]
fn refills_with_the_injected_clock() {
    let (store, clock) = store();
    let quota = Quota::new(2, 2.0).unwrap();
    let key = BucketKey::new("p", "client");
    assert!(store.acquire_now(&key, &quota, 1).allowed);
    assert!(store.acquire_now(&key, &quota, 1).allowed);
    let denied = store.acquire_now(&key, &quota, 1);
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after, Duration::from_millis(500));
    clock.advance_us(SEC / 2 - 1);
    assert!(!store.acquire_now(&key, &quota, 1).allowed);
    clock.advance_us(1);
    assert!(store.acquire_now(&key, &quota, 1).allowed);
}

#[test]
fn keys_are_independent() {
    let (store, _) = store();
    let quota = Quota::new(1, 1.0).unwrap();
    let a = BucketKey::new("p", "a");
    let b = BucketKey::new("p", "b");
    assert!(store.acquire_now(&a, &quota, 1).allowed);
    assert!(!store.acquire_now(&a, &quota, 1).allowed);
    assert!(store.acquire_now(&b, &quota, 1).allowed);
}

#[test]
fn eviction_drops_only_full_buckets_and_changes_no_decision() {
    let (store, clock) = store();
    let quota = Quota::new(10, 10.0).unwrap(); // full again 1 s after last use
    for i in 0..1000 {
        store.acquire_now(&BucketKey::new("p", &i.to_string()), &quota, 1);
    }
    let busy = BucketKey::new("p", "busy");
    for _ in 0..10 {
        assert!(store.acquire_now(&busy, &quota, 1).allowed);
    }
    assert_eq!(store.len(), 1001);
    clock.advance_us(SEC / 10); // 1000 single-use keys full again; busy is not
    assert_eq!(store.evict_idle(), 1000);
    assert_eq!(store.len(), 1);
    let d = store.acquire_now(&busy, &quota, 1);
    assert!(d.allowed);
    assert_eq!(d.remaining, 0, "busy bucket state survived eviction");
    clock.advance_us(10 * SEC);
    assert_eq!(store.evict_idle(), 1);
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn background_eviction_runs_and_stops_with_the_store() {
    let store = MemoryStore::new();
    let quota = Quota::new(1, 1000.0).unwrap();
    for i in 0..100 {
        store.acquire_now(&BucketKey::new("p", &i.to_string()), &quota, 1);
    }
    // Real time must pass for the system clock; the bucket refills in 1 ms.
    std::thread::sleep(Duration::from_millis(5));
    store.spawn_eviction(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.is_empty());
    let weak = Arc::downgrade(&store.inner);
    drop(store);
    assert!(
        weak.upgrade().is_none(),
        "the eviction task must not keep the store alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_on_one_key_get_exactly_capacity() {
    let (store, _) = store();
    let quota = Quota::new(50, 1.0).unwrap();
    let key = BucketKey::new("p", "hot");
    let tasks: Vec<_> = (0..400)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.acquire(&key, &quota, 1).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 50);
}
