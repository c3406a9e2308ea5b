//! Prometheus metrics, with typed names and bounded labels.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `rateguard_decisions_total` | `policy`, `limit`, `decision` ∈ `allowed`, `denied`, `shadow_denied`, `failed_open`, `failed_closed`, `local_fallback` | one per request that matched a policy (`shadow_denied`: over the limit under a `shadow = true` policy, forwarded anyway); `limit` is the limit the response reports (allowed: the one with the fewest tokens left; denied: the denying one with the longest wait), empty when no limit decided (store failures, or no limit of the policy applied to the request) |
//! | `rateguard_near_limit_total` | `policy` | allowed requests whose reported limit left at most [`NEAR_LIMIT_PERCENT`] % of its capacity (also counted as `allowed`) |
//! | `rateguard_deny_cache_hits_total` | `policy` | denials answered by the local deny cache without a store call (also counted as `denied`) |
//! | `rateguard_store_latency_seconds` | — | histogram of store decision time (timeouts included) |
//! | `rateguard_store_errors_total` | `error` ∈ `timeout`, `unavailable`, `circuit_open`, `backend` | store failures |
//! | `rateguard_upstream_responses_total` | `class` ∈ `1xx`..`5xx`, `error`, `timeout` | upstream answers by status class |
//! | `rateguard_connections_active` | — | open client connections (upgraded ones included) |
//! | `rateguard_upgrades_total` | `result` ∈ `accepted`, `denied` | upgrade requests (WebSocket handshakes): the backend's `101` relayed, or refused by a limit |
//! | `rateguard_upgraded_connections` | — | open upgraded connections |
//! | `rateguard_config_reloads_total` | `result` ∈ `ok`, `error` | reloads (`SIGHUP`); `error`: the new file was invalid, the old config stays |
//! | `rateguard_config_info` | `hash` | 1 for the active config's hash (as `GET /config` shows it) |
//!
//! Label values are policy and limit names (from the config) and fixed
//! words, never client identifiers or raw paths. Every counter the hot path
//! touches is created at start-up (per policy × limit × decision) and held
//! as a handle, so a request only does atomic increments.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rateguard_store::StoreError;

mod config;
mod labels;
mod upgrades;

pub use config::ConfigMetrics;
pub use upgrades::{UpgradeMetrics, UpgradeResult};

pub use labels::{Outcome, ReloadResult, StoreErrorKind, UpstreamClass};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    policy: String,
    limit: String,
    decision: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: StoreErrorKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: UpstreamClass,
}

/// The decision counters of one limit of a policy (`limit="<name>"`).
#[derive(Debug, Clone, Default)]
pub struct LimitCounters {
    /// Allowed, this limit reported (fewest tokens left).
    pub allowed: Counter,
    /// Denied (429) by this limit (the longest wait among the denials).
    pub denied: Counter,
    /// Over this limit under a shadow policy (forwarded anyway).
    pub shadow_denied: Counter,
    /// Decided by this replica alone while the store failed
    /// (`on_error = "local"`), allowed or denied.
    pub local_fallback: Counter,
}

/// One policy's counters: per limit, and those no limit decided (`limit=""`).
#[derive(Debug, Clone, Default)]
pub struct DecisionCounters {
    /// Per limit, in the policy's order.
    pub limits: Vec<LimitCounters>,
    /// Allowed without a store call: no limit of the policy applied.
    pub unlimited: Counter,
    /// Allowed with at most [`NEAR_LIMIT_PERCENT`] % of the reported
    /// limit's capacity left (`rateguard_near_limit_total`).
    pub near_limit: Counter,
    /// Denials answered by the deny cache (`rateguard_deny_cache_hits_total`).
    pub deny_cache_hits: Counter,
    /// Store failed; request let through.
    pub failed_open: Counter,
    /// Store failed; request refused (503).
    pub failed_closed: Counter,
}

/// An allowed request counts as near the limit when the tokens it leaves
/// are at most this share of the capacity (`remaining * 100 <= capacity *
/// NEAR_LIMIT_PERCENT`): for a capacity of 100, 10 or fewer left; for a
/// capacity under 10, only the last token.
pub const NEAR_LIMIT_PERCENT: u64 = 10;

/// The `limit` label of decisions no limit decided (store failures, or no
/// limit of the policy applied). Limit names are never empty.
pub const NO_LIMIT: &str = "";

/// Every metric of one gateway process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    near_limit: Family<PolicyLabels, Counter>,
    deny_cache_hits: Family<PolicyLabels, Counter>,
    store_latency: Histogram,
    store_errors: [Counter; StoreErrorKind::ALL.len()],
    upstream: [Counter; UpstreamClass::ALL.len()],
    connections: Gauge,
    config: ConfigMetrics,
    upgrades: UpgradeMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "rateguard_decisions",
            "Rate-limit decisions by policy and outcome",
            decisions.clone(),
        );
        let near_limit = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "rateguard_near_limit",
            "Allowed requests that left at most 10% of the policy's capacity",
            near_limit.clone(),
        );
        let deny_cache_hits = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "rateguard_deny_cache_hits",
            "Denials answered by the local deny cache without a store call",
            deny_cache_hits.clone(),
        );
        // 25 µs .. ~0.8 s: loopback Redis answers in tens of µs.
        let store_latency = Histogram::new(exponential_buckets(0.000_025, 2.0, 16));
        registry.register(
            "rateguard_store_latency_seconds",
            "Time of one store decision, timeouts included",
            store_latency.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "rateguard_store_errors",
            "Store failures by kind",
            errors.clone(),
        );
        let store_errors =
            StoreErrorKind::ALL.map(|error| errors.get_or_create(&ErrorLabels { error }).clone());
        let classes = Family::<ClassLabels, Counter>::default();
        registry.register(
            "rateguard_upstream_responses",
            "Upstream responses by status class (error: unreachable, timeout: no headers in time)",
            classes.clone(),
        );
        let upstream =
            UpstreamClass::ALL.map(|class| classes.get_or_create(&ClassLabels { class }).clone());
        let connections = Gauge::default();
        registry.register(
            "rateguard_connections_active",
            "Open client connections",
            connections.clone(),
        );
        let config = ConfigMetrics::register(&mut registry);
        let upgrades = UpgradeMetrics::register(&mut registry);
        Self {
            config,
            upgrades,
            registry,
            decisions,
            near_limit,
            deny_cache_hits,
            store_latency,
            store_errors,
            upstream,
            connections,
        }
    }

    /// The counters of `policy` and its `limits` (created, so they export
    /// as 0 from the start).
    pub fn decision_counters(&self, policy: &str, limits: &[&str]) -> DecisionCounters {
        let get = |limit: &str, decision| {
            self.decisions
                .get_or_create(&DecisionLabels {
                    policy: policy.to_owned(),
                    limit: limit.to_owned(),
                    decision,
                })
                .clone()
        };
        let per_policy = |family: &Family<PolicyLabels, Counter>| {
            family
                .get_or_create(&PolicyLabels {
                    policy: policy.to_owned(),
                })
                .clone()
        };
        DecisionCounters {
            limits: limits
                .iter()
                .map(|limit| LimitCounters {
                    allowed: get(limit, Outcome::Allowed),
                    denied: get(limit, Outcome::Denied),
                    shadow_denied: get(limit, Outcome::ShadowDenied),
                    local_fallback: get(limit, Outcome::LocalFallback),
                })
                .collect(),
            unlimited: get(NO_LIMIT, Outcome::Allowed),
            near_limit: per_policy(&self.near_limit),
            deny_cache_hits: per_policy(&self.deny_cache_hits),
            failed_open: get(NO_LIMIT, Outcome::FailedOpen),
            failed_closed: get(NO_LIMIT, Outcome::FailedClosed),
        }
    }

    /// Reload outcomes and the active config's hash.
    pub fn config(&self) -> &ConfigMetrics {
        &self.config
    }

    /// Records one store call's duration.
    pub fn observe_store_latency(&self, seconds: f64) {
        self.store_latency.observe(seconds);
    }

    /// Counts one store failure.
    pub fn store_error(&self, err: &StoreError) {
        self.store_errors[StoreErrorKind::of(err).index()].inc();
    }

    /// Counts an upstream answer of `class`.
    pub fn upstream(&self, class: UpstreamClass) {
        self.upstream[class.index()].inc();
    }

    /// Counts an upstream response by status.
    pub fn upstream_status(&self, status: u16) {
        self.upstream(UpstreamClass::of_status(status));
    }

    /// Counts an unreachable upstream.
    pub fn upstream_error(&self) {
        self.upstream(UpstreamClass::Error);
    }

    /// Counts an upstream timeout.
    pub fn upstream_timeout(&self) {
        self.upstream(UpstreamClass::Timeout);
    }

    /// The open-connections gauge.
    pub fn connections(&self) -> &Gauge {
        &self.connections
    }

    /// Upgrade counters and the open-upgraded-connections gauge.
    pub fn upgrades(&self) -> &UpgradeMetrics {
        &self.upgrades
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Asserts that the exposition `text` has every one of `lines`.
#[cfg(test)]
pub(crate) fn assert_exports(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = Metrics::new();
        let c = m.decision_counters("data", &["client", "per-ip"]);
        c.limits[1].denied.inc();
        c.limits[1].denied.inc();
        c.limits[0].shadow_denied.inc();
        c.near_limit.inc();
        c.deny_cache_hits.inc();
        c.unlimited.inc();
        m.upstream_status(204);
        m.store_error(&StoreError::Timeout(std::time::Duration::from_millis(5)));
        m.observe_store_latency(0.0001);
        let text = m.encode();
        assert_exports(&text, &[
            "rateguard_decisions_total{policy=\"data\",limit=\"per-ip\",decision=\"denied\"} 2",
            "rateguard_decisions_total{policy=\"data\",limit=\"client\",decision=\"denied\"} 0",
            "rateguard_decisions_total{policy=\"data\",limit=\"\",decision=\"failed_open\"} 0",
            "rateguard_decisions_total{policy=\"data\",limit=\"\",decision=\"allowed\"} 1",
            "rateguard_decisions_total{policy=\"data\",limit=\"client\",decision=\"shadow_denied\"} 1",
            "rateguard_near_limit_total{policy=\"data\"} 1",
            "rateguard_deny_cache_hits_total{policy=\"data\"} 1",
        ]);
        assert!(
            !text.contains("limit=\"\",decision=\"denied\""),
            "only failures and unlimited requests go without a limit: {text}"
        );
        assert!(
            text.contains("rateguard_upstream_responses_total{class=\"2xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rateguard_store_errors_total{error=\"timeout\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rateguard_store_latency_seconds_count 1"),
            "{text}"
        );
    }
}
