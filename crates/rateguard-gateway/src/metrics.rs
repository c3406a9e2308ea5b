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
//! | `rateguard_connections_active` | — | open client connections |
//! | `rateguard_config_reloads_total` | `result` ∈ `ok`, `error` | reloads (`SIGHUP`); `error`: the new file was invalid, the old config stays |
//! | `rateguard_config_info` | `hash` | 1 for the active config's hash (as `GET /config` shows it) |
//!
//! Label values are policy and limit names (from the config) and fixed
//! words (`rateguard_contract::metrics`), never client identifiers or raw
//! paths. The store and config families are the runtime's, registered
//! here like the rest. Every counter the hot path
//! touches is created at start-up (per policy × limit × decision) and held
//! as a handle, so a request only does atomic increments.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Labelled;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
pub use rateguard_contract::metrics::NO_LIMIT;
use rateguard_contract::metrics::{Decision, Family, UpstreamClass};
use rateguard_runtime::{ConfigMetrics, StoreMetrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    policy: String,
    limit: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
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

/// Every metric of one gateway process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Labelled<DecisionLabels, Counter>,
    near_limit: Labelled<PolicyLabels, Counter>,
    deny_cache_hits: Labelled<PolicyLabels, Counter>,
    store: StoreMetrics,
    upstream: [Counter; UpstreamClass::ALL.len()],
    connections: Gauge,
    config: ConfigMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` as `family` in `registry` and returns it.
fn register<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    family: Family,
    metric: M,
) -> M {
    registry.register(family.name(), family.help(), metric.clone());
    metric
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let decisions = register(&mut registry, Family::Decisions, Labelled::default());
        let near_limit = register(&mut registry, Family::NearLimit, Labelled::default());
        let deny_cache_hits = register(&mut registry, Family::DenyCacheHits, Labelled::default());
        let store = StoreMetrics::register(&mut registry);
        let classes: Labelled<ClassLabels, Counter> = register(
            &mut registry,
            Family::UpstreamResponses,
            Labelled::default(),
        );
        let upstream = UpstreamClass::ALL.map(|class| {
            let class = class.as_str();
            classes.get_or_create(&ClassLabels { class }).clone()
        });
        let connections = register(&mut registry, Family::ConnectionsActive, Gauge::default());
        let config = ConfigMetrics::register(&mut registry);
        Self {
            config,
            registry,
            decisions,
            near_limit,
            deny_cache_hits,
            store,
            upstream,
            connections,
        }
    }

    /// The counters of `policy` and its `limits` (created, so they export
    /// as 0 from the start).
    pub fn decision_counters(&self, policy: &str, limits: &[&str]) -> DecisionCounters {
        let get = |limit: &str, decision: Decision| {
            self.decisions
                .get_or_create(&DecisionLabels {
                    policy: policy.to_owned(),
                    limit: limit.to_owned(),
                    decision: decision.as_str(),
                })
                .clone()
        };
        let per_policy = |family: &Labelled<PolicyLabels, Counter>| {
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
                    allowed: get(limit, Decision::Allowed),
                    denied: get(limit, Decision::Denied),
                    shadow_denied: get(limit, Decision::ShadowDenied),
                    local_fallback: get(limit, Decision::LocalFallback),
                })
                .collect(),
            unlimited: get(NO_LIMIT, Decision::Allowed),
            near_limit: per_policy(&self.near_limit),
            deny_cache_hits: per_policy(&self.deny_cache_hits),
            failed_open: get(NO_LIMIT, Decision::FailedOpen),
            failed_closed: get(NO_LIMIT, Decision::FailedClosed),
        }
    }

    /// Reload outcomes and the active config's hash.
    pub fn config(&self) -> &ConfigMetrics {
        &self.config
    }

    /// The store's latency and errors (the decision layer's).
    pub fn store(&self) -> &StoreMetrics {
        &self.store
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

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        rateguard_runtime::metrics::encode(&self.registry)
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
    use rateguard_store::StoreError;

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
        m.store()
            .error(&StoreError::Timeout(std::time::Duration::from_millis(5)));
        m.store().observe_latency(0.0001);
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
