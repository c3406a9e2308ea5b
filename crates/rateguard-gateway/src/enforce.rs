//! Enforcement: ask the store, within its time budget, and apply the
//! fail-open / fail-closed rule when it cannot answer.
//!
//! A request spends the policy's `cost` from every limit that applies to
//! it, in one [`BucketStore::acquire_all`] call: all or nothing, so a
//! request denied by one limit spends nothing on the others. Limits that
//! do not apply (an `api_key` limit without a key, a `header:` limit
//! without the header) are left out; when none applies the request is
//! allowed without a store call.
//!
//! The store call is wrapped in [`tokio::time::timeout`] on top of whatever
//! the store does itself, so a degraded store adds at most `store.timeout_ms`
//! to a request. Every outcome is counted per policy and limit; failures
//! are logged at `warn`, at most once per [`WARN_EVERY`] with the number
//! suppressed.
//!
//! A policy in shadow mode (`shadow = true`) sends its limits as shadow
//! limits: each is spent when it fits and none denies, and a request over
//! any of them becomes [`Verdict::ShadowDenied`]: counted as
//! `decision="shadow_denied"`, logged at trace, and forwarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision, MultiDecision};
use rateguard_store::{AcquireRequest, BucketStore, DenyCache, StoreError, StoreKind};
use tokio::time::Instant;

use crate::config::OnError;
use crate::identity::Requester;
use crate::metrics::{Metrics, NEAR_LIMIT_PERCENT};
use crate::policy::Policy;

mod local;

use local::LocalFallback;

/// Shortest interval between two store-failure warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(5);

/// The limit a response reports, and its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// Index of the limit in [`Policy::limits`].
    pub limit: usize,
    /// That limit's decision: when allowed, the limit with the fewest
    /// tokens left; when denied, the denying limit with the longest wait
    /// (its `retry_after` is the request's).
    pub decision: Decision,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Tokens granted: forward it. `None` when no limit of the policy
    /// applied to the request (forwarded without rate-limit headers).
    Allowed(Option<Reported>),
    /// Over a limit: answer 429.
    Denied(Reported),
    /// Over a limit of a shadow-mode policy: forward it anyway, with the
    /// rate-limit headers of the denial (`r=0`).
    ShadowDenied(Reported),
    /// Store failed, `on_error = "allow"`: forward it without rate-limit headers.
    FailedOpen,
    /// Store failed, `on_error = "deny"`: answer 503.
    FailedClosed,
}

/// The store, asked directly or through the deny cache.
#[derive(Debug)]
enum Store<S> {
    Direct(S),
    Cached(DenyCache<S>),
}

impl<S: BucketStore> Store<S> {
    /// Decides `limits`, through the cache unless `direct`.
    async fn acquire_all(
        &self,
        limits: &[AcquireRequest],
        direct: bool,
    ) -> Result<MultiDecision, StoreError> {
        match self {
            Self::Cached(cache) if !direct => cache.acquire_all(limits).await,
            Self::Cached(cache) => cache.store().acquire_all(limits).await,
            Self::Direct(store) => store.acquire_all(limits).await,
        }
    }

    fn inner(&self) -> &S {
        match self {
            Self::Direct(store) => store,
            Self::Cached(cache) => cache.store(),
        }
    }
}

/// The store plus the failure rule.
#[derive(Debug)]
pub struct Enforcer<S> {
    store: Store<S>,
    timeout: Duration,
    on_error: OnError,
    /// `on_error = "local"`: this replica's own limits.
    local: Option<LocalFallback>,
    metrics: Arc<Metrics>,
    warn: WarnLimiter,
}

impl<S: BucketStore> Enforcer<S> {
    /// Enforces with `store`, giving it `timeout` per decision. With
    /// `on_error = "local"` this replica enforces each limit itself while
    /// the store fails (see `local`; call it inside a Tokio runtime then),
    /// all of it unless [`with_replicas_hint`](Self::with_replicas_hint).
    pub fn new(store: S, timeout: Duration, on_error: OnError, metrics: Arc<Metrics>) -> Self {
        Self {
            store: Store::Direct(store),
            timeout,
            on_error,
            local: (on_error == OnError::Local).then(|| LocalFallback::new(1)),
            metrics,
            warn: WarnLimiter::new(),
        }
    }

    /// `on_error = "local"`: this replica's share of each limit while the
    /// store fails is `1/replicas_hint` (`store.replicas_hint`).
    pub fn with_replicas_hint(mut self, replicas_hint: u32) -> Self {
        if let Some(local) = &mut self.local {
            local.set_hint(replicas_hint);
        }
        self
    }

    /// The same enforcer asking the store through a [`DenyCache`] of at
    /// most `capacity` denials: requests the store would certainly deny
    /// are answered locally (exact; see `rateguard_store::deny_cache`).
    pub fn with_deny_cache(self, capacity: usize) -> Self {
        let store = match self.store {
            Store::Direct(store) => Store::Cached(DenyCache::new(store, capacity)),
            cached @ Store::Cached(_) => cached,
        };
        Self { store, ..self }
    }

    /// Whether a deny cache answers before the store.
    pub fn has_deny_cache(&self) -> bool {
        matches!(self.store, Store::Cached(_))
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.store.inner()
    }

    /// The time budget of one store call (`store.timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Decides one request of `requester` under `policy`.
    pub async fn check(&self, policy: &Policy, requester: &Requester<'_>) -> Verdict {
        // Which limit of the policy each request sent to the store is.
        let mut indices = Vec::with_capacity(policy.limits().len());
        let mut requests = Vec::with_capacity(policy.limits().len());
        for (i, limit) in policy.limits().iter().enumerate() {
            let Some(identity) = requester.identity(limit.key()) else {
                continue;
            };
            let key = BucketKey::for_limit(policy.name(), limit.name(), &identity);
            let make = if policy.shadow() {
                AcquireRequest::shadow
            } else {
                AcquireRequest::new
            };
            indices.push(i);
            requests.push(make(key, *limit.quota(), policy.cost()));
        }
        if requests.is_empty() {
            policy.counters.unlimited.inc();
            tracing::trace!(policy = policy.name(), "No limit applies.");
            return Verdict::Allowed(None);
        }
        // fred-cluster gives tokens back when a later slot denies, so a
        // denial of a layered policy's bucket can be undone after the cache
        // saw it; those policies skip the cache (see `refunds`).
        let direct = policy.limits().len() > 1 && refunds(self.store().kind());
        let start = Instant::now();
        let acquire = self.store.acquire_all(&requests, direct);
        let result = tokio::time::timeout(self.timeout, acquire)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.timeout)));
        self.metrics
            .observe_store_latency(start.elapsed().as_secs_f64());
        match result {
            Ok(decision) => {
                if let Some(local) = &self.local {
                    local.store_answered();
                }
                judge(policy, &indices, &decision, Decider::Store)
            }
            Err(err) => self.failed(policy, &indices, &requests, &err),
        }
    }

    /// Counts a store failure and applies `on_error`.
    fn failed(
        &self,
        policy: &Policy,
        indices: &[usize],
        requests: &[AcquireRequest],
        err: &StoreError,
    ) -> Verdict {
        self.metrics.store_error(err);
        if let Some(suppressed) = self.warn.should_warn() {
            tracing::warn!(
                store = self.store().name(),
                error = %err,
                on_error = ?self.on_error,
                suppressed,
                "Rate-limit store failed; applying on_error."
            );
        }
        match self.on_error {
            OnError::Allow => {
                policy.counters.failed_open.inc();
                Verdict::FailedOpen
            }
            OnError::Deny => {
                policy.counters.failed_closed.inc();
                Verdict::FailedClosed
            }
            OnError::Local => match self.local.as_ref().map(|l| l.decide(requests)) {
                Some(Ok(decision)) => judge(policy, indices, &decision, Decider::Local),
                // Not reached: the keys are distinct and the memory store
                // does not fail otherwise. Fail open rather than guess.
                Some(Err(_)) | None => {
                    policy.counters.failed_open.inc();
                    Verdict::FailedOpen
                }
            },
        }
    }
}

/// Who decided a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decider {
    /// The shared store (or its deny cache).
    Store,
    /// This replica alone, while the store fails (`on_error = "local"`).
    Local,
}

/// Whether `kind` decides a request's limits slot by slot and refunds the
/// earlier slots when a later one denies (`fred-cluster`): a bucket a
/// layered policy shares may then get tokens back after a denial, which a
/// cached denial would not know of. The deny cache is exact only for
/// buckets nothing refunds, so for this kind it serves single-limit
/// policies only (whose buckets no layered request touches).
fn refunds(kind: StoreKind) -> bool {
    kind == StoreKind::FredCluster
}

/// The verdict on the store's `decision` over the policy's limits
/// `indices` (decision `i` answers `policy.limits()[indices[i]]`), counted.
fn judge(policy: &Policy, indices: &[usize], decision: &MultiDecision, by: Decider) -> Verdict {
    let counters = &policy.counters;
    if decision.from_cache() {
        counters.deny_cache_hits.inc();
    }
    // A shadow policy's limits never deny; the request is over the limit
    // when any of them would have.
    let shadow_denial = policy.shadow() && decision.limits().iter().flatten().any(|d| !d.allowed);
    let reported = if shadow_denial {
        let enforced = vec![true; indices.len()];
        MultiDecision::new(decision.limits().to_vec(), &enforced)
            .reported()
            .map(|(i, d)| (i, *d))
    } else {
        decision.reported().map(|(i, d)| (i, *d))
    };
    let Some((i, d)) = reported else {
        // Only a store that answers no limit at all gets here.
        counters.unlimited.inc();
        return Verdict::Allowed(None);
    };
    let limit = &policy.limits()[indices[i]];
    let reported = Reported {
        limit: indices[i],
        decision: d,
    };
    let (verdict, counter) = if shadow_denial {
        (
            Verdict::ShadowDenied(reported),
            &limit.counters.shadow_denied,
        )
    } else if decision.allowed() {
        if by == Decider::Store
            && u64::from(d.remaining) * 100
                <= u64::from(limit.quota().capacity()) * NEAR_LIMIT_PERCENT
        {
            counters.near_limit.inc();
        }
        (Verdict::Allowed(Some(reported)), &limit.counters.allowed)
    } else {
        (Verdict::Denied(reported), &limit.counters.denied)
    };
    // A local decision (the store failing) is counted as such, whatever it was.
    let counter = match by {
        Decider::Store => counter,
        Decider::Local => &limit.counters.local_fallback,
    };
    counter.inc();
    tracing::trace!(
        policy = policy.name(),
        limit = limit.name(),
        remaining = d.remaining,
        retry_after = ?d.retry_after,
        verdict = ?verdict,
        by = ?by,
        "Decided."
    );
    verdict
}

/// Lets one warning through per [`WARN_EVERY`], counting the rest.
#[derive(Debug)]
struct WarnLimiter {
    origin: Instant,
    /// Milliseconds since `origin` of the last warning, plus one (0 = never).
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed since the last warning)` if a warning is due now.
    fn should_warn(&self) -> Option<u64> {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests;
