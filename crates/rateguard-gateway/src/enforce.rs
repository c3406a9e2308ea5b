//! Enforcement: ask the store, within its time budget, and apply the
//! fail-open / fail-closed rule when it cannot answer.
//!
//! The store call is wrapped in [`tokio::time::timeout`] on top of whatever
//! the store does itself, so a degraded store adds at most `store.timeout_ms`
//! to a request. Every outcome is counted per policy; failures are logged at
//! `warn`, at most once per [`WARN_EVERY`] with the number suppressed.
//!
//! A policy in shadow mode (`shadow = true`) consumes its bucket exactly like
//! an enforcing one, but a denial becomes [`Verdict::ShadowDenied`]: counted
//! as `decision="shadow_denied"`, logged at trace, and forwarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision};
use rateguard_store::{BucketStore, StoreError};
use tokio::time::Instant;

use crate::config::OnError;
use crate::identity::Client;
use crate::metrics::{Metrics, NEAR_LIMIT_PERCENT};
use crate::policy::Policy;

/// Shortest interval between two store-failure warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(5);

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Tokens granted: forward it.
    Allowed(Decision),
    /// Over the limit: answer 429.
    Denied(Decision),
    /// Over the limit of a shadow-mode policy: forward it anyway, with the
    /// rate-limit headers of the denial (`r=0`).
    ShadowDenied(Decision),
    /// Store failed, `on_error = "allow"`: forward it without rate-limit headers.
    FailedOpen,
    /// Store failed, `on_error = "deny"`: answer 503.
    FailedClosed,
}

/// The store plus the failure rule.
#[derive(Debug)]
pub struct Enforcer<S> {
    store: S,
    timeout: Duration,
    on_error: OnError,
    metrics: Arc<Metrics>,
    warn: WarnLimiter,
}

impl<S: BucketStore> Enforcer<S> {
    /// Enforces with `store`, giving it `timeout` per decision.
    pub fn new(store: S, timeout: Duration, on_error: OnError, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            timeout,
            on_error,
            metrics,
            warn: WarnLimiter::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The time budget of one store call (`store.timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Decides one request of `client` under `policy`.
    pub async fn check(&self, policy: &Policy, client: &Client<'_>) -> Verdict {
        let key = BucketKey::new(policy.name(), &client.to_string());
        let start = Instant::now();
        let result =
            tokio::time::timeout(self.timeout, self.store.acquire(&key, policy.quota(), 1))
                .await
                .unwrap_or(Err(StoreError::Timeout(self.timeout)));
        self.metrics
            .observe_store_latency(start.elapsed().as_secs_f64());
        let counters = &policy.counters;
        match result {
            Ok(d) if d.allowed => {
                counters.allowed.inc();
                if u64::from(d.remaining) * 100
                    <= u64::from(policy.quota().capacity()) * NEAR_LIMIT_PERCENT
                {
                    counters.near_limit.inc();
                }
                tracing::trace!(policy = policy.name(), remaining = d.remaining, "Allowed.");
                Verdict::Allowed(d)
            }
            Ok(d) if policy.shadow() => {
                counters.shadow_denied.inc();
                tracing::trace!(
                    policy = policy.name(),
                    retry_after = ?d.retry_after,
                    "Over the limit in shadow mode; forwarding."
                );
                Verdict::ShadowDenied(d)
            }
            Ok(d) => {
                counters.denied.inc();
                tracing::trace!(policy = policy.name(), retry_after = ?d.retry_after, "Denied.");
                Verdict::Denied(d)
            }
            Err(err) => {
                self.metrics.store_error(&err);
                if let Some(suppressed) = self.warn.should_warn() {
                    tracing::warn!(
                        store = self.store.name(),
                        error = %err,
                        on_error = ?self.on_error,
                        suppressed,
                        "Rate-limit store failed; applying on_error."
                    );
                }
                match self.on_error {
                    OnError::Allow => {
                        counters.failed_open.inc();
                        Verdict::FailedOpen
                    }
                    OnError::Deny => {
                        counters.failed_closed.inc();
                        Verdict::FailedClosed
                    }
                }
            }
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
