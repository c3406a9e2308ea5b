//! gRPC calls get gRPC answers from the gateway itself.
//!
//! A gRPC client reads the call's outcome from `grpc-status`, not from the
//! HTTP status: an HTTP `429` would reach it as `UNAVAILABLE` (which most
//! clients retry at once). So when the gateway refuses a gRPC call
//! (`content-type: application/grpc…`) it answers as a gRPC server would,
//! with a trailers-only response: HTTP `200`, `content-type:
//! application/grpc`, `grpc-status`, `grpc-message`, and no body; the
//! rate-limit fields (`Retry-After`, `RateLimit-Policy`, `RateLimit`) ride
//! along as metadata.
//!
//! | the gateway refuses because | `grpc-status` |
//! | --- | --- |
//! | a limit denied the call | `8` `RESOURCE_EXHAUSTED`, or `14` `UNAVAILABLE` with `server.grpc_denied_status = "unavailable"` |
//! | the store failed and `store.on_error = "deny"` | `14` `UNAVAILABLE` |
//!
//! Upstream failures (`502`, `504`) stay HTTP statuses, which gRPC clients
//! already read as `UNAVAILABLE`.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Response;
use http_body_util::{Either, Full};

use crate::response::Body;

/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `UNAVAILABLE`: the answer to a call the store could not decide.
pub const UNAVAILABLE: u8 = 14;

const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");

/// Whether `headers` are a gRPC call's: `content-type` is
/// `application/grpc` or one of its forms (`application/grpc+proto`,
/// gRPC-Web's `application/grpc-web…`). One header lookup.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// A trailers-only gRPC answer: HTTP `200` with `grpc-status: code` and
/// `grpc-message: message` (percent-encoded as gRPC requires), no body.
pub fn status(code: u8, message: &str) -> Response<Body> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::new())));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
    headers.insert(GRPC_STATUS, HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::try_from(percent_encode(message)) {
        headers.insert(GRPC_MESSAGE, message);
    }
    res
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`,
/// become `%XX`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types_are_recognised_and_others_not() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            is_grpc(&h)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(with("application/grpc-web+proto"));
        assert!(!with("application/json"));
        assert!(!with("text/application/grpc"));
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn a_status_is_a_trailers_only_response() {
        let res = status(8, "rate limited: 50% used, ünïcode");
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h[CONTENT_TYPE], "application/grpc");
        assert_eq!(h[GRPC_STATUS], "8");
        assert_eq!(
            h[GRPC_MESSAGE],
            "rate limited: 50%25 used, %C3%BCn%C3%AFcode"
        );
        assert!(hyper::body::Body::is_end_stream(res.body()));
    }
}
