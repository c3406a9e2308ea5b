//! The fixed label values of the gateway's metrics, as vocabulary enums
//! (`rateguard_contract::vocabulary!`): each value's text is written once,
//! and counters live in arrays indexed by the enum.

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use rateguard_contract::vocabulary;
use rateguard_store::StoreError;

/// `EncodeLabelValue` for vocabulary enums: the label value is the id.
macro_rules! encode_as_id {
    ($($name:ident),+) => {
        $(
            impl EncodeLabelValue for $name {
                fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                    self.as_str().encode(encoder)
                }
            }
        )+
    };
}

encode_as_id!(Outcome, ReloadResult, StoreErrorKind, UpstreamClass);

vocabulary! {
    /// `rateguard_decisions_total{decision}`: what happened to a request
    /// that matched a policy.
    pub enum Outcome ("decision") {
        /// The store said yes.
        Allowed = "allowed",
        /// The store said no (429).
        Denied = "denied",
        /// The store said no under a shadow policy (forwarded anyway).
        ShadowDenied = "shadow_denied",
        /// The store failed; the request was let through.
        FailedOpen = "failed_open",
        /// The store failed; the request was refused (503).
        FailedClosed = "failed_closed",
        /// The store failed; this replica decided alone, on its share of
        /// the limit (`on_error = "local"`), allowed or denied.
        LocalFallback = "local_fallback",
    }
}

vocabulary! {
    /// `rateguard_config_reloads_total{result}`: how a reload went.
    pub enum ReloadResult ("reload result") {
        /// The new config is active.
        Ok = "ok",
        /// The new config was invalid (or unreadable); the old one stays.
        Error = "error",
    }
}

vocabulary! {
    /// `rateguard_store_errors_total{error}`: why a store call failed.
    pub enum StoreErrorKind ("store error") {
        /// No answer within the time budget.
        Timeout = "timeout",
        /// Not reachable.
        Unavailable = "unavailable",
        /// Refused locally by the circuit breaker.
        CircuitOpen = "circuit_open",
        /// An error reply.
        Backend = "backend",
    }
}

vocabulary! {
    /// `rateguard_upstream_responses_total{class}`: how the upstream answered.
    pub enum UpstreamClass ("class") {
        /// 1xx.
        Informational = "1xx",
        /// 2xx.
        Success = "2xx",
        /// 3xx.
        Redirection = "3xx",
        /// 4xx.
        ClientError = "4xx",
        /// 5xx (and any status out of range).
        ServerError = "5xx",
        /// Unreachable or broke the connection.
        Error = "error",
        /// No response headers in time.
        Timeout = "timeout",
    }
}

impl StoreErrorKind {
    /// The kind of `err`.
    pub fn of(err: &StoreError) -> Self {
        match err {
            StoreError::Timeout(_) => Self::Timeout,
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::CircuitOpen(_) => Self::CircuitOpen,
            StoreError::Backend(_) => Self::Backend,
        }
    }
}

impl UpstreamClass {
    /// The class of an HTTP status code (out of range: [`Self::ServerError`]).
    pub fn of_status(status: u16) -> Self {
        match status {
            100..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_declaration_order() {
        for (i, class) in UpstreamClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), i);
        }
        assert_eq!(UpstreamClass::of_status(204).as_str(), "2xx");
        assert_eq!(UpstreamClass::of_status(499).as_str(), "4xx");
        assert_eq!(UpstreamClass::of_status(99).as_str(), "5xx");
    }

    #[test]
    fn every_store_error_has_its_own_kind() {
        let d = std::time::Duration::ZERO;
        let errors = [
            StoreError::Timeout(d),
            StoreError::Unavailable(String::new()),
            StoreError::CircuitOpen(d),
            StoreError::Backend(String::new()),
        ];
        for err in &errors {
            // Exhaustive: a new StoreError variant must be given a kind here.
            let expected = match err {
                StoreError::Timeout(_) => StoreErrorKind::Timeout,
                StoreError::Unavailable(_) => StoreErrorKind::Unavailable,
                StoreError::CircuitOpen(_) => StoreErrorKind::CircuitOpen,
                StoreError::Backend(_) => StoreErrorKind::Backend,
            };
            assert_eq!(StoreErrorKind::of(err), expected, "{err}");
        }
    }
}
