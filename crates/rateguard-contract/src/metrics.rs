//! What a replica's `/metrics` exports, as an operator or the lab reads it:
//! the metric families ([`Family`]) and the fixed label values, one enum
//! per label. Label values that come from the config (policy, limit,
//! domain names) are not here; the few fixed ones among them are
//! constants ([`NO_LIMIT`], [`OVERRIDE_LIMIT`], [`UNKNOWN_DOMAIN`]).
//!
//! ```
//! use rateguard_contract::metrics::{Decision, Family};
//!
//! assert_eq!(Family::Decisions.sample(), "rateguard_decisions_total");
//! assert_eq!(Decision::FailedOpen.as_str(), "failed_open");
//! ```

use std::fmt;

/// How a family is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A counter: its samples are named `<name>_total`.
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram: `<name>_bucket`, `<name>_sum`, `<name>_count`.
    Histogram,
}

/// A metric family of `rateguard serve` or `rateguard rls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `serve`: one per request that matched a policy; labels `policy`,
    /// `limit` and `decision` ([`Decision`]).
    Decisions,
    /// `serve`: allowed requests that left at most 10 % of the reported
    /// limit's capacity; label `policy`.
    NearLimit,
    /// `serve`: denials answered by the deny cache; label `policy`.
    DenyCacheHits,
    /// Both: one store decision's time, timeouts included.
    StoreLatency,
    /// Both: store failures; label `error` ([`StoreErrorKind`]).
    StoreErrors,
    /// `serve`: upstream answers; label `class` ([`UpstreamClass`]).
    UpstreamResponses,
    /// `serve`: open client connections.
    ConnectionsActive,
    /// `serve`: upgrade requests (WebSocket handshakes); label `result`
    /// ([`UpgradeResult`]).
    Upgrades,
    /// `serve`: open upgraded connections (relayed byte for byte).
    UpgradedConnections,
    /// Both: config reloads; label `result` ([`ReloadResult`]).
    ConfigReloads,
    /// Both: 1 for the active config's `hash`.
    ConfigInfo,
    /// `rls`: one per descriptor that matched a rule; labels `domain`,
    /// `limit` and `decision` ([`RlsDecision`]).
    RlsDecisions,
    /// `rls`: descriptors that matched no rule; label `domain`.
    RlsUnmatched,
    /// `rls`: `ShouldRateLimit` calls; label `outcome` ([`RlsOutcome`]).
    RlsRequests,
    /// `rls`: open RLQS streams (one per Envoy).
    RlqsStreams,
    /// `rls`: RLQS buckets tracked over all streams.
    RlqsBuckets,
    /// `rls`: RLQS assignments sent; label `assignment` ([`RlqsAssignment`]).
    RlqsAssignments,
    /// `rls`: requests Envoys reported over RLQS; labels `domain` and
    /// `outcome` (`allowed`, `denied`).
    RlqsUsage,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 18] = [
        Family::Decisions,
        Family::NearLimit,
        Family::DenyCacheHits,
        Family::StoreLatency,
        Family::StoreErrors,
        Family::UpstreamResponses,
        Family::ConnectionsActive,
        Family::Upgrades,
        Family::UpgradedConnections,
        Family::ConfigReloads,
        Family::ConfigInfo,
        Family::RlsDecisions,
        Family::RlsUnmatched,
        Family::RlsRequests,
        Family::RlqsStreams,
        Family::RlqsBuckets,
        Family::RlqsAssignments,
        Family::RlqsUsage,
    ];

    /// The name it is registered under (a counter's samples add `_total`:
    /// see [`sample`](Self::sample)).
    pub const fn name(self) -> &'static str {
        match self {
            Family::Decisions => "rateguard_decisions",
            Family::NearLimit => "rateguard_near_limit",
            Family::DenyCacheHits => "rateguard_deny_cache_hits",
            Family::StoreLatency => "rateguard_store_latency_seconds",
            Family::StoreErrors => "rateguard_store_errors",
            Family::UpstreamResponses => "rateguard_upstream_responses",
            Family::ConnectionsActive => "rateguard_connections_active",
            Family::Upgrades => "rateguard_upgrades",
            Family::UpgradedConnections => "rateguard_upgraded_connections",
            Family::ConfigReloads => "rateguard_config_reloads",
            Family::ConfigInfo => "rateguard_config_info",
            Family::RlsDecisions => "rateguard_rls_decisions",
            Family::RlsUnmatched => "rateguard_rls_unmatched",
            Family::RlsRequests => "rateguard_rls_requests",
            Family::RlqsStreams => "rateguard_rlqs_streams",
            Family::RlqsBuckets => "rateguard_rlqs_buckets",
            Family::RlqsAssignments => "rateguard_rlqs_assignments",
            Family::RlqsUsage => "rateguard_rlqs_usage",
        }
    }

    /// The name of its samples in the text exposition, as a scraper reads
    /// them: `rateguard_decisions_total`; a histogram's `_count`, `_sum`
    /// and `_bucket` samples add to [`name`](Self::name).
    pub const fn sample(self) -> &'static str {
        match self {
            Family::Decisions => "rateguard_decisions_total",
            Family::NearLimit => "rateguard_near_limit_total",
            Family::DenyCacheHits => "rateguard_deny_cache_hits_total",
            Family::StoreErrors => "rateguard_store_errors_total",
            Family::UpstreamResponses => "rateguard_upstream_responses_total",
            Family::Upgrades => "rateguard_upgrades_total",
            Family::ConfigReloads => "rateguard_config_reloads_total",
            Family::RlsDecisions => "rateguard_rls_decisions_total",
            Family::RlsUnmatched => "rateguard_rls_unmatched_total",
            Family::RlsRequests => "rateguard_rls_requests_total",
            Family::RlqsAssignments => "rateguard_rlqs_assignments_total",
            Family::RlqsUsage => "rateguard_rlqs_usage_total",
            Family::StoreLatency
            | Family::ConnectionsActive
            | Family::UpgradedConnections
            | Family::ConfigInfo
            | Family::RlqsStreams
            | Family::RlqsBuckets => self.name(),
        }
    }

    /// Its type.
    pub const fn metric_type(self) -> MetricType {
        match self {
            Family::StoreLatency => MetricType::Histogram,
            Family::ConnectionsActive
            | Family::UpgradedConnections
            | Family::ConfigInfo
            | Family::RlqsStreams
            | Family::RlqsBuckets => MetricType::Gauge,
            _ => MetricType::Counter,
        }
    }

    /// Its `# HELP` text.
    pub const fn help(self) -> &'static str {
        match self {
            Family::Decisions => "Rate-limit decisions by policy and outcome",
            Family::NearLimit => "Allowed requests that left at most 10% of the policy's capacity",
            Family::DenyCacheHits => "Denials answered by the local deny cache without a store call",
            Family::StoreLatency => "Time of one store decision, timeouts included",
            Family::StoreErrors => "Store failures by kind",
            Family::UpstreamResponses => {
                "Upstream responses by status class (error: unreachable, timeout: no headers in time)"
            }
            Family::ConnectionsActive => "Open client connections",
            Family::Upgrades => {
                "Upgrade requests (WebSocket handshakes) by result: accepted (the backend's 101 relayed) or denied (429)"
            }
            Family::UpgradedConnections => {
                "Open upgraded connections (WebSocket), relayed byte for byte"
            }
            Family::ConfigReloads => {
                "Config reloads by result (error: the new file was invalid; the old config stays)"
            }
            Family::ConfigInfo => "1 for the hash of the active config (GET /config on the admin port)",
            Family::RlsDecisions => "Descriptor decisions by domain, limit and outcome",
            Family::RlsUnmatched => "Descriptors that matched no rule, by domain",
            Family::RlsRequests => "ShouldRateLimit calls by outcome",
            Family::RlqsStreams => "Open RLQS streams (StreamRateLimitQuotas), one per Envoy",
            Family::RlqsBuckets => "RLQS buckets tracked over all streams",
            Family::RlqsAssignments => "RLQS assignments sent, by kind",
            Family::RlqsUsage => "Requests Envoys reported over RLQS, by domain and outcome",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `limit` label of a `serve` decision no limit decided (a store
/// failure, or no limit of the policy applied). Limit names are never empty.
pub const NO_LIMIT: &str = "";
/// The `limit` label of an `rls` request's own `descriptor.limit` override.
pub const OVERRIDE_LIMIT: &str = "override";
/// The `domain` label of an `rls` domain that is not configured.
pub const UNKNOWN_DOMAIN: &str = "unknown";

/// `rateguard_decisions_total{decision}`: what happened to a request that
/// matched a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The store said yes.
    Allowed,
    /// The store said no (429).
    Denied,
    /// The store said no under a shadow policy (forwarded anyway).
    ShadowDenied,
    /// The store failed; the request was let through.
    FailedOpen,
    /// The store failed; the request was refused (503).
    FailedClosed,
    /// The store failed; this replica decided alone on its share of the
    /// limit (`on_error = "local"`), allowed or denied.
    LocalFallback,
}

impl Decision {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [Decision; 6] = [
        Decision::Allowed,
        Decision::Denied,
        Decision::ShadowDenied,
        Decision::FailedOpen,
        Decision::FailedClosed,
        Decision::LocalFallback,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::ShadowDenied => "shadow_denied",
            Decision::FailedOpen => "failed_open",
            Decision::FailedClosed => "failed_closed",
            Decision::LocalFallback => "local_fallback",
        }
    }
}

/// `rateguard_store_errors_total{error}`: why a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// No answer within the time budget.
    Timeout,
    /// Not reachable.
    Unavailable,
    /// Refused locally by the circuit breaker.
    CircuitOpen,
    /// An error reply.
    Backend,
}

impl StoreErrorKind {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [StoreErrorKind; 4] = [
        StoreErrorKind::Timeout,
        StoreErrorKind::Unavailable,
        StoreErrorKind::CircuitOpen,
        StoreErrorKind::Backend,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::CircuitOpen => "circuit_open",
            StoreErrorKind::Backend => "backend",
        }
    }
}

/// `rateguard_upstream_responses_total{class}`: how the upstream answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamClass {
    /// 1xx.
    Informational,
    /// 2xx.
    Success,
    /// 3xx.
    Redirection,
    /// 4xx.
    ClientError,
    /// 5xx (and any status out of range).
    ServerError,
    /// Unreachable or broke the connection.
    Error,
    /// No response headers in time.
    Timeout,
}

impl UpstreamClass {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [UpstreamClass; 7] = [
        UpstreamClass::Informational,
        UpstreamClass::Success,
        UpstreamClass::Redirection,
        UpstreamClass::ClientError,
        UpstreamClass::ServerError,
        UpstreamClass::Error,
        UpstreamClass::Timeout,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpstreamClass::Informational => "1xx",
            UpstreamClass::Success => "2xx",
            UpstreamClass::Redirection => "3xx",
            UpstreamClass::ClientError => "4xx",
            UpstreamClass::ServerError => "5xx",
            UpstreamClass::Error => "error",
            UpstreamClass::Timeout => "timeout",
        }
    }

    /// The class of an HTTP status code (`5xx` for one out of range).
    pub const fn of_status(status: u16) -> Self {
        match status {
            100..=199 => UpstreamClass::Informational,
            200..=299 => UpstreamClass::Success,
            300..=399 => UpstreamClass::Redirection,
            400..=499 => UpstreamClass::ClientError,
            _ => UpstreamClass::ServerError,
        }
    }
}

/// `rateguard_upgrades_total{result}`: what became of an upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpgradeResult {
    /// The backend switched protocols; the connection is now relayed.
    Accepted,
    /// A limit refused the handshake (429; nothing reached the backend).
    Denied,
}

impl UpgradeResult {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [UpgradeResult; 2] = [UpgradeResult::Accepted, UpgradeResult::Denied];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpgradeResult::Accepted => "accepted",
            UpgradeResult::Denied => "denied",
        }
    }
}

/// `rateguard_config_reloads_total{result}`: how a reload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadResult {
    /// The new config is active.
    Ok,
    /// The new config was invalid (or unreadable); the old one stays.
    Error,
}

impl ReloadResult {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Ok, ReloadResult::Error];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Error => "error",
        }
    }
}

/// `rateguard_rls_decisions_total{decision}`: what happened to one
/// descriptor that matched a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlsDecision {
    /// Within the limit (or refused by another descriptor's limit).
    Ok,
    /// Over the limit: the request was refused.
    OverLimit,
    /// Over the limit under `shadow_mode`: answered `OK`.
    ShadowOverLimit,
    /// `unlimited: true`.
    Unlimited,
    /// Dropped by another rule's `replaces`.
    Replaced,
    /// The store failed and `on_error = "allow"` let the request through.
    FailedOpen,
    /// The store failed; this replica decided alone on its share of the
    /// limit (`on_error = "local"`), within the limit or over it.
    LocalFallback,
}

impl RlsDecision {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [RlsDecision; 7] = [
        RlsDecision::Ok,
        RlsDecision::OverLimit,
        RlsDecision::ShadowOverLimit,
        RlsDecision::Unlimited,
        RlsDecision::Replaced,
        RlsDecision::FailedOpen,
        RlsDecision::LocalFallback,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RlsDecision::Ok => "ok",
            RlsDecision::OverLimit => "over_limit",
            RlsDecision::ShadowOverLimit => "shadow_over_limit",
            RlsDecision::Unlimited => "unlimited",
            RlsDecision::Replaced => "replaced",
            RlsDecision::FailedOpen => "failed_open",
            RlsDecision::LocalFallback => "local_fallback",
        }
    }
}

/// What an RLQS assignment tells Envoy (`rateguard_rlqs_assignments_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlqsAssignment {
    /// A token bucket at the Envoy's share.
    TokenBucket,
    /// Allow every request.
    AllowAll,
    /// Deny every request.
    DenyAll,
    /// Forget the bucket.
    Abandon,
}

impl RlqsAssignment {
    /// Every kind, in [`index`](Self::index) order.
    pub const ALL: [RlqsAssignment; 4] = [
        RlqsAssignment::TokenBucket,
        RlqsAssignment::AllowAll,
        RlqsAssignment::DenyAll,
        RlqsAssignment::Abandon,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RlqsAssignment::TokenBucket => "token_bucket",
            RlqsAssignment::AllowAll => "allow_all",
            RlqsAssignment::DenyAll => "deny_all",
            RlqsAssignment::Abandon => "abandon",
        }
    }

    /// Its position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// `rateguard_rls_requests_total{outcome}`: a whole `ShouldRateLimit` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlsOutcome {
    /// `overall_code = OK`.
    Ok,
    /// `overall_code = OVER_LIMIT`.
    OverLimit,
    /// The store failed; answered `OK`.
    FailedOpen,
    /// The store failed; answered gRPC `UNAVAILABLE`.
    FailedClosed,
    /// The store failed; this replica decided alone (`on_error = "local"`).
    LocalFallback,
    /// The request was malformed (`INVALID_ARGUMENT`).
    Invalid,
}

impl RlsOutcome {
    /// Every value, in declaration order ([`index`](Self::index)).
    pub const ALL: [RlsOutcome; 6] = [
        RlsOutcome::Ok,
        RlsOutcome::OverLimit,
        RlsOutcome::FailedOpen,
        RlsOutcome::FailedClosed,
        RlsOutcome::LocalFallback,
        RlsOutcome::Invalid,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RlsOutcome::Ok => "ok",
            RlsOutcome::OverLimit => "over_limit",
            RlsOutcome::FailedOpen => "failed_open",
            RlsOutcome::FailedClosed => "failed_closed",
            RlsOutcome::LocalFallback => "local_fallback",
            RlsOutcome::Invalid => "invalid",
        }
    }
}

/// `index` (its position in `ALL`, for counters held in arrays) and
/// `Display` (the label value) of the label enums.
macro_rules! label_value {
    ($($name:ident),+) => {
        $(
            impl $name {
                /// Its position in `ALL`.
                pub const fn index(self) -> usize {
                    self as usize
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(self.as_str())
                }
            }
        )+
    };
}

label_value!(
    Decision,
    StoreErrorKind,
    UpstreamClass,
    ReloadResult,
    UpgradeResult,
    RlsDecision,
    RlsOutcome
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, v) in Decision::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in UpstreamClass::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in RlsOutcome::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in RlsDecision::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in StoreErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in UpgradeResult::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
        for (i, v) in ReloadResult::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i);
        }
    }

    #[test]
    fn statuses_fall_in_their_class() {
        assert_eq!(UpstreamClass::of_status(204).as_str(), "2xx");
        assert_eq!(UpstreamClass::of_status(499).as_str(), "4xx");
        assert_eq!(UpstreamClass::of_status(99).as_str(), "5xx");
        assert_eq!(UpstreamClass::of_status(100).as_str(), "1xx");
        assert_eq!(UpstreamClass::of_status(399).as_str(), "3xx");
    }

    #[test]
    fn counters_export_total_samples() {
        for family in Family::ALL {
            let total = format!("{}_total", family.name());
            match family.metric_type() {
                MetricType::Counter => assert_eq!(family.sample(), total),
                _ => assert_eq!(family.sample(), family.name()),
            }
            assert!(family.name().starts_with("rateguard_"));
        }
    }
}
