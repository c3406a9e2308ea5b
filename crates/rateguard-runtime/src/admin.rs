//! The admin listener: `GET /healthz`, `GET /readyz`, `GET /metrics`,
//! `GET /config` and, with `[admin] token_file`, `GET`/`DELETE /buckets`
//! ([`buckets`]: a bucket seen without spending, or reset), never on the
//! public port.
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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use rateguard_contract::admin as paths;
use rateguard_store::BucketStore;
use tokio::net::TcpListener;

use crate::decide::{Decider, RESET_POLL};
use crate::plain_http::{serve_plain, PlainOptions};

pub mod buckets;
mod token;

pub use buckets::{BucketError, BucketQuery, BucketTarget, Who};
pub use rateguard_contract::admin::TOKEN_ENV;
pub use token::AdminToken;

/// Longest wait for the store's ping in `/healthz` (`/readyz` waits
/// `store.timeout_ms`).
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// What the admin listener reports on: a replica's store, identity and
/// metrics (the gateway's shared part, or `rateguard rls`'s service).
pub trait AdminSource: Send + Sync + 'static {
    /// The store type.
    type Store: BucketStore;
    /// The decision layer: `/buckets` peeks and resets through it (its
    /// deny cache included).
    fn decider(&self) -> &Decider<Self::Store>;
    /// The store `/healthz` and `/readyz` ping.
    fn store(&self) -> &Self::Store {
        self.decider().store()
    }
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
    /// The bucket a `/buckets` query names and the quota its requester
    /// has now. The default: the frontend has no such buckets.
    fn bucket(&self, query: &BucketQuery) -> Result<BucketTarget, BucketError> {
        let _ = query;
        Err(BucketError::NotFound(
            "this command has no /buckets (see docs/plans.md)".to_owned(),
        ))
    }
}

/// An admin response body.
pub type AdminBody = Full<Bytes>;

/// Serves `/healthz`, `/readyz`, `/metrics`, `/config` and (with a
/// `token`) `/buckets` for `source` on `listener` until `shutdown`.
pub async fn serve<A: AdminSource>(
    source: Arc<A>,
    listener: TcpListener,
    token: Option<AdminToken>,
    shutdown: impl Future<Output = ()>,
) {
    let token = Arc::new(token);
    serve_plain(
        listener,
        move |req| handle(source.clone(), token.clone(), req),
        shutdown,
        PlainOptions {
            max_connections: 256,
            grace: Duration::from_secs(1),
        },
    )
    .await;
}

/// Polls the store's reset generation every [`RESET_POLL`] while the
/// decider has a deny cache, until `shutdown`: a bucket reset through any
/// replica stops being denied from this one's cache within that long
/// (see [`Decider::poll_resets`]).
pub async fn watch_resets<A: AdminSource>(source: Arc<A>, shutdown: impl Future<Output = ()>) {
    if !source.decider().has_deny_cache() {
        return;
    }
    let poll = async {
        let mut tick = tokio::time::interval(RESET_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match source.decider().poll_resets().await {
                Ok(true) => tracing::debug!("Reset generation changed: deny cache dropped."),
                Ok(false) => {}
                Err(error) => tracing::debug!(%error, "Could not read the reset generation."),
            }
        }
    };
    tokio::select! {
        () = poll => {}
        () = shutdown => {}
    }
}

/// Answers one admin request; `/buckets` needs `token`.
pub async fn handle<A: AdminSource>(
    source: Arc<A>,
    token: Arc<Option<AdminToken>>,
    req: Request<Incoming>,
) -> Response<AdminBody> {
    if req.uri().path() == paths::BUCKETS {
        return buckets::handle(&*source, token.as_ref().as_ref(), &req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    match req.uri().path() {
        paths::HEALTHZ => {
            let store = source.store();
            let ping = tokio::time::timeout(PING_TIMEOUT, store.ping()).await;
            let (reachable, error) = match ping {
                Ok(Ok(())) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (false, Some(format!("no answer within {PING_TIMEOUT:?}"))),
            };
            let body = serde_json::json!({
                "status": "ok",
                "replica": source.replica(),
                "store": { "kind": store.kind(), "reachable": reachable, "error": error },
            });
            json(StatusCode::OK, &body)
        }
        paths::READYZ => {
            let store = source.store();
            let timeout = source.store_timeout();
            let error = match tokio::time::timeout(timeout, store.ping()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {timeout:?}")),
            };
            let replica = source.replica();
            match error {
                None => json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "status": "ready",
                        "replica": replica,
                        "store": { "kind": store.kind() },
                    }),
                ),
                Some(error) => {
                    tracing::debug!(store = %store.kind(), %error, "Not ready: store ping failed.");
                    json(
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
            let mut res = Response::new(Full::new(Bytes::from(source.encode_metrics())));
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        paths::CONFIG => match source.active_config() {
            Some(body) => json(StatusCode::OK, &body),
            None => error(StatusCode::NOT_FOUND, "not_found", "no config to show"),
        },
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "try /healthz, /readyz, /metrics, /config or /buckets",
        ),
    }
}

/// A JSON response.
fn json(status: StatusCode, value: &serde_json::Value) -> Response<AdminBody> {
    let mut res = Response::new(Full::new(Bytes::from(value.to_string())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// A JSON error `{"error": code, "message": message}` with `status`.
fn error(status: StatusCode, code: &str, message: &str) -> Response<AdminBody> {
    json(
        status,
        &serde_json::json!({ "error": code, "message": message }),
    )
}
