//! The decision layer both frontends share: one store call per request,
//! within its budget, and what happens when the store cannot answer.
//!
//! [`Decider::decide`] sends a request's buckets to the store in one
//! [`BucketStore::acquire_all`] (all or nothing), through the deny cache
//! when there is one, under [`tokio::time::timeout`] on top of whatever
//! the store does itself, so a degraded store adds at most
//! `store.timeout_ms` to a request. It returns what happened
//! ([`Decided`]); the gateway maps that to HTTP, the RLS to gRPC.
//!
//! When the store fails (an error, a timeout, an open breaker),
//! `store.on_error` decides: `allow` fails open, `deny` fails closed,
//! `local` decides on this replica's share of each limit (`local`).
//! Every failure is counted (`rateguard_store_errors_total{error}`) and
//! logged at `warn`, at most once per [`WARN_EVERY`] with the number
//! suppressed; every call's time is observed
//! (`rateguard_store_latency_seconds`).
//!
//! With `store.deny_cache` (the default) a store that is
//! [shared](rateguard_store::Capabilities::shared) is asked through a
//! [`DenyCache`], which answers locally what the store would certainly
//! deny, and only that: on a store that refunds it keeps off the buckets
//! the caller does not declare [`Grouping::Alone`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rateguard_contract::OnError;
use rateguard_core::{BucketKey, MultiDecision, Peek, Quota};
use rateguard_store::{AcquireRequest, BucketStore, DenyCache, Grouping, StoreError};
use tokio::time::Instant;

use crate::config::StoreConfig;
use crate::metrics::StoreMetrics;

mod local;

pub use local::share as local_quota;
use local::LocalFallback;

/// How often a replica with a deny cache reads the store's reset
/// generation ([`Decider::poll_resets`]): a bucket reset on another replica
/// stops being denied here within this plus one round trip.
pub const RESET_POLL: Duration = Duration::from_millis(250);

/// Shortest interval between two store-failure warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(5);

/// How the decision layer treats the store (`[store]`'s part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecideOptions {
    /// The time budget of one store call (`store.timeout_ms`).
    pub budget: Duration,
    /// What a store failure means (`store.on_error`).
    pub on_error: OnError,
    /// `on_error = "local"`: this replica's share of each limit is
    /// `1/replicas_hint` (`store.replicas_hint`).
    pub replicas_hint: u32,
    /// The deny cache's size (`None`: `store.deny_cache = false`); used
    /// only in front of a shared store.
    pub deny_cache: Option<usize>,
}

impl From<&StoreConfig> for DecideOptions {
    fn from(config: &StoreConfig) -> Self {
        Self {
            budget: config.timeout,
            on_error: config.on_error,
            replicas_hint: config.replicas_hint,
            deny_cache: config.deny_cache,
        }
    }
}

/// What happened to one request's store call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The store decided (or its deny cache, which says so:
    /// [`MultiDecision::from_cache`]).
    Store(MultiDecision),
    /// The store failed and this replica decided alone, on its share of
    /// each limit (`on_error = "local"`).
    Local(MultiDecision),
    /// The store failed; `on_error = "allow"`: let the request through.
    FailedOpen,
    /// The store failed; `on_error = "deny"`: refuse it.
    FailedClosed,
}

/// The store, asked directly or through the deny cache.
#[derive(Debug)]
enum Store<S> {
    Direct(S),
    Cached(DenyCache<S>),
}

impl<S: BucketStore> Store<S> {
    async fn acquire_all(
        &self,
        limits: &[AcquireRequest],
        grouping: Grouping,
    ) -> Result<MultiDecision, StoreError> {
        match self {
            Self::Direct(store) => store.acquire_all(limits).await,
            Self::Cached(cache) => cache.acquire_all_grouped(limits, grouping).await,
        }
    }

    fn inner(&self) -> &S {
        match self {
            Self::Direct(store) => store,
            Self::Cached(cache) => cache.store(),
        }
    }

    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        match self {
            Self::Direct(store) => store.reset(key).await,
            Self::Cached(cache) => cache.reset(key).await,
        }
    }
}

/// The store, its budget and the failure rule.
#[derive(Debug)]
pub struct Decider<S> {
    store: Store<S>,
    budget: Duration,
    on_error: OnError,
    /// `on_error = "local"`: this replica's own limits.
    local: Option<LocalFallback>,
    metrics: StoreMetrics,
    warn: WarnLimiter,
}

impl<S: BucketStore> Decider<S> {
    /// Decides on `store` as `options` say: the deny cache in front of a
    /// shared store, local limits for `on_error = "local"` (call it inside
    /// a Tokio runtime then).
    pub fn with_options(store: S, options: &DecideOptions, metrics: StoreMetrics) -> Self {
        let shared = store.capabilities().shared;
        let decider = Self::new(store, options.budget, options.on_error, metrics)
            .with_replicas_hint(options.replicas_hint);
        match options.deny_cache {
            Some(capacity) if shared => decider.with_deny_cache(capacity),
            _ => decider,
        }
    }

    /// Decides on `store`, giving it `budget` per call. With `on_error =
    /// "local"` this replica enforces each limit itself while the store
    /// fails (call it inside a Tokio runtime then), all of it unless
    /// [`with_replicas_hint`](Self::with_replicas_hint).
    pub fn new(store: S, budget: Duration, on_error: OnError, metrics: StoreMetrics) -> Self {
        Self {
            store: Store::Direct(store),
            budget,
            on_error,
            local: (on_error == OnError::Local).then(|| LocalFallback::new(1)),
            metrics,
            warn: WarnLimiter::new(),
        }
    }

    /// `on_error = "local"`: this replica's share of each limit while the
    /// store fails is `1/replicas_hint`.
    pub fn with_replicas_hint(mut self, replicas_hint: u32) -> Self {
        if let Some(local) = &mut self.local {
            local.set_hint(replicas_hint);
        }
        self
    }

    /// The same decider asking the store through a [`DenyCache`] of at
    /// most `capacity` denials, whatever the store.
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

    /// The time budget of one store call (`store.timeout_ms`), also the
    /// bound of `/readyz`'s ping.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Decides `requests` (distinct keys, at least one) in one store call;
    /// `grouping` says whether other requests decide their buckets together
    /// with others (for the deny cache on a store that refunds).
    pub async fn decide(&self, requests: &[AcquireRequest], grouping: Grouping) -> Decided {
        let start = Instant::now();
        let acquire = self.store.acquire_all(requests, grouping);
        let result = tokio::time::timeout(self.budget, acquire)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.budget)));
        self.metrics.observe_latency(start.elapsed().as_secs_f64());
        match result {
            Ok(decision) => {
                if let Some(local) = &self.local {
                    local.store_answered();
                }
                Decided::Store(decision)
            }
            Err(err) => self.failed(requests, &err),
        }
    }

    /// The bucket `key` under `quota` now, read without spending (the
    /// admin API's `GET /buckets`), within the budget.
    pub async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        self.within_budget(self.store().peek(key, quota)).await
    }

    /// Makes `key`'s bucket full again in the store and drops this
    /// replica's cached denials at once (the admin API's `DELETE
    /// /buckets`); other replicas drop theirs at their next
    /// [`poll_resets`](Self::poll_resets).
    pub async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        self.within_budget(self.store.reset(key)).await
    }

    /// With a deny cache: reads the store's reset generation and drops
    /// every cached denial if it changed (see
    /// `rateguard_store::deny_cache`, "Resets"); returns whether it did.
    /// Without one: nothing to do. The runtime calls it every
    /// [`RESET_POLL`].
    pub async fn poll_resets(&self) -> Result<bool, StoreError> {
        let Store::Cached(cache) = &self.store else {
            return Ok(false);
        };
        let generation = self.within_budget(cache.store().resets()).await?;
        Ok(cache.observe_resets(generation))
    }

    async fn within_budget<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.budget, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.budget)))
    }

    /// Counts a store failure and applies `on_error`.
    fn failed(&self, requests: &[AcquireRequest], err: &StoreError) -> Decided {
        self.metrics.error(err);
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
            OnError::Allow => Decided::FailedOpen,
            OnError::Deny => Decided::FailedClosed,
            OnError::Local => match self.local.as_ref().map(|l| l.decide(requests)) {
                Some(Ok(decision)) => Decided::Local(decision),
                // Not reached: the keys are distinct and the memory store
                // does not fail otherwise. Fail open rather than guess.
                Some(Err(_)) | None => Decided::FailedOpen,
            },
        }
    }
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
