//! The fixed label values of the gateway's metrics, as enums: each one's
//! text is written once, and counters live in arrays indexed by the enum.

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use rateguard_store::StoreError;

/// Declares a label enum: `Variant = "value"` per label value, its `ALL`,
/// `as_str`, `EncodeLabelValue` and [`index`](Outcome::index).
macro_rules! label_values {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in label order.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The position in [`ALL`](Self::ALL), for arrays of counters.
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                self.as_str().encode(encoder)
            }
        }
    };
}

label_values! {
    /// `rateguard_decisions_total{decision}`: what happened to a request
    /// that matched a policy.
    pub enum Outcome {
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
    }
}

label_values! {
    /// `rateguard_store_errors_total{error}`: why a store call failed.
    pub enum StoreErrorKind {
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

label_values! {
    /// `rateguard_upstream_responses_total{class}`: how the upstream answered.
    pub enum UpstreamClass {
        /// 1xx.
        Informational = "1xx",
        /// 2xx.
        Success = "2xx",
        /// 3xx.
        Redirection = "3xx",
        /// 4xx.
        ClientError = "4xx",
        /// 5xx (and anything out of range).
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
    /// The class of an HTTP status code.
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
        assert_eq!(UpstreamClass::of_status(99).as_str(), "5xx");
        assert_eq!(
            StoreErrorKind::of(&StoreError::CircuitOpen(Default::default())).as_str(),
            "circuit_open"
        );
    }
}
