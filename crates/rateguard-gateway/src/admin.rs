//! The admin listener: `GET /healthz` and `GET /metrics`, never on the
//! public port.
//!
//! `/healthz` answers `200` while the process serves, with the store's
//! reachability in the body (a replica that fails open is still healthy):
//! `{"status":"ok","replica":"gw-1","store":{"kind":"redis-lua","reachable":true}}`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use rateguard_store::BucketStore;

use crate::response::{self, Body};
use crate::service::Gateway;

/// Longest wait for the store's ping in `/healthz`.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Answers one admin request.
pub async fn handle<S: BucketStore>(
    gateway: Arc<Gateway<S>>,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    match req.uri().path() {
        "/healthz" => {
            let store = gateway.store();
            let ping = tokio::time::timeout(PING_TIMEOUT, store.ping()).await;
            let (reachable, error) = match ping {
                Ok(Ok(())) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (false, Some(format!("no answer within {PING_TIMEOUT:?}"))),
            };
            let body = serde_json::json!({
                "status": "ok",
                "replica": gateway.replica().to_str().unwrap_or(""),
                "store": { "kind": store.name(), "reachable": reachable, "error": error },
            });
            response::json_value(StatusCode::OK, &body)
        }
        "/metrics" => {
            let mut res = Response::new(Either::Right(Full::new(Bytes::from(
                gateway.metrics().encode(),
            ))));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        _ => response::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "try /healthz or /metrics",
        ),
    }
}
