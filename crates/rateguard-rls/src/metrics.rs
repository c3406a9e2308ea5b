//! Prometheus metrics of `rateguard rls`, with bounded labels.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `rateguard_rls_decisions_total` | `domain`, `limit`, `decision` ∈ `ok`, `over_limit`, `shadow_over_limit`, `unlimited`, `replaced`, `failed_open` | one per request descriptor that matched a rule (`limit` is the rule's name, or its descriptor path; `override` for a request's own `descriptor.limit`) |
//! | `rateguard_rls_unmatched_total` | `domain` | descriptors that matched no rule (`domain` is `unknown` for a domain not in the limits files) |
//! | `rateguard_rls_requests_total` | `outcome` ∈ `ok`, `over_limit`, `failed_open`, `failed_closed`, `invalid` | `ShouldRateLimit` calls |
//! | `rateguard_store_latency_seconds` | — | histogram of store calls (one per request), timeouts included, as for `serve` |
//! | `rateguard_store_errors_total` | `error` ∈ `timeout`, `unavailable`, `circuit_open`, `backend` | store failures, as for `serve` |
//! | `rateguard_config_reloads_total`, `rateguard_config_info` | `result`; `hash` | reloads (`SIGHUP`) and the active config's hash, as for `serve` |
//!
//! Labels come from the limits files and fixed words, never from request
//! values. Every counter is created at start-up (and at a reload, for new
//! rules) and held as a handle.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rateguard_gateway::metrics::ConfigMetrics;
use rateguard_store::StoreError;

use crate::limits::Limits;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    domain: String,
    limit: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DomainLabels {
    domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

/// The label of a request's `descriptor.limit` override in `limit`.
pub const OVERRIDE_LABEL: &str = "override";
/// The `domain` label of a domain that is not configured.
pub const UNKNOWN_DOMAIN: &str = "unknown";

/// The decision counters of one rule.
#[derive(Debug, Clone, Default)]
pub struct RuleCounters {
    /// Within the limit (or denied by another descriptor's limit).
    pub ok: Counter,
    /// Over the limit: the request was refused.
    pub over_limit: Counter,
    /// Over the limit under `shadow_mode`: answered `OK`.
    pub shadow_over_limit: Counter,
    /// `unlimited: true`.
    pub unlimited: Counter,
    /// Dropped by another rule's `replaces`.
    pub replaced: Counter,
    /// The store failed and `on_error = "allow"` let the request through.
    pub failed_open: Counter,
}

/// A whole `ShouldRateLimit` call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `overall_code = OK`.
    Ok,
    /// `overall_code = OVER_LIMIT`.
    OverLimit,
    /// The store failed; answered `OK`.
    FailedOpen,
    /// The store failed; answered gRPC `UNAVAILABLE`.
    FailedClosed,
    /// The request was malformed (`INVALID_ARGUMENT`).
    Invalid,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Ok, "ok"),
    (Outcome::OverLimit, "over_limit"),
    (Outcome::FailedOpen, "failed_open"),
    (Outcome::FailedClosed, "failed_closed"),
    (Outcome::Invalid, "invalid"),
];

/// The decision counters of every rule of one [`Limits`], indexed like
/// [`Limits::rules`]; a reload builds a new set (counters of rules that
/// keep their domain and label keep counting).
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<RuleCounters>,
    overrides: Vec<(String, RuleCounters)>,
}

impl RuleSet {
    /// The counters of rule `index` ([`crate::Rule::index`]).
    pub fn rule(&self, index: usize) -> &RuleCounters {
        &self.rules[index]
    }

    /// The counters of `descriptor.limit` overrides in `domain`, if configured.
    pub fn overrides(&self, domain: &str) -> Option<&RuleCounters> {
        self.overrides
            .iter()
            .find(|(d, _)| d == domain)
            .map(|(_, c)| c)
    }
}

/// Every metric of one `rateguard rls` process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    unmatched: Family<DomainLabels, Counter>,
    outcomes: [Counter; OUTCOMES.len()],
    store_latency: Histogram,
    store_errors: Family<ErrorLabels, Counter>,
    config: ConfigMetrics,
}

impl Metrics {
    /// A registry with a counter set for every rule of `limits` (see
    /// [`rules`](Self::rules)).
    pub fn new(limits: &Limits) -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "rateguard_rls_decisions",
            "Descriptor decisions by domain, limit and outcome",
            decisions.clone(),
        );
        let unmatched = Family::<DomainLabels, Counter>::default();
        registry.register(
            "rateguard_rls_unmatched",
            "Descriptors that matched no rule, by domain",
            unmatched.clone(),
        );
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "rateguard_rls_requests",
            "ShouldRateLimit calls by outcome",
            requests.clone(),
        );
        let outcomes =
            OUTCOMES.map(|(_, outcome)| requests.get_or_create(&OutcomeLabels { outcome }).clone());
        // 25 µs .. ~0.8 s, the buckets `serve` uses.
        let store_latency = Histogram::new(exponential_buckets(0.000_025, 2.0, 16));
        registry.register(
            "rateguard_store_latency_seconds",
            "Time of one store decision, timeouts included",
            store_latency.clone(),
        );
        let store_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "rateguard_store_errors",
            "Store failures by kind",
            store_errors.clone(),
        );
        for error in ["timeout", "unavailable", "circuit_open", "backend"] {
            let _ = store_errors.get_or_create(&ErrorLabels { error });
        }
        let config = ConfigMetrics::register(&mut registry);
        let metrics = Self {
            registry,
            decisions,
            unmatched,
            outcomes,
            store_latency,
            store_errors,
            config,
        };
        let _ = metrics.rules(limits);
        metrics
    }

    /// The counters of every rule of `limits` (created at zero, so every
    /// configured series is exported before its first decision).
    pub fn rules(&self, limits: &Limits) -> RuleSet {
        let counters = |domain: &str, limit: &str| {
            let get = |decision| {
                self.decisions
                    .get_or_create(&DecisionLabels {
                        domain: domain.to_owned(),
                        limit: limit.to_owned(),
                        decision,
                    })
                    .clone()
            };
            RuleCounters {
                ok: get("ok"),
                over_limit: get("over_limit"),
                shadow_over_limit: get("shadow_over_limit"),
                unlimited: get("unlimited"),
                replaced: get("replaced"),
                failed_open: get("failed_open"),
            }
        };
        let rules = limits
            .rules()
            .iter()
            .map(|r| counters(&r.domain, &r.label))
            .collect();
        let mut domains: Vec<&str> = limits.domains().collect();
        domains.sort_unstable();
        let overrides = domains
            .iter()
            .map(|d| ((*d).to_owned(), counters(d, OVERRIDE_LABEL)))
            .collect();
        for domain in domains.iter().copied().chain([UNKNOWN_DOMAIN]) {
            let _ = self.unmatched.get_or_create(&DomainLabels {
                domain: domain.to_owned(),
            });
        }
        RuleSet { rules, overrides }
    }

    /// Reloads and the active config's hash
    /// (`rateguard_config_reloads_total`, `rateguard_config_info`).
    pub fn config(&self) -> &ConfigMetrics {
        &self.config
    }

    /// Counts a descriptor that matched no rule in `domain` (a configured
    /// domain's name, or [`UNKNOWN_DOMAIN`]).
    pub fn unmatched(&self, domain: &str) {
        self.unmatched
            .get_or_create(&DomainLabels {
                domain: domain.to_owned(),
            })
            .inc();
    }

    /// Counts one call's outcome.
    pub fn outcome(&self, outcome: Outcome) {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .expect("every outcome has a label");
        self.outcomes[i].inc();
    }

    /// Records one store call's duration.
    pub fn observe_store_latency(&self, seconds: f64) {
        self.store_latency.observe(seconds);
    }

    /// Counts one store failure.
    pub fn store_error(&self, err: &StoreError) {
        let error = match err {
            StoreError::Timeout(_) => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::CircuitOpen(_) => "circuit_open",
            StoreError::Backend(_) => "backend",
        };
        self.store_errors
            .get_or_create(&ErrorLabels { error })
            .inc();
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
