use std::future::Future;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use rateguard_core::{BucketKey, Quota};
use rateguard_store::{Capabilities, MemoryStore, StoreKind};

use super::*;

/// A store that fails while `down` (or hangs, with `hang`), else decides
/// in memory, counting the calls that reach it.
#[derive(Debug, Default)]
struct Flaky {
    memory: MemoryStore,
    down: AtomicBool,
    hang: bool,
    calls: AtomicU64,
}

impl BucketStore for Flaky {
    fn kind(&self) -> StoreKind {
        StoreKind::RedisLua
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED
    }

    fn acquire_all(
        &self,
        limits: &[AcquireRequest],
    ) -> impl Future<Output = Result<MultiDecision, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (down, hang) = (self.down.load(Ordering::SeqCst), self.hang);
        let decided = (!down).then(|| self.memory.acquire_all_now(limits));
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            decided.unwrap_or_else(|| Err(StoreError::Unavailable("connection refused".into())))
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn metrics() -> (Registry, StoreMetrics) {
    let mut registry = Registry::default();
    let metrics = StoreMetrics::register(&mut registry);
    (registry, metrics)
}

fn options(on_error: OnError) -> DecideOptions {
    DecideOptions {
        budget: Duration::from_millis(50),
        on_error,
        replicas_hint: 1,
        deny_cache: None,
    }
}

/// One request for 1 token of `key`'s bucket of capacity 4 (no refill
/// within a test).
fn request(key: &str) -> [AcquireRequest; 1] {
    let quota = Quota::new(4, 0.001).unwrap();
    [AcquireRequest::new(BucketKey::new("p", key), quota, 1)]
}

fn down() -> Flaky {
    Flaky {
        down: AtomicBool::new(true),
        ..Flaky::default()
    }
}

#[tokio::test]
async fn a_store_that_answers_decides() {
    let (_registry, metrics) = metrics();
    let d = Decider::with_options(Flaky::default(), &options(OnError::Deny), metrics);
    let Decided::Store(decision) = d.decide(&request("k"), Grouping::Alone).await else {
        panic!("the store answers");
    };
    assert!(decision.allowed());
}

#[tokio::test]
async fn a_failing_store_follows_on_error() {
    let (registry, metrics) = metrics();
    for (on_error, expected) in [
        (OnError::Allow, Decided::FailedOpen),
        (OnError::Deny, Decided::FailedClosed),
    ] {
        let d = Decider::with_options(down(), &options(on_error), metrics.clone());
        assert_eq!(d.decide(&request("k"), Grouping::Alone).await, expected);
    }
    let text = crate::metrics::encode(&registry);
    assert!(
        text.contains("rateguard_store_errors_total{error=\"unavailable\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("rateguard_store_latency_seconds_count 2"),
        "{text}"
    );
}

#[tokio::test]
async fn local_decides_on_its_share_while_the_store_fails_then_returns() {
    let (_registry, metrics) = metrics();
    let options = DecideOptions {
        replicas_hint: 2,
        ..options(OnError::Local)
    };
    let d = Decider::with_options(down(), &options, metrics);
    let mut allowed = 0;
    for _ in 0..5 {
        match d.decide(&request("k"), Grouping::Alone).await {
            Decided::Local(decision) => {
                allowed += usize::from(decision.allowed());
                assert_eq!(decision.limits()[0].unwrap().limit, 2, "the share of 4");
            }
            other => panic!("decided locally, got {other:?}"),
        }
    }
    assert_eq!(allowed, 2);
    d.store().down.store(false, Ordering::SeqCst);
    let Decided::Store(decision) = d.decide(&request("k"), Grouping::Alone).await else {
        panic!("back on the store");
    };
    assert_eq!(decision.limits()[0].unwrap().remaining, 3, "its own bucket");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_costs_exactly_the_budget() {
    let (_registry, metrics) = metrics();
    let store = Flaky {
        hang: true,
        ..Flaky::default()
    };
    let d = Decider::with_options(store, &options(OnError::Allow), metrics);
    let start = Instant::now();
    assert_eq!(
        d.decide(&request("k"), Grouping::Alone).await,
        Decided::FailedOpen
    );
    assert_eq!(start.elapsed(), Duration::from_millis(50));
}

#[tokio::test]
async fn the_deny_cache_sits_only_in_front_of_a_shared_store() {
    let (_registry, metrics) = metrics();
    let cached = DecideOptions {
        deny_cache: Some(100),
        ..options(OnError::Deny)
    };
    let shared = Decider::with_options(Flaky::default(), &cached, metrics.clone());
    assert!(shared.has_deny_cache());
    let local = Decider::with_options(MemoryStore::new(), &cached, metrics.clone());
    assert!(!local.has_deny_cache(), "the memory store is local already");
    let off = Decider::with_options(Flaky::default(), &options(OnError::Deny), metrics);
    assert!(!off.has_deny_cache());
    // 4 allowed, one denial from the store, then the cache answers.
    for _ in 0..8 {
        shared.decide(&request("k"), Grouping::Grouped).await;
    }
    assert_eq!(shared.store().calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn warnings_are_rate_limited() {
    let w = WarnLimiter::new();
    assert_eq!(w.should_warn(), Some(0));
    assert_eq!(w.should_warn(), None);
    assert_eq!(w.should_warn(), None);
    tokio::time::advance(WARN_EVERY).await;
    assert_eq!(w.should_warn(), Some(2));
    assert_eq!(w.should_warn(), None);
}
