//! [`RateLimiter`]: `ShouldRateLimit` over any [`BucketStore`].
//!
//! One request: [`plan`] it, send every bucket it touches to the runtime's
//! decision layer ([`Decider`]) in **one** all-or-nothing call (a request
//! over one enforced limit spends on none), then answer one status per
//! descriptor, in order. The decision layer applies `store.timeout_ms`,
//! the deny cache and `on_error`: a store failure answers `OK` (`"allow"`),
//! gRPC `UNAVAILABLE` (`"deny"`, so Envoy's `failure_mode_deny` decides),
//! or decides on this replica's share of each limit (`"local"`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use rateguard_contract::metrics::RlsOutcome as Outcome;
use rateguard_runtime::reload::{carry_over, ActiveConfig, Command, Reload};
use rateguard_runtime::{ConfigMetrics, Decided, Decider};
use rateguard_store::{AcquireRequest, BucketStore, Grouping};
use tonic::{Request, Response, Status};

use crate::config::{RlsConfig, RlsOptions};
use crate::limits::Limits;
use crate::metrics::{Metrics, RuleCounters, RuleSet, UNKNOWN_DOMAIN};
use crate::plan::{plan, Spend, Step};
use crate::response::{self, ResponseHeaders};

/// The Rate Limit Service: limits (swapped whole by a reload), a store,
/// metrics.
#[derive(Debug)]
pub struct RateLimiter<S> {
    live: ArcSwap<LiveLimits>,
    /// The hash of the config as read at start, if built from one.
    start_hash: Option<String>,
    decider: Decider<S>,
    metrics: Metrics,
    options: RlsOptions,
}

/// What a reload replaces: the limits, their counters and the config they
/// came from. A request holds one from its plan to its answer.
#[derive(Debug)]
pub struct LiveLimits {
    limits: Limits,
    counters: RuleSet,
    config: Option<ActiveConfig>,
}

impl LiveLimits {
    fn counters(&self, domain: &str, spend: &Spend) -> Option<&RuleCounters> {
        match &spend.rule {
            Some(rule) => Some(self.counters.rule(rule.index)),
            None => self.counters.overrides(domain),
        }
    }

    fn domain_label<'a>(&self, domain: &'a str) -> &'a str {
        if self.limits.has_domain(domain) {
            domain
        } else {
            UNKNOWN_DOMAIN
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The config in force, as `GET /config` shows it (`None` when the
    /// service was built from limits alone, [`RateLimiter::new`]).
    pub fn config(&self) -> Option<&ActiveConfig> {
        self.config.as_ref()
    }
}

impl<S: BucketStore> RateLimiter<S> {
    /// A service deciding `limits` on `store` (with `on_error = "local"`,
    /// call it inside a Tokio runtime).
    pub fn new(limits: Limits, store: S, options: RlsOptions) -> Self {
        Self::build(limits, None, store, options)
    }

    /// The service of a checked `config` on `store`: [`new`](Self::new)
    /// plus `GET /config` and the config's hash in `/metrics`.
    pub fn from_config(config: RlsConfig, store: S) -> Self {
        let active = config.active();
        let options = config.options();
        Self::build(config.limits, Some(active), store, options)
    }

    fn build(limits: Limits, config: Option<ActiveConfig>, store: S, options: RlsOptions) -> Self {
        let metrics = Metrics::new(&limits);
        if let Some(active) = &config {
            metrics.config().set_hash(active.hash());
        }
        let counters = metrics.rules(&limits);
        let decider = Decider::with_options(store, &options.store, metrics.store().clone());
        Self {
            start_hash: config.as_ref().map(|c| c.hash().to_owned()),
            live: ArcSwap::from_pointee(LiveLimits {
                limits,
                counters,
                config,
            }),
            decider,
            metrics,
            options,
        }
    }

    /// The live limits now.
    pub fn live(&self) -> Arc<LiveLimits> {
        self.live.load_full()
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &S {
        self.decider.store()
    }

    /// The decision layer (the admin listener's view of the store).
    pub fn decider(&self) -> &Decider<S> {
        &self.decider
    }

    /// Whether a deny cache answers before the store.
    pub fn has_deny_cache(&self) -> bool {
        self.decider.has_deny_cache()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The options.
    pub fn options(&self) -> &RlsOptions {
        &self.options
    }

    /// Decides one request.
    pub async fn decide(&self, request: &RateLimitRequest) -> Result<RateLimitResponse, Status> {
        let live = self.live();
        let steps = plan(&live.limits, request).map_err(|e| {
            self.metrics.outcome(Outcome::Invalid);
            Status::invalid_argument(e.to_string())
        })?;
        let domain = request.domain.as_str();
        // A `requests_per_unit: 0` limit refuses the request by itself; the
        // store then only reports the other buckets (cost 0 spends nothing).
        let blocked = steps.iter().any(
            |s| matches!(s, Step::Bucket(spend) if spend.limit.quota.is_none() && !spend.shadow),
        );
        // One store request per bucket: a descriptor repeated in one
        // request (same entries, same bucket) spends its costs together.
        let mut wants: Vec<AcquireRequest> = Vec::new();
        let mut slots = vec![None; steps.len()];
        for (i, step) in steps.iter().enumerate() {
            let Step::Bucket(spend) = step else { continue };
            let Some(quota) = spend.limit.quota else {
                continue;
            };
            let cost = if blocked { 0 } else { spend.cost };
            let slot = match wants.iter().position(|w| w.key == spend.key) {
                Some(slot) => {
                    let want = &mut wants[slot];
                    want.cost = want.cost.saturating_add(cost);
                    want.enforced |= !spend.shadow;
                    slot
                }
                None => {
                    wants.push(AcquireRequest {
                        key: spend.key.clone(),
                        quota,
                        cost,
                        enforced: !spend.shadow,
                    });
                    wants.len() - 1
                }
            };
            slots[i] = Some(slot);
        }
        // Any descriptor may be combined with any other in some request:
        // their buckets are grouped.
        let decided = if wants.is_empty() {
            None
        } else {
            match self.decider.decide(&wants, Grouping::Grouped).await {
                Decided::Store(decision) => Some((decision, By::Store)),
                Decided::Local(decision) => Some((decision, By::Local)),
                Decided::FailedClosed if !blocked => {
                    self.metrics.outcome(Outcome::FailedClosed);
                    return Err(Status::unavailable("rate limit store unavailable"));
                }
                Decided::FailedOpen | Decided::FailedClosed => {
                    return Ok(self.failed_open(&live, domain, &steps, blocked));
                }
            }
        };
        let by = decided.as_ref().map_or(By::Store, |(_, by)| *by);
        let decided = decided.map(|(decision, _)| decision);
        let mut statuses = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let status = match step {
                Step::NoLimit => {
                    self.metrics.unmatched(live.domain_label(domain));
                    response::no_limit()
                }
                Step::Replaced(rule) => {
                    live.counters.rule(rule.index).replaced.inc();
                    response::no_limit()
                }
                Step::Unlimited(rule) => {
                    live.counters.rule(rule.index).unlimited.inc();
                    response::unlimited()
                }
                Step::Bucket(spend) => {
                    let decision =
                        slots[i].and_then(|slot| decided.as_ref().and_then(|d| d.limits()[slot]));
                    let counters = live.counters(domain, spend);
                    let name = spend.rule.as_ref().and_then(|r| r.name.as_deref());
                    match decision {
                        None if spend.limit.quota.is_none() => {
                            count(counters, by, false, spend.shadow);
                            response::blocked(&spend.limit, name, spend.shadow)
                        }
                        None => response::no_limit(),
                        Some(d) => {
                            count(counters, by, d.allowed, spend.shadow);
                            response::decided(&spend.limit, name, &d, spend.shadow)
                        }
                    }
                }
            };
            statuses.push(status);
        }
        let over = statuses.iter().any(|s| s.code == Code::OverLimit as i32);
        let store_denied = decided.as_ref().is_some_and(|d| !d.allowed());
        let overall = if over || store_denied {
            Code::OverLimit
        } else {
            Code::Ok
        };
        self.metrics.outcome(match (by, overall) {
            (By::Local, _) => Outcome::LocalFallback,
            (By::Store, Code::OverLimit) => Outcome::OverLimit,
            (By::Store, _) => Outcome::Ok,
        });
        let mut response = RateLimitResponse {
            overall_code: overall as i32,
            statuses,
            ..Default::default()
        };
        if self.options.response_headers == ResponseHeaders::Ietf {
            if let Some((slot, decision)) = decided.as_ref().and_then(|d| d.reported()) {
                let step = slots.iter().position(|s| *s == Some(slot));
                if let Some(Step::Bucket(spend)) = step.map(|i| &steps[i]) {
                    let name = spend.rule.as_ref().map_or(domain, |r| r.label.as_str());
                    response.response_headers_to_add =
                        response::ietf_headers(name, &wants[slot].quota, decision);
                }
            }
        }
        Ok(response)
    }

    /// The answer when the store failed and the request may pass: `OK`
    /// without `current_limit` for every bucket (nothing is known about
    /// them), unless a `requests_per_unit: 0` limit refuses it anyway.
    fn failed_open(
        &self,
        live: &LiveLimits,
        domain: &str,
        steps: &[Step],
        blocked: bool,
    ) -> RateLimitResponse {
        let statuses = steps
            .iter()
            .map(|step| match step {
                Step::NoLimit | Step::Replaced(_) => response::no_limit(),
                Step::Unlimited(_) => response::unlimited(),
                Step::Bucket(spend) if spend.limit.quota.is_none() => {
                    let name = spend.rule.as_ref().and_then(|r| r.name.as_deref());
                    response::blocked(&spend.limit, name, spend.shadow)
                }
                Step::Bucket(spend) => {
                    if let Some(counters) = live.counters(domain, spend) {
                        counters.failed_open.inc();
                    }
                    response::no_limit()
                }
            })
            .collect();
        let (code, outcome) = if blocked {
            (Code::OverLimit, Outcome::OverLimit)
        } else {
            (Code::Ok, Outcome::FailedOpen)
        };
        self.metrics.outcome(outcome);
        RateLimitResponse {
            overall_code: code as i32,
            statuses,
            ..Default::default()
        }
    }
}

impl<S: BucketStore> Reload for RateLimiter<S> {
    type Config = RlsConfig;

    /// Swaps in `next`'s limits (the `[rls] limits` files read again);
    /// what needs a restart (`[server]`, `[store]`,
    /// `rls.response_headers`) stays as it runs.
    fn apply(&self, next: RlsConfig) -> Vec<String> {
        let current = self.live();
        let mut raw = next.raw.clone();
        let restart = match current.config.as_ref() {
            Some(old) => carry_over(Command::Rls, old.raw(), &mut raw),
            None => Vec::new(),
        };
        let (limits, active) = RlsConfig { raw, ..next }.active_parts();
        self.metrics.config().set_hash(active.hash());
        let mut domains: Vec<&str> = limits.domains().collect();
        domains.sort_unstable();
        tracing::info!(
            hash = active.hash(),
            domains = ?domains,
            rules = limits.rules().len(),
            "New limits active."
        );
        let counters = self.metrics.rules(&limits);
        self.live.store(Arc::new(LiveLimits {
            limits,
            counters,
            config: Some(active),
        }));
        restart
    }

    fn config_metrics(&self) -> &ConfigMetrics {
        self.metrics.config()
    }

    fn read_hash(config: &RlsConfig) -> String {
        config.active().hash().to_owned()
    }

    fn start_hash(&self) -> Option<String> {
        self.start_hash.clone()
    }
}

/// Who decided a request's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// The store (or its deny cache).
    Store,
    /// This replica alone, while the store fails (`on_error = "local"`).
    Local,
}

/// Counts one descriptor's decision; a local one as such, whatever it was.
fn count(counters: Option<&RuleCounters>, by: By, allowed: bool, shadow: bool) {
    let Some(c) = counters else { return };
    match (by, allowed, shadow) {
        (By::Local, _, _) => c.local_fallback.inc(),
        (By::Store, true, _) => c.ok.inc(),
        (By::Store, false, true) => c.shadow_over_limit.inc(),
        (By::Store, false, false) => c.over_limit.inc(),
    };
}

#[tonic::async_trait]
impl<S: BucketStore> RateLimitService for RateLimiter<S> {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.decide(request.get_ref()).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reload_tests;
