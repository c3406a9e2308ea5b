//! One behaviour suite that every [`BucketStore`] must pass.
//!
//! Each check takes the store (or several independent instances of it, as
//! separate gateway replicas would hold) and panics with a message on
//! failure. Keys are unique per call, so checks can share a server.
//! Time-based checks use real time and assert with a tolerance only there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{AcquireRequest, BucketKey, BucketStore, Quota};

/// A key no other check (in this process or another) uses.
pub fn unique_key(label: &str) -> BucketKey {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    BucketKey::new(label, &format!("{}-{nanos}-{n}", std::process::id()))
}

/// A fresh bucket reports its shape: allowed, `capacity − 1` left, full again
/// after one interval; a denial reports when to retry.
pub async fn fresh_bucket_reports_its_shape<S: BucketStore>(store: &S) {
    let quota = Quota::new(3, 10.0).unwrap();
    let key = unique_key("shape");
    let first = store.acquire(&key, &quota, 1).await.expect("acquire");
    assert!(first.allowed, "{}: first request denied", store.name());
    assert_eq!(first.limit, 3);
    assert_eq!(first.remaining, 2, "{}: remaining", store.name());
    assert!(first.reset_after <= Duration::from_millis(100));
    assert!(first.reset_after > Duration::from_millis(50), "{first:?}");
    let rest = store.acquire(&key, &quota, 2).await.expect("acquire");
    assert!(
        rest.allowed && rest.remaining == 0,
        "{}: {rest:?}",
        store.name()
    );
    let denied = store.acquire(&key, &quota, 1).await.expect("acquire");
    assert!(!denied.allowed, "{}: empty bucket allowed", store.name());
    assert!(
        denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_millis(100),
        "{}: retry_after {:?}",
        store.name(),
        denied.retry_after
    );
}

/// Different keys never share tokens.
pub async fn keys_are_independent<S: BucketStore>(store: &S) {
    let quota = Quota::new(1, 0.001).unwrap();
    let (a, b) = (unique_key("indep"), unique_key("indep"));
    assert!(store.acquire(&a, &quota, 1).await.unwrap().allowed);
    assert!(!store.acquire(&a, &quota, 1).await.unwrap().allowed);
    assert!(store.acquire(&b, &quota, 1).await.unwrap().allowed);
}

/// `stores.len()` independent instances (as replicas would hold), each firing
/// `per_store` concurrent acquires at one key of capacity 50 with no
/// meaningful refill: exactly 50 are allowed in total.
///
/// For [`MemoryStore`](crate::MemoryStore) pass clones of one store: separate
/// memory stores do not share buckets (that is the point of the Redis stores).
pub async fn exact_under_concurrency<S: BucketStore + Clone>(stores: &[S], per_store: usize) {
    let quota = Quota::new(50, 0.001).unwrap();
    let key = unique_key("exact");
    let mut tasks = Vec::new();
    for store in stores {
        for _ in 0..per_store {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(
                async move { store.acquire(&key, &quota, 1).await },
            ));
        }
    }
    let mut allowed = 0;
    for task in tasks {
        let decision = task.await.expect("task").expect("store error");
        allowed += usize::from(decision.allowed);
    }
    assert_eq!(
        allowed,
        50,
        "{}: allowed across {} instances",
        stores[0].name(),
        stores.len()
    );
}

/// Many concurrent callers keep a bucket over its limit for `duration`: the
/// allowed total must be `C + r·T` (± 2 tokens), however many denials there were.
/// A store that let denials move the refill clock would allow far more.
pub async fn denials_never_speed_up_refill<S: BucketStore + Clone>(
    stores: &[S],
    callers: usize,
    duration: Duration,
) {
    let (capacity, rate) = (5u32, 20.0);
    let quota = Quota::new(capacity.into(), rate).unwrap();
    let key = unique_key("sustained");
    let allowed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..callers {
        let store = stores[i % stores.len()].clone();
        let (key, allowed) = (key.clone(), allowed.clone());
        tasks.push(tokio::spawn(async move {
            let mut denied = 0u64;
            while start.elapsed() < duration {
                match store.acquire(&key, &quota, 1).await {
                    Ok(d) if d.allowed => {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => denied += 1,
                    Err(e) => panic!("store error under load: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            denied
        }));
    }
    let mut denied = 0;
    for task in tasks {
        denied += task.await.expect("task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ideal = f64::from(capacity) + rate * elapsed;
    let got = allowed.load(Ordering::Relaxed) as f64;
    assert!(
        denied > 10 * got as u64,
        "the load must be well over the limit (denied {denied})"
    );
    assert!(
        (got - ideal).abs() <= 2.0 + rate * 0.02,
        "{}: allowed {got}, ideal C + r·T = {ideal:.1} over {elapsed:.3} s",
        stores[0].name()
    );
}

/// Refill over real time matches the quota: after emptying a bucket refilled
/// at 20/s and waiting 300 ms, about 6 tokens are back.
pub async fn refills_over_time<S: BucketStore>(store: &S) {
    let quota = Quota::new(10, 20.0).unwrap();
    let key = unique_key("refill");
    assert!(store.acquire(&key, &quota, 10).await.unwrap().allowed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = 0u32;
    while store.acquire(&key, &quota, 1).await.unwrap().allowed {
        got += 1;
    }
    let expected = 20.0 * start.elapsed().as_secs_f64();
    assert!(
        (f64::from(got) - expected).abs() <= 1.5,
        "{}: {got} tokens back, expected about {expected:.1}",
        store.name()
    );
}

/// A batch decides requests for one key in order, like sequential calls.
pub async fn batch_decides_in_order<S: BucketStore>(store: &S) {
    let quota = Quota::new(3, 0.001).unwrap();
    let key = unique_key("batch");
    let other = unique_key("batch");
    let requests: Vec<_> = [(&key, 1), (&other, 1), (&key, 1), (&key, 2), (&key, 1)]
        .into_iter()
        .map(|(k, cost)| AcquireRequest::new(k.clone(), quota, cost))
        .collect();
    let results: Vec<_> = store
        .acquire_many(&requests)
        .await
        .into_iter()
        .map(|r| r.expect("store error").allowed)
        .collect();
    assert_eq!(results, [true, true, true, false, true], "{}", store.name());
}

/// Runs every check that needs only one instance of the store.
pub async fn run_all<S: BucketStore + Clone>(store: &S) {
    fresh_bucket_reports_its_shape(store).await;
    keys_are_independent(store).await;
    batch_decides_in_order(store).await;
    refills_over_time(store).await;
    exact_under_concurrency(std::slice::from_ref(store), 200).await;
    denials_never_speed_up_refill(std::slice::from_ref(store), 16, Duration::from_secs(1)).await;
}
