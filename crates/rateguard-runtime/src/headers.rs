//! The IETF httpapi RateLimit header values, written by the gateway's
//! responses and by `rateguard rls`'s optional `response_headers`:
//! - `RateLimit-Policy: "<name>";q=<capacity>;w=<seconds to refill from
//!   empty>`, one item per limit, comma-separated;
//! - `RateLimit: "<name>";r=<remaining>;t=<seconds>` for one decision,
//!   where `t` is the `Retry-After` value on a denial and, when allowed,
//!   the time until the bucket is full again (both rounded up to whole
//!   seconds).

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use rateguard_contract::headers;
use rateguard_core::{Decision, Quota};

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static(headers::RATELIMIT_POLICY);
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static(headers::RATELIMIT);

/// Whole seconds, rounded up, at least `min`.
fn ceil_secs(d: Duration, min: u64) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(min)
}

/// `"<name>";q=<capacity>;w=<window>` per limit, joined by `", "`; names
/// are plain policy and limit names (validated by the config), so they
/// need no escaping.
pub fn policy_header<'a>(limits: impl IntoIterator<Item = (&'a str, &'a Quota)>) -> HeaderValue {
    let items: Vec<String> = limits
        .into_iter()
        .map(|(name, quota)| {
            let window = ceil_secs(quota.fill_time(), 1);
            format!("\"{name}\";q={};w={window}", quota.capacity())
        })
        .collect();
    HeaderValue::try_from(items.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static("\"invalid\""))
}

/// `"<name>";r=<remaining>;t=<seconds>` for one decision.
pub fn ratelimit_header(name: &str, decision: &Decision) -> HeaderValue {
    let t = if decision.allowed {
        ceil_secs(decision.reset_after, 0)
    } else {
        retry_after_secs(decision)
    };
    HeaderValue::try_from(format!("\"{name}\";r={};t={t}", decision.remaining))
        .unwrap_or_else(|_| HeaderValue::from_static("\"invalid\""))
}

/// `Retry-After` for a denial: whole seconds, at least 1.
pub fn retry_after_secs(decision: &Decision) -> u64 {
    ceil_secs(decision.retry_after, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(retry_ms: u64) -> Decision {
        Decision {
            allowed: false,
            limit: 20,
            remaining: 0,
            retry_after: Duration::from_millis(retry_ms),
            reset_after: Duration::from_secs(40),
        }
    }

    #[test]
    fn policy_header_names_capacity_and_window() {
        let q = Quota::new(20, 0.5).unwrap();
        assert_eq!(policy_header([("data", &q)]), "\"data\";q=20;w=40");
        let q = Quota::new(100, 50.0).unwrap();
        assert_eq!(policy_header([("default", &q)]), "\"default\";q=100;w=2");
        let q = Quota::new(1, 1000.0).unwrap();
        assert_eq!(policy_header([("fast", &q)]), "\"fast\";q=1;w=1");
    }

    #[test]
    fn policy_header_lists_every_limit_in_order() {
        let per_client = Quota::new(5, 0.1).unwrap();
        let per_ip = Quota::new(20, 1.0).unwrap();
        assert_eq!(
            policy_header([("login.per-client", &per_client), ("login.per-ip", &per_ip)]),
            "\"login.per-client\";q=5;w=50, \"login.per-ip\";q=20;w=20"
        );
    }

    #[test]
    fn ratelimit_header_rounds_up() {
        assert_eq!(ratelimit_header("data", &denial(1840)), "\"data\";r=0;t=2");
        assert_eq!(ratelimit_header("data", &denial(2000)), "\"data\";r=0;t=2");
        assert_eq!(ratelimit_header("data", &denial(1)), "\"data\";r=0;t=1");
        let allowed = Decision {
            allowed: true,
            limit: 100,
            remaining: 99,
            retry_after: Duration::ZERO,
            reset_after: Duration::from_millis(20),
        };
        assert_eq!(
            ratelimit_header("default", &allowed),
            "\"default\";r=99;t=1"
        );
        let full = Decision {
            reset_after: Duration::ZERO,
            ..allowed
        };
        assert_eq!(ratelimit_header("default", &full), "\"default\";r=99;t=0");
    }

    #[test]
    fn never_is_a_huge_but_valid_retry_after() {
        let d = Decision {
            retry_after: Decision::NEVER,
            ..denial(0)
        };
        assert!(retry_after_secs(&d) > 1_000_000_000);
    }
}
