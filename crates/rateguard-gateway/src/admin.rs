//! The admin listener: `GET /healthz`, `GET /readyz`, `GET /metrics` and
//! `GET /config`, never on the public port.
//!
//! - `/config` is the active config (passwords redacted) and its hash,
//!   `{"hash": "<hex>", "config": {...}}`; after a reload (`SIGHUP`) it
//!   shows the new policies. Compare hashes across replicas to check a
//!   rollout (also `rateguard_config_info{hash}`).
//! - `/healthz` is **liveness**: `200` whenever the process serves, with the
//!   store's reachability in the body (a replica that fails open is still
//!   healthy, so restarting it would not help):
//!   `{"status":"ok","replica":"gw-1","store":{"kind":"memory","reachable":true,"error":null}}`.
//! - `/readyz` is **store reachability**: `200`
//!   `{"status":"ready","replica":"gw-1","store":{"kind":"memory"}}` when
//!   the store answers a ping within `store.timeout_ms` (the budget of one
//!   decision), else `503`
//!   `{"status":"not_ready","replica":"gw-1","store":{"kind":"memory","error":"..."}}`.
//!   Point a load balancer's or Kubernetes' readiness probe at it when
//!   `on_error = "deny"`, so a replica that would answer 503 is taken out
//!   of rotation. With `on_error = "allow"` the replica still serves (without
//!   limits) while the store is down; probing `/readyz` then takes every
//!   replica out at once when the shared store fails, so probe `/healthz`
//!   instead unless unlimited traffic is worse than no traffic.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use rateguard_contract::admin as paths;
use rateguard_store::BucketStore;

use crate::response::{self, Body};
use crate::service::Shared;

/// Longest wait for the store's ping in `/healthz` (`/readyz` waits
/// `store.timeout_ms`).
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// What the admin listener reports on: a replica's store, identity and
/// metrics (the gateway's [`Shared`], or `rateguard rls`'s service).
pub trait AdminSource: Send + Sync + 'static {
    /// The store type.
    type Store: BucketStore;
    /// The store `/healthz` and `/readyz` ping.
    fn store(&self) -> &Self::Store;
    /// `server.replica_id`.
    fn replica(&self) -> &str;
    /// `/readyz`'s ping budget (`store.timeout_ms`).
    fn store_timeout(&self) -> Duration;
    /// The `/metrics` text.
    fn encode_metrics(&self) -> String;
    /// `GET /config`'s body, `{"hash": "<hex>", "config": {...}}` (see
    /// [`ActiveConfig`](crate::reload::ActiveConfig)); `None`: answered 404.
    fn active_config(&self) -> Option<serde_json::Value> {
        None
    }
}

impl<S: BucketStore> AdminSource for Shared<S> {
    type Store = S;

    fn store(&self) -> &S {
        Shared::store(self)
    }

    fn replica(&self) -> &str {
        Shared::replica(self).to_str().unwrap_or("")
    }

    fn store_timeout(&self) -> Duration {
        Shared::store_timeout(self)
    }

    fn encode_metrics(&self) -> String {
        self.metrics().encode()
    }

    fn active_config(&self) -> Option<serde_json::Value> {
        Some(self.live().config().to_json())
    }
}

/// Answers one admin request.
pub async fn handle<A: AdminSource>(gateway: Arc<A>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    match req.uri().path() {
        paths::HEALTHZ => {
            let store = gateway.store();
            let ping = tokio::time::timeout(PING_TIMEOUT, store.ping()).await;
            let (reachable, error) = match ping {
                Ok(Ok(())) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (false, Some(format!("no answer within {PING_TIMEOUT:?}"))),
            };
            let body = serde_json::json!({
                "status": "ok",
                "replica": gateway.replica(),
                "store": { "kind": store.kind(), "reachable": reachable, "error": error },
            });
            response::json_value(StatusCode::OK, &body)
        }
        paths::READYZ => {
            let store = gateway.store();
            let timeout = gateway.store_timeout();
            let error = match tokio::time::timeout(timeout, store.ping()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {timeout:?}")),
            };
            let replica = gateway.replica();
            match error {
                None => response::json_value(
                    StatusCode::OK,
                    &serde_json::json!({
                        "status": "ready",
                        "replica": replica,
                        "store": { "kind": store.kind() },
                    }),
                ),
                Some(error) => {
                    tracing::debug!(store = %store.kind(), %error, "Not ready: store ping failed.");
                    response::json_value(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &serde_json::json!({
                            "status": "not_ready",
                            "replica": replica,
                            "store": { "kind": store.kind(), "error": error },
                        }),
                    )
                }
            }
        }
        paths::METRICS => {
            let mut res = Response::new(Either::Right(Full::new(Bytes::from(
                gateway.encode_metrics(),
            ))));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        paths::CONFIG => match gateway.active_config() {
            Some(body) => response::json_value(StatusCode::OK, &body),
            None => response::error(StatusCode::NOT_FOUND, "not_found", "no config to show"),
        },
        _ => response::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "try /healthz, /readyz, /metrics or /config",
        ),
    }
}
