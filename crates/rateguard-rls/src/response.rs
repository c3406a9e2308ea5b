//! The pieces of a `RateLimitResponse`: one `DescriptorStatus` per request
//! descriptor, and the optional IETF `RateLimit` headers.
//!
//! Envoy builds its `x-ratelimit-limit`, `-remaining` and `-reset` headers
//! from `current_limit`, `limit_remaining` and `duration_until_reset`, so
//! those are filled for every descriptor a bucket decided:
//! `duration_until_reset` is the time until the bucket is full again when
//! `OK`, and until a retry can succeed when `OVER_LIMIT`, in whole seconds
//! rounded up.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use rateguard_core::{Decision, Quota};
use rateguard_runtime::headers::{policy_header, ratelimit_header, RATELIMIT, RATELIMIT_POLICY};

pub use rateguard_contract::ResponseHeaders;

use crate::limits::Limit;

/// `OK` for a descriptor without a limit (no rule, or replaced).
pub fn no_limit() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok as i32,
        ..Default::default()
    }
}

/// `OK` for `unlimited: true`: `limit_remaining` is `u32::MAX`, as in
/// envoyproxy/ratelimit.
pub fn unlimited() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok as i32,
        limit_remaining: u32::MAX,
        ..Default::default()
    }
}

/// The configured limit as Envoy reports it.
pub fn current_limit(limit: &Limit, name: Option<&str>) -> RateLimit {
    RateLimit {
        name: name.unwrap_or_default().to_owned(),
        requests_per_unit: limit.requests_per_unit,
        unit: limit.unit.to_proto() as i32,
    }
}

/// The status of a descriptor its bucket decided. `shadow` turns a denial
/// into `OK`.
pub fn decided(
    limit: &Limit,
    name: Option<&str>,
    decision: &Decision,
    shadow: bool,
) -> DescriptorStatus {
    let code = if decision.allowed || shadow {
        Code::Ok
    } else {
        Code::OverLimit
    };
    let wait = if decision.allowed {
        decision.reset_after
    } else if decision.retry_after == Decision::NEVER {
        limit.unit.duration()
    } else {
        decision.retry_after
    };
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(current_limit(limit, name)),
        limit_remaining: decision.remaining,
        duration_until_reset: Some(proto_duration(wait)),
        quota: None,
    }
}

/// The status of a `requests_per_unit: 0` limit: always over (unless shadow).
pub fn blocked(limit: &Limit, name: Option<&str>, shadow: bool) -> DescriptorStatus {
    DescriptorStatus {
        code: if shadow { Code::Ok } else { Code::OverLimit } as i32,
        current_limit: Some(current_limit(limit, name)),
        limit_remaining: 0,
        duration_until_reset: Some(proto_duration(limit.unit.duration())),
        quota: None,
    }
}

/// `RateLimit-Policy` and `RateLimit` for one decided descriptor, in the
/// format `serve` uses ([`rateguard_runtime::headers`]); `name` is
/// reduced to header-safe characters.
pub fn ietf_headers(name: &str, quota: &Quota, decision: &Decision) -> Vec<HeaderValue> {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-/:*".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let header = |key: &http::HeaderName, value: http::HeaderValue| HeaderValue {
        key: key.as_str().to_owned(),
        value: value.to_str().unwrap_or_default().to_owned(),
        raw_value: Vec::new(),
    };
    vec![
        header(&RATELIMIT_POLICY, policy_header([(name.as_str(), quota)])),
        header(&RATELIMIT, ratelimit_header(&name, decision)),
    ]
}

/// Whole seconds, rounded up: Envoy reads only `seconds` (for
/// `x-ratelimit-reset`), and a rounded-down wait would be too short.
fn proto_duration(d: Duration) -> ProtoDuration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    ProtoDuration {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    }
}
