//! Every response the gateway writes itself (429, 502, 503, 504, 404, ...),
//! and the rate-limit header values, in one place.
//!
//! Header fields follow the IETF httpapi RateLimit draft:
//! - `RateLimit-Policy: "<name>";q=<capacity>;w=<seconds to refill from empty>`,
//!   one item per limit of the policy, comma-separated
//!   (`"login.per-client";q=5;w=50, "login.per-ip";q=20;w=20`)
//! - `RateLimit: "<name>";r=<remaining>;t=<seconds>` for the one limit the
//!   response reports, where `t` is the `Retry-After` value on a denial
//!   and, when allowed, the time until the bucket is full again (both
//!   rounded up to whole seconds).
//!
//! A limit's `<name>` is `<policy>.<limit>`, or just `<policy>` when the
//! policy has a single limit (so single-limit policies read as before
//! layered limits); [`crate::policy`] computes it once. The header values
//! are the runtime's ([`rateguard_runtime::headers`]), shared with
//! `rateguard rls`.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use rateguard_contract::headers;
use rateguard_core::Decision;
pub use rateguard_runtime::headers::{
    policy_header, ratelimit_header, retry_after_secs, RATELIMIT, RATELIMIT_POLICY,
};

use crate::path::PathError;

/// Body of every gateway response: streamed from the upstream, or our own.
pub type Body = Either<Incoming, Full<Bytes>>;

/// `X-RateGuard-Replica`.
pub const X_RATEGUARD_REPLICA: HeaderName = HeaderName::from_static(headers::X_RATEGUARD_REPLICA);

const JSON: HeaderValue = HeaderValue::from_static("application/json");

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, JSON);
    res
}

/// The `429` for a denial under `policy` by its limit `limit` (the name
/// the headers use) with `decision`, the denying limit with the longest wait.
pub fn rate_limited(
    policy: &str,
    limit: &str,
    policy_header: &HeaderValue,
    decision: &Decision,
) -> Response<Body> {
    let retry_after_ms = u64::try_from(decision.retry_after.as_millis()).unwrap_or(u64::MAX);
    let body = serde_json::json!({
        "error": "rate_limited",
        "policy": policy,
        "limit": limit,
        "retry_after_ms": retry_after_ms,
    });
    let mut res = json(StatusCode::TOO_MANY_REQUESTS, body.to_string());
    let headers = res.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(decision)));
    headers.insert(RATELIMIT_POLICY, policy_header.clone());
    headers.insert(RATELIMIT, ratelimit_header(limit, decision));
    res
}

/// A JSON error `{"error": code, "message": message}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message });
    json(status, body.to_string())
}

/// `400`: the request path cannot be normalized safely.
pub fn bad_path(err: &PathError) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("invalid path: {err}"),
    )
}

/// `503`: the store failed and `on_error = "deny"`.
pub fn store_unavailable() -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "rate-limit store unavailable",
    )
}

/// `502`: the upstream could not be reached.
pub fn bad_gateway() -> Response<Body> {
    error(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        "upstream unreachable",
    )
}

/// `504`: the upstream did not answer in time.
pub fn gateway_timeout() -> Response<Body> {
    error(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway_timeout",
        "upstream timed out",
    )
}

/// A JSON response with arbitrary content (admin endpoints).
pub fn json_value(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json(status, value.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;
    use rateguard_core::Quota;

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

    #[tokio::test]
    async fn too_many_requests_has_the_documented_shape() {
        let q = Quota::new(20, 0.5).unwrap();
        let res = rate_limited(
            "data",
            "data",
            &policy_header([("data", &q)]),
            &denial(1840),
        );
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = res.headers();
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(h[RETRY_AFTER], "2");
        assert_eq!(h[RATELIMIT_POLICY], "\"data\";q=20;w=40");
        assert_eq!(h[RATELIMIT], "\"data\";r=0;t=2");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "rate_limited", "policy": "data", "limit": "data", "retry_after_ms": 1840})
        );
    }

    #[tokio::test]
    async fn a_layered_denial_names_its_limit_in_the_body_and_headers() {
        let q = Quota::new(20, 0.5).unwrap();
        let header = policy_header([("login.per-client", &q), ("login.per-ip", &q)]);
        let res = rate_limited("login", "login.per-ip", &header, &denial(2500));
        let h = res.headers();
        assert_eq!(h[RETRY_AFTER], "3");
        assert_eq!(h[RATELIMIT_POLICY], header);
        assert_eq!(h[RATELIMIT], "\"login.per-ip\";r=0;t=3");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["policy"], "login");
        assert_eq!(v["limit"], "login.per-ip");
        assert_eq!(v["retry_after_ms"], 2500);
    }
}
