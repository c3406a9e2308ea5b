//! [`Gateway`]: one request's path through the gateway, in order:
//! policy → client identity → store decision → 429/503 or proxy → headers.
//!
//! Nothing here touches sockets; [`crate::server`] feeds it requests.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use rateguard_store::BucketStore;

use crate::config::ValidConfig;
use crate::enforce::{Enforcer, Verdict};
use crate::error::ProxyError;
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::policy::PolicyTable;
use crate::proxy::Proxy;
use crate::response::{self, Body, RATELIMIT, RATELIMIT_POLICY, X_RATEGUARD_REPLICA};

/// A gateway replica's request handler, generic over its store (no boxing:
/// the binary instantiates one per store kind).
#[derive(Debug)]
pub struct Gateway<S> {
    policies: PolicyTable,
    identity: Identifier,
    enforcer: Enforcer<S>,
    proxy: Proxy,
    replica: HeaderValue,
    metrics: Arc<Metrics>,
}

impl<S: BucketStore> Gateway<S> {
    /// Builds the handler. Must be called inside a Tokio runtime (the
    /// upstream client's pool needs one).
    pub fn new(config: &ValidConfig, store: S) -> Self {
        let metrics = Arc::new(Metrics::new());
        let replica = HeaderValue::try_from(config.server.replica_id.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            policies: PolicyTable::new(&config.policies, &metrics),
            identity: Identifier::new(&config.identity),
            enforcer: Enforcer::new(
                store,
                config.store.timeout,
                config.store.on_error,
                metrics.clone(),
            ),
            proxy: Proxy::new(&config.upstream),
            replica,
            metrics,
        }
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.enforcer.store()
    }

    /// The `X-RateGuard-Replica` value.
    pub fn replica(&self) -> &HeaderValue {
        &self.replica
    }

    /// Answers one request received from `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let peer_ip = peer.ip();
        let mut limit_headers = None;
        if let Some(policy) = self.policies.select(req.uri().path()) {
            let client = self.identity.identify(req.headers(), peer_ip);
            match self.enforcer.check(policy, &client).await {
                Verdict::Allowed(d) => {
                    limit_headers = Some((
                        policy.policy_header().clone(),
                        response::ratelimit_header(policy.name(), &d),
                    ));
                }
                Verdict::Denied(d) => {
                    let res = response::rate_limited(policy.name(), policy.policy_header(), &d);
                    return self.finish(res);
                }
                Verdict::FailedClosed => return self.finish(response::store_unavailable()),
                Verdict::FailedOpen => {}
            }
        }
        let mut res = match self.proxy.forward(req, peer_ip).await {
            Ok(res) => {
                self.metrics.upstream_status(res.status().as_u16());
                res.map(Either::Left)
            }
            Err(err @ ProxyError::Timeout(_)) => {
                tracing::trace!(error = %err, "Upstream timed out.");
                self.metrics.upstream_timeout();
                response::gateway_timeout()
            }
            Err(err @ ProxyError::Unreachable(_)) => {
                tracing::trace!(error = %err, "Upstream unreachable.");
                self.metrics.upstream_error();
                response::bad_gateway()
            }
            Err(err @ ProxyError::BadRequest(_)) => {
                response::error(StatusCode::BAD_REQUEST, "bad_request", &err.to_string())
            }
        };
        if let Some((policy, limit)) = limit_headers {
            res.headers_mut().insert(RATELIMIT_POLICY, policy);
            res.headers_mut().insert(RATELIMIT, limit);
        }
        self.finish(res)
    }

    fn finish(&self, mut res: Response<Body>) -> Response<Body> {
        res.headers_mut()
            .insert(X_RATEGUARD_REPLICA, self.replica.clone());
        res
    }
}
