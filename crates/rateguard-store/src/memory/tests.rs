use super::*;
use crate::AcquireRequest;
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

/// Enforced limits of `capacity` on `keys` (the manual clock never moves).
fn limits(keys: &[&BucketKey], capacity: u64) -> Vec<AcquireRequest> {
    let quota = Quota::new(capacity, 1.0).unwrap();
    keys.iter()
        .map(|k| AcquireRequest::new((*k).clone(), quota, 1))
        .collect()
}

#[test]
fn acquire_all_spends_on_every_bucket_or_none() {
    let (store, _) = store();
    let (a, b) = (BucketKey::new("p", "a"), BucketKey::new("p", "b"));
    let small = AcquireRequest::new(a.clone(), Quota::new(1, 0.001).unwrap(), 1);
    let big = AcquireRequest::new(b.clone(), Quota::new(3, 0.001).unwrap(), 1);
    let both = [small, big.clone()];
    assert!(store.acquire_all_now(&both).unwrap().allowed());
    let denied = store.acquire_all_now(&both).unwrap();
    assert!(!denied.allowed());
    assert_eq!(denied.reported().map(|(i, _)| i), Some(0));
    // b spent one token, not two: the denial wrote nothing.
    let d = store.acquire_all_now(std::slice::from_ref(&big)).unwrap();
    assert_eq!(d.limits()[0].unwrap().remaining, 1);
    // A denied fresh key leaves no entry behind.
    let huge = AcquireRequest::new(BucketKey::new("p", "c"), Quota::new(1, 1.0).unwrap(), 2);
    assert!(!store.acquire_all_now(&[huge]).unwrap().allowed());
    assert_eq!(store.len(), 2);
}

#[test]
fn acquire_all_refuses_a_key_named_twice_and_allows_no_limits() {
    let (store, _) = store();
    let a = BucketKey::new("p", "a");
    let err = store.acquire_all_now(&limits(&[&a, &a], 5)).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let none = store.acquire_all_now(&[]).unwrap();
    assert!(none.allowed() && none.limits().is_empty());
    assert!(store.is_empty());
}

/// Two keys in one shard and two in different shards, requested in both
/// orders by many threads at once: shard locks are taken in index order,
/// so this finishes, and the shared bucket admits exactly its capacity.
#[test]
fn overlapping_requests_in_any_order_never_deadlock_and_stay_exact() {
    let (store, _) = store();
    let keys: Vec<BucketKey> = (0..400)
        .map(|i| BucketKey::new("p", &i.to_string()))
        .collect();
    let shard = |k: &BucketKey| store.inner.tats.shard_of(k);
    let a = &keys[0];
    let same = keys
        .iter()
        .find(|k| *k != a && shard(k) == shard(a))
        .unwrap();
    let other = keys.iter().find(|k| shard(k) != shard(a)).unwrap();
    let shared = BucketKey::new("p", "shared");
    let orders = [
        limits(&[a, same, &shared], 1_000_000),
        limits(&[&shared, same, a], 1_000_000),
        limits(&[other, &shared, a], 1_000_000),
        limits(&[a, &shared, other], 1_000_000),
    ];
    let capacity = 3_000;
    let allowed = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (store, orders, shared, allowed) = (&store, &orders, &shared, &allowed);
            s.spawn(move || {
                for i in 0..1_000 {
                    let mut request = orders[(t + i) % 4].clone();
                    let last = request.iter_mut().find(|r| r.key == *shared).unwrap();
                    last.quota = Quota::new(capacity, 1.0).unwrap();
                    if store.acquire_all_now(&request).unwrap().allowed() {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 3_000);
}

#[test]
fn a_lone_shadow_limit_spends_when_it_fits_and_never_denies() {
    let (store, _) = store();
    let key = BucketKey::new("p", "shadow");
    let shadow = [AcquireRequest::shadow(
        key.clone(),
        Quota::new(1, 1.0).unwrap(),
        1,
    )];
    let first = store.acquire_all_now(&shadow).unwrap();
    assert!(first.allowed() && first.limits()[0].unwrap().allowed);
    let second = store.acquire_all_now(&shadow).unwrap();
    assert!(second.allowed(), "a shadow limit never denies");
    assert!(!second.limits()[0].unwrap().allowed);
    assert_eq!(second.retry_after(), Duration::ZERO);
}
