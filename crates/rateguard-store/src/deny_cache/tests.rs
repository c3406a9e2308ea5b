use std::sync::atomic::AtomicUsize;

use rateguard_core::clock::ManualClock;

use super::*;
use crate::MemoryStore;

const SEC: u64 = 1_000_000;

/// A memory store that counts the calls reaching it and can take
/// `latency_us` of the manual clock to answer (as a network round trip would).
#[derive(Debug, Clone)]
struct Counted {
    store: MemoryStore<ManualClock>,
    clock: ManualClock,
    calls: Arc<AtomicUsize>,
    latency_us: u64,
    /// Declares refunds, as `fred-cluster` does.
    refunds: bool,
    /// Runs once, after the next decision and before its reply arrives.
    in_flight: Hook,
}

impl Counted {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl BucketStore for Counted {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::Memory
    }

    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities {
            shared: true,
            refunds: self.refunds,
        }
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // The request travels for half the latency, the reply for the rest.
        self.clock.advance_us(self.latency_us / 2);
        let d = self.store.acquire_all(limits).await;
        let hook = self.in_flight.take();
        if let Some(hook) = hook {
            hook();
        }
        self.clock.advance_us(self.latency_us - self.latency_us / 2);
        d
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        self.store.reset(key).await
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        self.store.resets().await
    }
}

/// Something to run once while a store call is in flight.
#[derive(Clone, Default)]
struct Hook(Arc<std::sync::Mutex<Option<HookFn>>>);

type HookFn = Box<dyn FnOnce() + Send>;

impl Hook {
    fn set(&self, hook: impl FnOnce() + Send + 'static) {
        *self.0.lock().unwrap() = Some(Box::new(hook));
    }

    fn take(&self) -> Option<HookFn> {
        self.0.lock().unwrap().take()
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

fn cache(capacity: usize, latency_us: u64) -> (DenyCache<Counted, ManualClock>, ManualClock) {
    let clock = ManualClock::new(1_000 * SEC);
    let counted = Counted {
        store: MemoryStore::with_clock(clock.clone()),
        clock: clock.clone(),
        calls: Arc::default(),
        latency_us,
        refunds: false,
        in_flight: Hook::default(),
    };
    (
        DenyCache::with_clock(counted, capacity, clock.clone()),
        clock,
    )
}

fn one(key: &BucketKey, quota: Quota, cost: u32) -> [AcquireRequest; 1] {
    [AcquireRequest::new(key.clone(), quota, cost)]
}

#[tokio::test]
async fn a_cached_denial_lasts_exactly_until_t0_plus_retry_after() {
    // 200 µs round trips: t0 is when the call was sent, not received.
    let (cache, clock) = cache(100, 200);
    let quota = Quota::new(2, 1.0).unwrap();
    let key = BucketKey::new("p", "c");
    for _ in 0..2 {
        assert!(cache
            .acquire_all(&one(&key, quota, 1))
            .await
            .unwrap()
            .allowed());
    }
    let t0 = clock.now_us();
    let denied = cache.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(!denied.allowed() && !denied.from_cache());
    let r = denied.retry_after();
    // Decisions at +100, +300, +500 µs: the bucket is back at 1 s + 100 µs,
    // 1 s − 400 µs after the store decided the denial.
    assert_eq!(r, Duration::from_micros(SEC - 400));
    assert_eq!(cache.store().calls(), 3);

    let expires = t0 + r.as_micros() as u64;
    clock.set_us(expires - 1);
    let hit = cache.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(!hit.allowed() && hit.from_cache());
    assert_eq!(hit.retry_after(), Duration::from_micros(1));
    assert_eq!(cache.store().calls(), 3, "answered locally");
    assert_eq!(cache.hits(), 1);

    // At t0 + r the cache no longer answers; the store does, and allows.
    clock.set_us(expires);
    let asked = cache.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(!asked.from_cache());
    assert!(asked.allowed(), "{asked:?}");
    assert_eq!(cache.store().calls(), 4);
}

#[tokio::test]
async fn larger_costs_wait_longer_and_costs_that_may_fit_go_to_the_store() {
    let (cache, clock) = cache(100, 0);
    let quota = Quota::new(4, 1.0).unwrap();
    let key = BucketKey::new("p", "c");
    assert!(cache
        .acquire_all(&one(&key, quota, 3))
        .await
        .unwrap()
        .allowed());
    // 1 token left: cost 2 is denied, retry in 1 s.
    let denied = cache.acquire_all(&one(&key, quota, 2)).await.unwrap();
    assert_eq!(denied.retry_after(), Duration::from_secs(1));
    let calls = cache.store().calls();
    // Cost 3 is certainly denied for 2 s, cost 5 (> capacity) forever.
    let three = cache.acquire_all(&one(&key, quota, 3)).await.unwrap();
    assert!(three.from_cache());
    assert_eq!(three.retry_after(), Duration::from_secs(2));
    let five = cache.acquire_all(&one(&key, quota, 5)).await.unwrap();
    assert_eq!(five.retry_after(), Decision::NEVER);
    // Cost 1 may fit: the store decides (and allows).
    assert!(cache
        .acquire_all(&one(&key, quota, 1))
        .await
        .unwrap()
        .allowed());
    assert_eq!(cache.store().calls(), calls + 1);
    // After 1.5 s cost 2 fits per the (stale) entry's bound, cost 3 not yet.
    clock.advance_us(3 * SEC / 2);
    let three = cache.acquire_all(&one(&key, quota, 3)).await.unwrap();
    assert!(three.from_cache(), "{three:?}");
    assert_eq!(three.retry_after(), Duration::from_secs(1) / 2);
}

#[tokio::test]
async fn another_quota_on_the_same_key_is_not_the_same_bucket() {
    let (cache, _) = cache(100, 0);
    let key = BucketKey::new("p", "c");
    let small = Quota::new(1, 1.0).unwrap();
    cache.acquire_all(&one(&key, small, 1)).await.unwrap();
    assert!(!cache
        .acquire_all(&one(&key, small, 1))
        .await
        .unwrap()
        .allowed());
    let calls = cache.store().calls();
    let other = Quota::new(1, 2.0).unwrap();
    let d = cache.acquire_all(&one(&key, other, 1)).await.unwrap();
    assert!(!d.from_cache());
    assert_eq!(cache.store().calls(), calls + 1);
}

#[tokio::test]
async fn multi_limit_requests_use_only_cached_enforced_denials() {
    let (cache, _) = cache(100, 0);
    let q1 = Quota::new(1, 1.0).unwrap();
    let (client, ip) = (BucketKey::new("p", "client"), BucketKey::new("p", "ip"));
    let both = [
        AcquireRequest::new(client.clone(), q1, 1),
        AcquireRequest::new(ip.clone(), Quota::new(10, 1.0).unwrap(), 1),
    ];
    assert!(cache.acquire_all(&both).await.unwrap().allowed());
    assert!(!cache.acquire_all(&both).await.unwrap().allowed());
    let calls = cache.store().calls();
    let hit = cache.acquire_all(&both).await.unwrap();
    assert!(hit.from_cache() && !hit.allowed());
    assert_eq!(hit.reported().map(|(i, _)| i), Some(0));
    assert_eq!(hit.limits()[1], None, "the IP's limit was not evaluated");
    // The same bucket as a shadow limit: never answered from the cache.
    let shadow = [
        AcquireRequest::shadow(client.clone(), q1, 1),
        AcquireRequest::new(ip.clone(), Quota::new(10, 1.0).unwrap(), 1),
    ];
    let d = cache.acquire_all(&shadow).await.unwrap();
    assert!(d.allowed() && !d.from_cache());
    // The IP spent 2 tokens in all: the cached denials spent nothing.
    let ip_left = cache
        .store()
        .store
        .acquire_now(&ip, &Quota::new(10, 1.0).unwrap(), 0);
    assert_eq!(ip_left.remaining, 8);
    assert_eq!(cache.store().calls(), calls + 1);
}

#[tokio::test]
async fn single_limit_calls_use_the_cache_too() {
    let (cache, _) = cache(100, 0);
    let quota = Quota::new(1, 1.0).unwrap();
    let key = BucketKey::new("p", "c");
    assert!(cache.acquire(&key, &quota, 1).await.unwrap().allowed);
    assert!(!cache.acquire(&key, &quota, 1).await.unwrap().allowed);
    let calls = cache.store().calls();
    assert!(!cache.acquire(&key, &quota, 1).await.unwrap().allowed);
    let many = cache
        .acquire_many(&[
            AcquireRequest::new(key.clone(), quota, 1),
            AcquireRequest::new(BucketKey::new("p", "other"), quota, 1),
        ])
        .await;
    assert!(!many[0].as_ref().unwrap().allowed);
    assert!(many[1].as_ref().unwrap().allowed);
    assert_eq!(
        cache.store().calls(),
        calls + 1,
        "only the other key was asked"
    );
    assert_eq!(cache.hits(), 2);
}

#[tokio::test]
async fn the_cache_holds_at_most_its_capacity_and_drops_stale_entries_first() {
    let (cache, clock) = cache(SHARDS, 0); // one entry per shard
    let quota = Quota::new(1, 1.0).unwrap();
    for i in 0..500 {
        let key = BucketKey::new("p", &i.to_string());
        cache.acquire_all(&one(&key, quota, 1)).await.unwrap();
        cache.acquire_all(&one(&key, quota, 1)).await.unwrap();
    }
    assert!(cache.len() <= SHARDS, "{} entries", cache.len());
    assert!(cache.len() > SHARDS / 2, "{} entries", cache.len());
    // Once every entry is stale, a lookup drops it.
    clock.advance_us(SEC);
    for i in 0..500 {
        let key = BucketKey::new("p", &i.to_string());
        assert!(cache
            .acquire_all(&one(&key, quota, 0))
            .await
            .unwrap()
            .allowed());
    }
    assert!(cache.is_empty());
}

#[tokio::test]
async fn a_denial_of_a_cost_above_capacity_is_not_cached() {
    let (cache, _) = cache(100, 0);
    let quota = Quota::new(2, 1.0).unwrap();
    let key = BucketKey::new("p", "c");
    assert!(!cache
        .acquire_all(&one(&key, quota, 3))
        .await
        .unwrap()
        .allowed());
    assert!(cache.is_empty(), "a full bucket tells nothing certain");
    assert_eq!(cache.name(), "memory");
    cache.ping().await.unwrap();
}

#[tokio::test]
async fn on_a_store_that_refunds_only_buckets_decided_alone_use_the_cache() {
    let (mut cache, _clock) = cache(10, 0);
    cache.store.refunds = true;
    let quota = Quota::new(1, 1.0).unwrap();
    let (alone, grouped) = (BucketKey::new("p", "alone"), BucketKey::new("p", "grouped"));
    for (key, grouping) in [(&alone, Grouping::Alone), (&grouped, Grouping::Grouped)] {
        for _ in 0..4 {
            cache
                .acquire_all_grouped(&one(key, quota, 1), grouping)
                .await
                .unwrap();
        }
    }
    // Alone: one allowed, one denial from the store, two from the cache.
    // Grouped: every request to the store, nothing recorded.
    assert_eq!(cache.store().calls(), 2 + 4);
    assert_eq!(cache.hits(), 2);
    assert_eq!(cache.len(), 1);
    // The BucketStore methods know nothing of the buckets: grouped.
    for _ in 0..2 {
        assert!(!cache.acquire(&grouped, &quota, 1).await.unwrap().allowed);
    }
    assert_eq!(cache.store().calls(), 8);
    assert_eq!(cache.capabilities(), cache.store().capabilities());
}

/// Two replicas' caches on one shared store.
fn two_replicas() -> (
    DenyCache<Counted, ManualClock>,
    DenyCache<Counted, ManualClock>,
    ManualClock,
) {
    let (a, clock) = cache(100, 200);
    let b = DenyCache::with_clock(a.store().clone(), 100, clock.clone());
    (a, b, clock)
}

async fn exhaust(cache: &DenyCache<Counted, ManualClock>, key: &BucketKey, quota: Quota) {
    while cache
        .acquire_all(&one(key, quota, 1))
        .await
        .unwrap()
        .allowed()
    {}
}

#[tokio::test]
async fn a_reset_drops_the_denials_here_at_once_and_elsewhere_at_the_next_poll() {
    let (a, b, _clock) = two_replicas();
    let quota = Quota::new(2, 0.001).unwrap();
    let key = BucketKey::new("p", "locked-out");
    assert!(
        a.observe_resets(a.resets().await.unwrap()),
        "the first one seen"
    );
    assert!(!a.observe_resets(a.resets().await.unwrap()), "unchanged");
    b.observe_resets(b.resets().await.unwrap());
    exhaust(&a, &key, quota).await;
    exhaust(&b, &key, quota).await;
    assert!(a
        .acquire_all(&one(&key, quota, 1))
        .await
        .unwrap()
        .from_cache());
    assert!(b
        .acquire_all(&one(&key, quota, 1))
        .await
        .unwrap()
        .from_cache());

    a.reset(&key).await.unwrap();
    assert!(a.acquire_all(&one(&key, quota, 1)).await.unwrap().allowed());
    // B has not polled yet: its cached denial still answers (stricter
    // than the store, never more lenient) ...
    assert!(b
        .acquire_all(&one(&key, quota, 1))
        .await
        .unwrap()
        .from_cache());
    // ... until it reads the new generation.
    assert!(b.observe_resets(b.resets().await.unwrap()));
    assert!(
        !b.observe_resets(b.resets().await.unwrap()),
        "same generation"
    );
    let after = b.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(after.allowed() && !after.from_cache(), "{after:?}");
}

#[tokio::test]
async fn a_denial_decided_before_a_reset_and_recorded_after_the_poll_never_answers() {
    let (a, b, _clock) = two_replicas();
    let quota = Quota::new(1, 0.001).unwrap();
    let key = BucketKey::new("p", "in-flight");
    b.observe_resets(b.resets().await.unwrap());
    assert!(b.acquire_all(&one(&key, quota, 1)).await.unwrap().allowed());
    // B's next call is denied by the store; while its reply travels, the
    // bucket is reset (through A) and B polls the new generation.
    let (store, b2) = (a.store().store.clone(), b.clone());
    let hook_key = key.clone();
    b.store().in_flight.set(move || {
        store.reset_now(&hook_key);
        let generation = futures_util::FutureExt::now_or_never(store.resets()).unwrap();
        assert!(b2.observe_resets(generation.unwrap()));
    });
    let denied = b.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(!denied.allowed() && !denied.from_cache());
    // The denial was recorded after the poll, in the epoch before it: it
    // must not answer; the store does, and allows (the bucket is full).
    let next = b.acquire_all(&one(&key, quota, 1)).await.unwrap();
    assert!(next.allowed() && !next.from_cache(), "{next:?}");
}
