//! Prometheus metrics of `rateguard rls`, with bounded labels.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `rateguard_rls_decisions_total` | `domain`, `limit`, `decision` ∈ `ok`, `over_limit`, `shadow_over_limit`, `unlimited`, `replaced`, `failed_open`, `local_fallback` | one per request descriptor that matched a rule (`limit` is the rule's name, or its descriptor path; `override` for a request's own `descriptor.limit`); `local_fallback`: decided by this replica alone while the store failed (`on_error = "local"`) |
//! | `rateguard_rls_unmatched_total` | `domain` | descriptors that matched no rule (`domain` is `unknown` for a domain not in the limits files) |
//! | `rateguard_rls_requests_total` | `outcome` ∈ `ok`, `over_limit`, `failed_open`, `failed_closed`, `local_fallback`, `invalid` | `ShouldRateLimit` calls |
//! | `rateguard_store_latency_seconds` | — | histogram of store calls (one per request), timeouts included, as for `serve` |
//! | `rateguard_store_errors_total` | `error` ∈ `timeout`, `unavailable`, `circuit_open`, `backend` | store failures, as for `serve` |
//! | `rateguard_config_reloads_total`, `rateguard_config_info` | `result`; `hash` | reloads (`SIGHUP`) and the active config's hash, as for `serve` |
//! | `rateguard_rlqs_streams` | — | open RLQS streams (gauge) |
//! | `rateguard_rlqs_buckets` | — | RLQS buckets tracked over all streams (gauge) |
//! | `rateguard_rlqs_assignments_total` | `assignment` ∈ `token_bucket`, `allow_all`, `deny_all`, `abandon` | RLQS assignments sent |
//! | `rateguard_rlqs_usage_total` | `domain`, `outcome` ∈ `allowed`, `denied` | requests Envoys reported over RLQS (`domain` is `unknown` for a domain not in the limits files) |
//!
//! Labels come from the limits files and fixed words
//! (`rateguard_contract::metrics`), never from request values. The store
//! and config families are the runtime's, as for `serve`. Every counter is created at start-up (and at a reload, for new
//! rules) and held as a handle.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Labelled;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rateguard_contract::metrics::{Family, RlqsAssignment, RlsDecision, RlsOutcome};
pub use rateguard_contract::metrics::{OVERRIDE_LIMIT as OVERRIDE_LABEL, UNKNOWN_DOMAIN};
use rateguard_runtime::{ConfigMetrics, StoreMetrics};

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
struct AssignmentLabels {
    assignment: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    domain: String,
    outcome: &'static str,
}

/// The RLQS metrics (`rateguard_rlqs_*`).
#[derive(Debug)]
pub struct QuotaMetrics {
    streams: Gauge,
    buckets: Gauge,
    assignments: [Counter; RlqsAssignment::ALL.len()],
    usage: Labelled<UsageLabels, Counter>,
}

impl QuotaMetrics {
    fn register(registry: &mut Registry) -> Self {
        let streams = Gauge::default();
        let family = Family::RlqsStreams;
        registry.register(family.name(), family.help(), streams.clone());
        let buckets = Gauge::default();
        let family = Family::RlqsBuckets;
        registry.register(family.name(), family.help(), buckets.clone());
        let by_kind = Labelled::<AssignmentLabels, Counter>::default();
        let family = Family::RlqsAssignments;
        registry.register(family.name(), family.help(), by_kind.clone());
        let assignments = RlqsAssignment::ALL.map(|a| {
            by_kind
                .get_or_create(&AssignmentLabels {
                    assignment: a.as_str(),
                })
                .clone()
        });
        let usage = Labelled::<UsageLabels, Counter>::default();
        let family = Family::RlqsUsage;
        registry.register(family.name(), family.help(), usage.clone());
        Self {
            streams,
            buckets,
            assignments,
            usage,
        }
    }

    /// A stream opened (`+1`) or closed (`-1`).
    pub fn streams(&self, delta: i64) {
        self.streams.inc_by(delta);
    }

    /// Buckets started (`> 0`) or forgotten (`< 0`) being tracked.
    pub fn buckets(&self, delta: i64) {
        self.buckets.inc_by(delta);
    }

    /// Counts one assignment sent.
    pub fn assigned(&self, kind: RlqsAssignment) {
        self.assignments[kind.index()].inc();
    }

    /// Counts requests an Envoy reported in `domain` (a configured
    /// domain's name, or [`UNKNOWN_DOMAIN`]).
    pub fn usage(&self, domain: &str, allowed: u64, denied: u64) {
        for (outcome, n) in [("allowed", allowed), ("denied", denied)] {
            self.usage
                .get_or_create(&UsageLabels {
                    domain: domain.to_owned(),
                    outcome,
                })
                .inc_by(n);
        }
    }
}

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
    /// The store failed and this replica decided alone (`on_error =
    /// "local"`), within the limit or over it.
    pub local_fallback: Counter,
}

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
    decisions: Labelled<DecisionLabels, Counter>,
    unmatched: Labelled<DomainLabels, Counter>,
    outcomes: [Counter; RlsOutcome::ALL.len()],
    store: StoreMetrics,
    config: ConfigMetrics,
    quota: QuotaMetrics,
}

impl Metrics {
    /// A registry with a counter set for every rule of `limits` (see
    /// [`rules`](Self::rules)).
    pub fn new(limits: &Limits) -> Self {
        let mut registry = Registry::default();
        let decisions = Labelled::<DecisionLabels, Counter>::default();
        let family = Family::RlsDecisions;
        registry.register(family.name(), family.help(), decisions.clone());
        let unmatched = Labelled::<DomainLabels, Counter>::default();
        let family = Family::RlsUnmatched;
        registry.register(family.name(), family.help(), unmatched.clone());
        let requests = Labelled::<OutcomeLabels, Counter>::default();
        let family = Family::RlsRequests;
        registry.register(family.name(), family.help(), requests.clone());
        let outcomes = RlsOutcome::ALL.map(|outcome| {
            let outcome = outcome.as_str();
            requests.get_or_create(&OutcomeLabels { outcome }).clone()
        });
        let store = StoreMetrics::register(&mut registry);
        let config = ConfigMetrics::register(&mut registry);
        let quota = QuotaMetrics::register(&mut registry);
        let metrics = Self {
            registry,
            decisions,
            unmatched,
            outcomes,
            store,
            config,
            quota,
        };
        let _ = metrics.rules(limits);
        metrics
    }

    /// The counters of every rule of `limits` (created at zero, so every
    /// configured series is exported before its first decision).
    pub fn rules(&self, limits: &Limits) -> RuleSet {
        let counters = |domain: &str, limit: &str| {
            let get = |decision: RlsDecision| {
                self.decisions
                    .get_or_create(&DecisionLabels {
                        domain: domain.to_owned(),
                        limit: limit.to_owned(),
                        decision: decision.as_str(),
                    })
                    .clone()
            };
            RuleCounters {
                ok: get(RlsDecision::Ok),
                over_limit: get(RlsDecision::OverLimit),
                shadow_over_limit: get(RlsDecision::ShadowOverLimit),
                unlimited: get(RlsDecision::Unlimited),
                replaced: get(RlsDecision::Replaced),
                failed_open: get(RlsDecision::FailedOpen),
                local_fallback: get(RlsDecision::LocalFallback),
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
    pub fn outcome(&self, outcome: RlsOutcome) {
        self.outcomes[outcome.index()].inc();
    }

    /// The RLQS metrics.
    pub fn quota(&self) -> &QuotaMetrics {
        &self.quota
    }

    /// The store's latency and errors (the decision layer's).
    pub fn store(&self) -> &StoreMetrics {
        &self.store
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        rateguard_runtime::metrics::encode(&self.registry)
    }
}
