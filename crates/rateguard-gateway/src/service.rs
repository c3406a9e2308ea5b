//! [`Gateway`]: one request's path through the gateway, in order:
//! canonical path → policy (path and method) → client identity → plan (the
//! policy's limits × the identity → store requests, [`crate::plan`]) →
//! decide (one store call, [`crate::enforce`]) → 429/503 or proxy →
//! headers. The
//! policy is chosen on the normalized path ([`crate::path`]) and that same
//! path is forwarded, so the path that was limited is the path the backend
//! sees; a path that cannot be normalized safely is answered `400`. A
//! denial under a shadow-mode policy is proxied like an allowed request.
//!
//! The decision is the runtime's decision layer (budget, `on_error`, deny
//! cache); what a reload swaps is [`crate::live`]'s.
//!
//! Nothing here touches sockets; [`crate::server`] feeds it requests.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use rateguard_contract::GrpcDeniedStatus;
use rateguard_core::BucketKey;
use rateguard_runtime::admin::{BucketError, BucketQuery, BucketTarget};
use rateguard_runtime::{AdminSource, DecideOptions, Decider};
use rateguard_store::BucketStore;

use crate::config::ValidConfig;
use crate::enforce::{Enforcer, Reported, Verdict};
use crate::error::ProxyError;
use crate::live::{Live, LiveSlot};
use crate::metrics::Metrics;
use crate::path::{self, EncodedSlashes};
use crate::policy::{Policy, Tier};
use crate::proxy::Proxy;
use crate::registry::KeyRegistry;
use crate::response::{self, Answer, Body, RATELIMIT, RATELIMIT_POLICY, X_RATEGUARD_REPLICA};
use crate::upgrade;

/// What every runtime of a replica shares: the live part (policies,
/// identity rules, swapped whole by a reload), the store (behind its time
/// budget), metrics and the replica's name.
#[derive(Debug)]
pub struct Shared<S> {
    live: Arc<LiveSlot>,
    pub(crate) enforcer: Enforcer<S>,
    encoded_slashes: EncodedSlashes,
    grpc_denied: GrpcDeniedStatus,
    replica: HeaderValue,
    metrics: Arc<Metrics>,
    /// `store.on_error = "deny"`: a key the registry cannot check is refused.
    fail_closed: bool,
}

impl<S: BucketStore> Shared<S> {
    /// Builds the shared part from the config and a connected store.
    pub fn new(config: &ValidConfig, store: S) -> Self {
        Self::with_registry(config, store, None)
    }

    /// [`new`](Self::new), the known keys from `registry` (`identity.keys
    /// = "redis"`) if given.
    pub fn with_registry(
        config: &ValidConfig,
        store: S,
        registry: Option<Arc<KeyRegistry>>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let replica = HeaderValue::try_from(config.server.replica_id.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let enforcer = Enforcer::with_options(store, &DecideOptions::from(&config.store), &metrics);
        Self {
            live: Arc::new(LiveSlot::with_registry(config, metrics.clone(), registry)),
            enforcer,
            encoded_slashes: config.server.encoded_slashes,
            grpc_denied: config.server.grpc_denied_status,
            replica,
            metrics,
            fail_closed: config.store.on_error == rateguard_contract::OnError::Deny,
        }
    }

    /// The live part now: a request holds it from policy selection to its
    /// verdict, so a reload meanwhile does not change its policy.
    pub fn live(&self) -> Arc<Live> {
        self.live.load()
    }

    /// What a reload swaps ([`LiveSlot`], the replica's reload target).
    pub fn live_slot(&self) -> &Arc<LiveSlot> {
        &self.live
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &S {
        self.enforcer.store()
    }

    /// Whether the store is asked through the deny cache.
    pub fn has_deny_cache(&self) -> bool {
        self.enforcer.has_deny_cache()
    }

    /// The time budget of one store call (`store.timeout_ms`), also the
    /// bound of `/readyz`'s ping.
    pub fn store_timeout(&self) -> Duration {
        self.enforcer.timeout()
    }

    /// The `X-RateGuard-Replica` value.
    pub fn replica(&self) -> &HeaderValue {
        &self.replica
    }
}

impl<S: BucketStore> AdminSource for Shared<S> {
    type Store = S;

    fn decider(&self) -> &Decider<S> {
        self.enforcer.decider()
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

    /// The policy's limit by name, the requester's identity and plan as
    /// a request of theirs would have them now.
    fn bucket(&self, query: &BucketQuery) -> Result<BucketTarget, BucketError> {
        let live = self.live();
        let policy = live
            .policies()
            .iter()
            .find(|p| p.name() == query.policy)
            .ok_or_else(|| BucketError::NotFound(format!("no policy named {:?}", query.policy)))?;
        let names = || {
            let names: Vec<&str> = policy.limits().iter().map(|l| l.name()).collect();
            format!("{names:?}")
        };
        let index = match &query.limit {
            Some(name) => policy
                .limits()
                .iter()
                .position(|l| l.name() == name)
                .ok_or_else(|| {
                    BucketError::NotFound(format!(
                        "policy {:?} has no limit named {name:?} (its limits: {})",
                        policy.name(),
                        names()
                    ))
                })?,
            None if policy.limits().len() == 1 => 0,
            None => {
                return Err(BucketError::Invalid(format!(
                    "policy {:?} has several limits: name one with limit= (its limits: {})",
                    policy.name(),
                    names()
                )))
            }
        };
        let limit = &policy.limits()[index];
        let (identity, plan) = live.identity().admin_identity(limit.key(), &query.who)?;
        let tier = policy.tier(plan);
        let quota = *tier.quota(index).ok_or_else(|| {
            BucketError::Invalid(format!(
                "plan {:?} makes limit {:?} unlimited: its requests have no bucket",
                tier.plan().unwrap_or(""),
                limit.name()
            ))
        })?;
        Ok(BucketTarget {
            key: BucketKey::for_limit(policy.name(), limit.name(), &identity),
            quota,
            policy: policy.name().to_owned(),
            limit: limit.name().to_owned(),
            plan: tier.plan().map(str::to_owned),
        })
    }
}

/// A gateway replica's request handler on one runtime: the [`Shared`] part
/// and an upstream client. Generic over its store (no boxing: one
/// instantiation per store kind).
#[derive(Debug)]
pub struct Gateway<S> {
    shared: Arc<Shared<S>>,
    proxy: Proxy,
}

impl<S: BucketStore> Gateway<S> {
    /// A handler on `shared` forwarding through `proxy` (a clone shares its
    /// connection pool; a runtime may also get a [`Proxy`] of its own).
    pub fn new(shared: Arc<Shared<S>>, proxy: Proxy) -> Self {
        Self { shared, proxy }
    }

    /// The shared part.
    pub fn shared(&self) -> &Arc<Shared<S>> {
        &self.shared
    }

    /// Answers one request received from `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let peer_ip = peer.ip();
        // `None`: the request's own path is canonical (the common case, no copy).
        let normalized = match path::normalize(req.uri().path(), self.shared.encoded_slashes) {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(path)) => Some(path),
            Err(err) => {
                tracing::trace!(error = %err, "Path refused.");
                return self.finish(response::bad_path(&err));
            }
        };
        let path = normalized.as_deref().unwrap_or(req.uri().path());
        let mut limit_headers = None;
        let shared = &*self.shared;
        let live = shared.live();
        if let Some(policy) = live.policies().select(path, req.method()) {
            if shared.fail_closed && live.identity().key_unverifiable(req.headers()) {
                let answer = Answer::of(req.headers(), shared.grpc_denied);
                return self.finish(answer.store_unavailable());
            }
            let requester = live.identity().requester(req.headers(), peer_ip);
            let verdict = shared.enforcer.check(policy, &requester).await;
            let tier = policy.tier(requester.plan());
            let answer = || Answer::of(req.headers(), shared.grpc_denied);
            match step(policy, tier, verdict, answer) {
                Step::Forward(headers) => limit_headers = headers,
                Step::Respond(res) => {
                    upgrade::count_refused(&shared.metrics, req.headers());
                    return self.finish(res);
                }
            }
        }
        let mut res = match self
            .proxy
            .forward(req, peer_ip, normalized.as_deref())
            .await
        {
            Ok(res) => {
                shared.metrics.upstream_status(res.status().as_u16());
                upgrade::count_accepted(&shared.metrics, &res);
                res.map(Either::Left)
            }
            Err(err @ ProxyError::Timeout(_)) => {
                tracing::trace!(error = %err, "Upstream timed out.");
                shared.metrics.upstream_timeout();
                response::gateway_timeout()
            }
            Err(err @ ProxyError::Unreachable(_)) => {
                tracing::trace!(error = %err, "Upstream unreachable.");
                shared.metrics.upstream_error();
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
            .insert(X_RATEGUARD_REPLICA, self.shared.replica.clone());
        res
    }
}

/// What a verdict means for the request.
#[derive(Debug)]
enum Step {
    /// Proxy it, adding `(RateLimit-Policy, RateLimit)` if there was a decision.
    Forward(Option<(HeaderValue, HeaderValue)>),
    /// Answer it ourselves (429, 503).
    Respond(Response<Body>),
}

/// `tier`: the policy as the requester's plan sees it (its
/// `RateLimit-Policy` value, its name for the 429 body). `answer`: how a
/// refusal is worded (HTTP or gRPC), asked only for one.
fn step(policy: &Policy, tier: &Tier, verdict: Verdict, answer: impl FnOnce() -> Answer) -> Step {
    let label = |r: &Reported| policy.limits()[r.limit].label();
    match verdict {
        // A shadow denial is forwarded with the headers as computed (r=0).
        Verdict::Allowed(Some(r)) | Verdict::ShadowDenied(r) => Step::Forward(Some((
            tier.policy_header().clone(),
            response::ratelimit_header(label(&r), &r.decision),
        ))),
        Verdict::Denied(r) => Step::Respond(answer().rate_limited(
            &response::Denial {
                policy: policy.name(),
                plan: tier.plan(),
                limit: label(&r),
                policy_header: tier.policy_header(),
            },
            &r.decision,
        )),
        Verdict::FailedClosed => Step::Respond(answer().store_unavailable()),
        Verdict::Allowed(None) | Verdict::FailedOpen => Step::Forward(None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rateguard_core::{Decision, Quota};

    use super::*;
    use crate::config::PolicyConfig;
    use crate::policy::PolicyTable;

    fn policy_table(shadow: bool) -> PolicyTable {
        let config = PolicyConfig {
            shadow,
            ..PolicyConfig::single("p", Quota::new(2, 0.5).unwrap())
        };
        PolicyTable::new(&[config], &Metrics::new())
    }

    fn reported(decision: Decision) -> Reported {
        Reported { limit: 0, decision }
    }

    fn denial() -> Decision {
        Decision {
            allowed: false,
            limit: 2,
            remaining: 0,
            retry_after: Duration::from_millis(1500),
            reset_after: Duration::from_secs(4),
        }
    }

    #[test]
    fn a_shadow_denial_is_forwarded_with_the_computed_headers() {
        let t = policy_table(true);
        let p = t.select("/", &http::Method::GET).unwrap();
        let Step::Forward(Some((policy, limit))) = step(
            p,
            p.tier(None),
            Verdict::ShadowDenied(reported(denial())),
            || Answer::Http,
        ) else {
            panic!("a shadow denial must be forwarded with headers");
        };
        assert_eq!(policy, "\"p\";q=2;w=4");
        assert_eq!(limit, "\"p\";r=0;t=2");
    }

    #[test]
    fn a_real_denial_is_answered_429_and_failures_follow_on_error() {
        let t = policy_table(false);
        let p = t.select("/", &http::Method::GET).unwrap();
        let Step::Respond(res) = step(p, p.tier(None), Verdict::Denied(reported(denial())), || {
            Answer::Http
        }) else {
            panic!("a denial is answered here");
        };
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RATELIMIT], "\"p\";r=0;t=2");
        let Step::Respond(res) = step(p, p.tier(None), Verdict::FailedClosed, || Answer::Http)
        else {
            panic!("fail closed is answered here");
        };
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let http = || Answer::Http;
        assert!(matches!(
            step(p, p.tier(None), Verdict::FailedOpen, http),
            Step::Forward(None)
        ));
        assert!(matches!(
            step(p, p.tier(None), Verdict::Allowed(None), http),
            Step::Forward(None)
        ));
    }
}
