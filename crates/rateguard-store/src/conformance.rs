//! One behaviour suite that every [`BucketStore`] must pass.
//!
//! Each check takes the store (or several independent instances of it, as
//! separate gateway replicas would hold) and panics with a message on
//! failure. Keys are unique per call, so checks can share a server.
//! Checks that depend on time take the [`ManualClock`] the stores were built
//! with (`MemoryStore::with_clock`, or a Redis store's `with_test_clock`,
//! which passes it to the script as its test-only "now") and assert exact
//! counts: time moves only when the check moves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use rateguard_core::clock::ManualClock;

use crate::{AcquireRequest, BucketKey, BucketStore, Quota};

mod multi_limit;

pub use multi_limit::{
    denied_limit_spends_nothing_elsewhere, duplicate_keys_are_refused,
    layered_limits_under_concurrency, overlapping_requests_account_exactly,
    overlapping_requests_never_over_admit, shadow_limits_never_deny,
};

/// Where [`ManualClock`]s for the checks start: a realistic Redis `TIME` in
/// µs (late 2026), far below 2^53.
pub const T0_US: u64 = 1_795_000_000_000_000;

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
/// after one interval; a denial reports exactly when to retry.
pub async fn fresh_bucket_reports_its_shape<S: BucketStore>(store: &S, clock: &ManualClock) {
    let quota = Quota::new(3, 10.0).unwrap();
    let key = unique_key("shape");
    let first = store.acquire(&key, &quota, 1).await.expect("acquire");
    assert!(first.allowed, "{}: first request denied", store.name());
    assert_eq!(first.limit, 3);
    assert_eq!(first.remaining, 2, "{}: remaining", store.name());
    assert_eq!(first.reset_after, Duration::from_millis(100), "{first:?}");
    clock.advance_us(40_000);
    let rest = store.acquire(&key, &quota, 2).await.expect("acquire");
    assert!(
        rest.allowed && rest.remaining == 0,
        "{}: {rest:?}",
        store.name()
    );
    assert_eq!(rest.reset_after, Duration::from_millis(260), "{rest:?}");
    let denied = store.acquire(&key, &quota, 1).await.expect("acquire");
    assert!(!denied.allowed, "{}: empty bucket allowed", store.name());
    assert_eq!(
        denied.retry_after,
        Duration::from_millis(60),
        "{}: {denied:?}",
        store.name()
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

/// Many concurrent callers keep a bucket over its limit while `steps`
/// steps of half a refill interval pass: exactly `C + ⌊elapsed / T⌋` are
/// allowed in total, however many denials there were. A store that let
/// denials move the refill clock would allow more.
pub async fn denials_never_speed_up_refill<S: BucketStore + Clone>(
    stores: &[S],
    clock: &ManualClock,
    callers: usize,
) {
    let (capacity, rate, steps) = (5u32, 20.0, 20u64);
    let quota = Quota::new(capacity.into(), rate).unwrap();
    let half = quota.interval_us() / 2;
    let key = unique_key("sustained");
    let (mut allowed, mut denied) = (0u64, 0u64);
    for step in 0..steps {
        if step > 0 {
            clock.advance_us(half);
        }
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let (store, key) = (stores[i % stores.len()].clone(), key.clone());
                tokio::spawn(async move { store.acquire(&key, &quota, 1).await })
            })
            .collect();
        for task in tasks {
            match task.await.expect("task") {
                Ok(d) if d.allowed => allowed += 1,
                Ok(_) => denied += 1,
                Err(e) => panic!("store error under load: {e}"),
            }
        }
    }
    let elapsed = (steps - 1) * half;
    let ideal = u64::from(capacity) + elapsed / quota.interval_us();
    assert!(
        denied > 10 * allowed,
        "the load must be well over the limit (denied {denied})"
    );
    assert_eq!(
        allowed,
        ideal,
        "{}: allowed {allowed}, ideal C + r·T = {ideal} over {elapsed} µs",
        stores[0].name()
    );
}

/// Refill follows the quota to the microsecond: after emptying a bucket
/// refilled at 20/s, 5 tokens are back 1 µs before 300 ms, and a 6th at 300 ms.
pub async fn refills_over_time<S: BucketStore>(store: &S, clock: &ManualClock) {
    let quota = Quota::new(10, 20.0).unwrap();
    let key = unique_key("refill");
    assert!(store.acquire(&key, &quota, 10).await.unwrap().allowed);
    clock.advance_us(300_000 - 1);
    let mut got = 0u32;
    while store.acquire(&key, &quota, 1).await.unwrap().allowed {
        got += 1;
    }
    assert_eq!(got, 5, "{}: tokens back after 299.999 ms", store.name());
    clock.advance_us(1);
    assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    assert!(!store.acquire(&key, &quota, 1).await.unwrap().allowed);
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

/// Runs every check that needs only one instance of the store; `clock`
/// must be the store's (see the module docs).
pub async fn run_all<S: BucketStore + Clone>(store: &S, clock: &ManualClock) {
    fresh_bucket_reports_its_shape(store, clock).await;
    keys_are_independent(store).await;
    batch_decides_in_order(store).await;
    refills_over_time(store, clock).await;
    exact_under_concurrency(std::slice::from_ref(store), 200).await;
    denials_never_speed_up_refill(std::slice::from_ref(store), clock, 16).await;
    denied_limit_spends_nothing_elsewhere(store).await;
    shadow_limits_never_deny(store).await;
    duplicate_keys_are_refused(store).await;
    overlapping_requests_account_exactly(std::slice::from_ref(store)).await;
    peek_spends_nothing_and_reset_refills(store, clock).await;
}

/// A peek reads a bucket without spending (twice the same answer, then the
/// same `remaining` an acquire sees); a reset makes it full again and
/// raises the store's reset generation.
pub async fn peek_spends_nothing_and_reset_refills<S: BucketStore>(store: &S, clock: &ManualClock) {
    let name = store.name();
    let quota = Quota::new(3, 10.0).unwrap();
    let key = unique_key("peek");
    let fresh = store.peek(&key, &quota).await.expect("peek");
    assert_eq!((fresh.limit, fresh.remaining), (3, 3), "{name}: {fresh:?}");
    assert_eq!(fresh.retry_after, Duration::ZERO);
    for _ in 0..3 {
        assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    }
    clock.advance_us(30_000);
    let empty = store.peek(&key, &quota).await.expect("peek");
    assert_eq!(store.peek(&key, &quota).await.unwrap(), empty, "{name}");
    assert_eq!(empty.remaining, 0, "{name}: {empty:?}");
    assert_eq!(empty.retry_after, Duration::from_millis(70), "{name}");
    assert_eq!(empty.reset_after, Duration::from_millis(270), "{name}");
    assert!(!store.acquire(&key, &quota, 1).await.unwrap().allowed);
    let before = store.resets().await.expect("resets");
    store.reset(&key).await.expect("reset");
    assert!(store.resets().await.unwrap() > before, "{name}: generation");
    let full = store.peek(&key, &quota).await.unwrap();
    assert_eq!((full.remaining, full.reset_after), (3, Duration::ZERO));
    for _ in 0..3 {
        assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    }
    assert!(!store.acquire(&key, &quota, 1).await.unwrap().allowed);
}
