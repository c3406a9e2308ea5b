use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use rateguard_core::Quota;
use rateguard_store::{AcquireRequest, Capabilities, MemoryStore, StoreError};
use tokio::time::Instant;

use super::*;
use crate::config::{IdentityConfig, PolicyConfig};
use crate::identity::Identifier;
use crate::policy::PolicyTable;

mod layered;
mod local;

/// Identification without trusted proxies or known keys.
fn identifier() -> Identifier {
    Identifier::new(&IdentityConfig {
        api_key_header: HeaderName::from_static("x-api-key"),
        trusted_proxies: Vec::new(),
        known_api_keys: None,
    })
}

/// The headers of a request with API key `key` (none for `""`).
fn with_key(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if !key.is_empty() {
        h.insert("x-api-key", HeaderValue::from_str(key).unwrap());
    }
    h
}

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

/// Decides one request with API key `key` from [`PEER`].
async fn check<S: BucketStore>(e: &Enforcer<S>, p: &Policy, key: &str) -> Verdict {
    let id = identifier();
    let headers = with_key(key);
    e.check(p, &id.requester(&headers, PEER)).await
}

fn select(t: &PolicyTable) -> &Policy {
    t.select("/", &Method::GET).unwrap()
}

/// A store that fails (or hangs) on purpose: the real stores' failures are
/// covered by the end-to-end tests against a killed redis-server.
#[derive(Debug, Default)]
struct BrokenStore {
    hang: bool,
    calls: AtomicUsize,
}

impl BucketStore for BrokenStore {
    fn kind(&self) -> rateguard_store::StoreKind {
        rateguard_store::StoreKind::RedisLua
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED
    }

    fn acquire_all(
        &self,
        _limits: &[AcquireRequest],
    ) -> impl Future<Output = Result<MultiDecision, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let hang = self.hang;
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Err(StoreError::Unavailable("connection refused".into()))
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

/// An enforcer over a fresh `MemoryStore`, 50 ms budget, failing open.
fn memory_enforcer(metrics: &Arc<Metrics>) -> Enforcer<MemoryStore> {
    Enforcer::new(
        MemoryStore::new(),
        Duration::from_millis(50),
        OnError::Allow,
        metrics.clone(),
    )
}

fn table(metrics: &Metrics, capacity: u64) -> PolicyTable {
    table_with(metrics, capacity, false)
}

fn table_with(metrics: &Metrics, capacity: u64, shadow: bool) -> PolicyTable {
    PolicyTable::new(
        &[PolicyConfig {
            shadow,
            ..PolicyConfig::single("p", Quota::new(capacity, 0.001).unwrap())
        }],
        metrics,
    )
}

#[tokio::test]
async fn memory_store_allows_capacity_then_denies_and_counts() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 3);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let mut allowed = 0;
    for _ in 0..5 {
        if matches!(check(&e, p, "k").await, Verdict::Allowed(Some(_))) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
    let limit = &p.limits()[0].counters;
    assert_eq!(limit.allowed.get(), 3);
    assert_eq!(limit.denied.get(), 2);
    // Another client has its own bucket.
    assert!(matches!(
        check(&e, p, "other").await,
        Verdict::Allowed(Some(_))
    ));
}

#[tokio::test]
async fn store_errors_follow_on_error() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 3);
    let p = select(&t);
    let open = Enforcer::new(
        BrokenStore::default(),
        Duration::from_millis(50),
        OnError::Allow,
        metrics.clone(),
    );
    assert_eq!(check(&open, p, "k").await, Verdict::FailedOpen);
    let closed = Enforcer::new(
        BrokenStore::default(),
        Duration::from_millis(50),
        OnError::Deny,
        metrics.clone(),
    );
    assert_eq!(check(&closed, p, "k").await, Verdict::FailedClosed);
    assert_eq!(p.counters.failed_open.get(), 1);
    assert_eq!(p.counters.failed_closed.get(), 1);
    assert!(metrics
        .encode()
        .contains("rateguard_store_errors_total{error=\"unavailable\"} 2"));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_costs_exactly_the_timeout() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 3);
    let p = select(&t);
    let store = BrokenStore {
        hang: true,
        ..Default::default()
    };
    let e = Enforcer::new(
        store,
        Duration::from_millis(50),
        OnError::Allow,
        metrics.clone(),
    );
    let start = Instant::now();
    assert_eq!(check(&e, p, "k").await, Verdict::FailedOpen);
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert!(metrics
        .encode()
        .contains("rateguard_store_errors_total{error=\"timeout\"} 1"));
}

#[tokio::test]
async fn shadow_mode_consumes_the_bucket_but_never_denies() {
    let metrics = Arc::new(Metrics::new());
    let t = table_with(&metrics, 2, true);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        verdicts.push(check(&e, p, "k").await);
    }
    let kinds: Vec<&str> = verdicts
        .iter()
        .map(|v| match v {
            Verdict::Allowed(_) => "allowed",
            Verdict::ShadowDenied(_) => "shadow",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["allowed", "allowed", "shadow", "shadow", "shadow"]);
    let Verdict::ShadowDenied(Reported {
        limit: 0,
        decision: d,
    }) = verdicts[2]
    else {
        unreachable!()
    };
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert!(d.retry_after > Duration::ZERO, "the denial as computed");
    let limit = &p.limits()[0].counters;
    assert_eq!(limit.allowed.get(), 2);
    assert_eq!(limit.shadow_denied.get(), 3);
    assert_eq!(limit.denied.get(), 0, "nothing is really denied");
}

#[tokio::test]
async fn shadow_mode_still_applies_on_error() {
    let metrics = Arc::new(Metrics::new());
    let t = table_with(&metrics, 2, true);
    let p = select(&t);
    let e = Enforcer::new(
        BrokenStore::default(),
        Duration::from_millis(50),
        OnError::Deny,
        metrics.clone(),
    );
    assert_eq!(check(&e, p, "k").await, Verdict::FailedClosed);
    assert_eq!(p.limits()[0].counters.shadow_denied.get(), 0);
}

#[tokio::test]
async fn near_limit_counts_allowed_requests_leaving_ten_percent_or_less() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 20);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let mut near = Vec::new();
    for _ in 0..22 {
        let before = p.counters.near_limit.get();
        check(&e, p, "k").await;
        near.push(p.counters.near_limit.get() - before);
    }
    // Remaining after each allowed request: 19, 18, .., 0. At most 10% of
    // 20 is 2 or fewer: the 18th, 19th and 20th requests; denials never count.
    let expected: Vec<u64> = (1..=22)
        .map(|i| u64::from((18..=20).contains(&i)))
        .collect();
    assert_eq!(near, expected);
    assert_eq!(p.limits()[0].counters.allowed.get(), 20);
    assert!(metrics
        .encode()
        .contains("rateguard_near_limit_total{policy=\"p\"} 3"));
}
