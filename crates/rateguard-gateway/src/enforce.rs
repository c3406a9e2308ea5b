//! Enforcement: a policy's [`Plan`] decided by the runtime's decision
//! layer ([`rateguard_runtime::Decider`]: the store within its budget,
//! `on_error`, the deny cache), turned into a [`Verdict`] and counted per
//! policy and limit.
//!
//! A request spends the policy's `cost` from every limit that applies to
//! it, in one store call: all or nothing, so a request denied by one
//! limit spends nothing on the others ([`crate::plan`]). When no limit
//! applies the request is allowed without a store call.
//!
//! A policy in shadow mode (`shadow = true`) sends its limits as shadow
//! limits: each is spent when it fits and none denies, and a request over
//! any of them becomes [`Verdict::ShadowDenied`]: counted as
//! `decision="shadow_denied"`, logged at trace, and forwarded.

use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{Decision, MultiDecision};
use rateguard_runtime::{DecideOptions, Decided, Decider};
use rateguard_store::BucketStore;

use crate::config::OnError;
use crate::identity::Requester;
use crate::metrics::{Metrics, NEAR_LIMIT_PERCENT};
use crate::plan::{plan, Plan, PlanQuotas};
use crate::policy::{Policy, Tier};

pub use rateguard_runtime::decide::WARN_EVERY;

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

/// The decision layer, seen by the gateway's policies.
#[derive(Debug)]
pub struct Enforcer<S> {
    decider: Decider<S>,
}

impl<S: BucketStore> Enforcer<S> {
    /// Enforces with `store`, giving it `timeout` per decision. With
    /// `on_error = "local"` this replica enforces each limit itself while
    /// the store fails (call it inside a Tokio runtime then), all of it
    /// unless [`with_replicas_hint`](Self::with_replicas_hint).
    pub fn new(store: S, timeout: Duration, on_error: OnError, metrics: Arc<Metrics>) -> Self {
        let metrics = metrics.store().clone();
        Self {
            decider: Decider::new(store, timeout, on_error, metrics),
        }
    }

    /// Enforces with `store` as `[store]` says (see
    /// [`Decider::with_options`]).
    pub fn with_options(store: S, options: &DecideOptions, metrics: &Metrics) -> Self {
        Self {
            decider: Decider::with_options(store, options, metrics.store().clone()),
        }
    }

    /// `on_error = "local"`: this replica's share of each limit while the
    /// store fails is `1/replicas_hint` (`store.replicas_hint`).
    pub fn with_replicas_hint(self, replicas_hint: u32) -> Self {
        Self {
            decider: self.decider.with_replicas_hint(replicas_hint),
        }
    }

    /// The same enforcer asking the store through a deny cache of at most
    /// `capacity` denials (exact; see `rateguard_store::deny_cache`).
    pub fn with_deny_cache(self, capacity: usize) -> Self {
        Self {
            decider: self.decider.with_deny_cache(capacity),
        }
    }

    /// Whether a deny cache answers before the store.
    pub fn has_deny_cache(&self) -> bool {
        self.decider.has_deny_cache()
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.decider.store()
    }

    /// The decision layer (the admin API peeks and resets through it).
    pub fn decider(&self) -> &Decider<S> {
        &self.decider
    }

    /// The time budget of one store call (`store.timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.decider.budget()
    }

    /// Decides one request of `requester` under `policy` at the quotas of
    /// its plan (if any): plan, decide, judge; counted with the plan.
    pub async fn check(&self, policy: &Policy, requester: &Requester<'_>) -> Verdict {
        let tier = policy.tier(requester.plan());
        let plan = plan(policy, requester, &PlanQuotas);
        if plan.is_empty() {
            tier.counters.unlimited.inc();
            tracing::trace!(policy = policy.name(), "No limit applies.");
            return Verdict::Allowed(None);
        }
        let decided = self.decider.decide(plan.requests(), plan.grouping()).await;
        judge(policy, tier, &plan, decided)
    }
}

/// Who decided a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// The shared store (or its deny cache).
    Store,
    /// This replica alone, while the store fails (`on_error = "local"`).
    Local,
}

/// The verdict on `decided` for the planned requests, counted under `tier`.
fn judge(policy: &Policy, tier: &Tier, plan: &Plan, decided: Decided) -> Verdict {
    let counters = &tier.counters;
    let (decision, by) = match decided {
        Decided::Store(decision) => (decision, By::Store),
        Decided::Local(decision) => (decision, By::Local),
        Decided::FailedOpen => {
            counters.failed_open.inc();
            return Verdict::FailedOpen;
        }
        Decided::FailedClosed => {
            counters.failed_closed.inc();
            return Verdict::FailedClosed;
        }
    };
    judge_decision(policy, tier, plan, &decision, by)
}

/// The verdict on a `decision` over the planned requests (decision `i`
/// answers `policy.limits()[plan.limit_index(i)]`), counted.
fn judge_decision(
    policy: &Policy,
    tier: &Tier,
    plan: &Plan,
    decision: &MultiDecision,
    by: By,
) -> Verdict {
    let counters = &tier.counters;
    if decision.from_cache() {
        counters.deny_cache_hits.inc();
    }
    // A shadow policy's limits never deny; the request is over the limit
    // when any of them would have.
    let shadow_denial = policy.shadow() && decision.limits().iter().flatten().any(|d| !d.allowed);
    let reported = if shadow_denial {
        let enforced = vec![true; plan.requests().len()];
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
    let limit = &policy.limits()[plan.limit_index(i)];
    let limit_counters = tier.limit_counters(plan.limit_index(i));
    let reported = Reported {
        limit: plan.limit_index(i),
        decision: d,
    };
    let (verdict, counter) = if shadow_denial {
        (
            Verdict::ShadowDenied(reported),
            &limit_counters.shadow_denied,
        )
    } else if decision.allowed() {
        if by == By::Store
            && u64::from(d.remaining) * 100 <= u64::from(d.limit) * NEAR_LIMIT_PERCENT
        {
            counters.near_limit.inc();
        }
        (Verdict::Allowed(Some(reported)), &limit_counters.allowed)
    } else {
        (Verdict::Denied(reported), &limit_counters.denied)
    };
    // A local decision (the store failing) is counted as such, whatever it was.
    let counter = match by {
        By::Store => counter,
        By::Local => &limit_counters.local_fallback,
    };
    counter.inc();
    tracing::trace!(
        policy = policy.name(),
        plan = tier.plan().unwrap_or(""),
        limit = limit.name(),
        remaining = d.remaining,
        retry_after = ?d.retry_after,
        verdict = ?verdict,
        by = ?by,
        "Decided."
    );
    verdict
}

#[cfg(test)]
mod tests;
