//! `GET /buckets` and `DELETE /buckets`: one bucket seen without spending,
//! or made full again, for an operator ("this customer is locked out").
//!
//! Off unless `[admin] token_file` is set (404); every call must carry
//! `Authorization: Bearer <token>` (401 otherwise, nothing else said).
//! The query names the bucket: `policy=<name>`, `limit=<name>` (optional
//! for a policy with one limit), and who: `key=<api key>`, `ip=<address>`,
//! `header=<value>`, or nothing for a `global` limit. The frontend turns
//! that into a bucket key and the quota the requester has
//! ([`AdminSource::bucket`]); the decision layer peeks or resets it
//! ([`Decider::peek`](crate::Decider::peek), [`Decider::reset`](crate::Decider::reset)).
//!
//! Every call is logged at `info` with its outcome; an API key or header
//! value appears only as the first 12 hex digits of its SHA-256, and the
//! token never.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use rateguard_core::{BucketKey, Peek, Quota};
use rateguard_store::BucketStore;
use sha2::{Digest, Sha256};

use super::{error, json, AdminBody, AdminSource, AdminToken};

/// Who a bucket belongs to, as the query names it.
#[derive(Clone, PartialEq, Eq)]
pub enum Who {
    /// `key=`: an API key, in clear (never logged).
    ApiKey(String),
    /// `ip=`: a client address (counted as its network, as requests are).
    Ip(IpAddr),
    /// `header=`: the value of a `header:<name>` limit's header.
    Header(String),
    /// Nothing: a `global` limit's one bucket.
    Global,
}

impl std::fmt::Debug for Who {
    /// As logs show it: a key or header value only by its digest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::ApiKey(key) => write!(f, "key sha256:{}", short_digest(key)),
            Who::Ip(ip) => write!(f, "ip {ip}"),
            Who::Header(value) => write!(f, "header sha256:{}", short_digest(value)),
            Who::Global => f.write_str("global"),
        }
    }
}

/// The first 12 hex digits of `text`'s SHA-256 (what logs show of a secret).
fn short_digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

/// A `/buckets` query: which policy's limit, for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketQuery {
    /// `policy=`.
    pub policy: String,
    /// `limit=`; `None`: the policy's only limit.
    pub limit: Option<String>,
    /// `key=`, `ip=`, `header=` or none.
    pub who: Who,
}

impl BucketQuery {
    /// Parses a query string (`policy=data&limit=client&key=...`).
    pub fn parse(query: &str) -> Result<Self, String> {
        let (mut policy, mut limit, mut who) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            let slot_who = |who: &mut Option<Who>, w: Who| match who {
                Some(_) => Err("give at most one of key=, ip= and header=".to_owned()),
                None => {
                    *who = Some(w);
                    Ok(())
                }
            };
            match &*name {
                "policy" => policy = Some(value),
                "limit" => limit = Some(value),
                "key" => slot_who(&mut who, Who::ApiKey(value))?,
                "header" => slot_who(&mut who, Who::Header(value))?,
                "ip" => {
                    let ip = value
                        .parse()
                        .map_err(|_| format!("ip: not an IP address, got {value:?}"))?;
                    slot_who(&mut who, Who::Ip(ip))?;
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: use policy, limit and one of key, ip, header"
                    ))
                }
            }
        }
        Ok(Self {
            policy: policy
                .filter(|p| !p.is_empty())
                .ok_or("policy= is required")?,
            limit: limit.filter(|l| !l.is_empty()),
            who: who.unwrap_or(Who::Global),
        })
    }
}

/// The bucket a query names, as the frontend resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketTarget {
    /// The store key.
    pub key: BucketKey,
    /// The quota a request of that requester has on it now (its plan's,
    /// if it has one).
    pub quota: Quota,
    /// The policy's name.
    pub policy: String,
    /// The limit's name.
    pub limit: String,
    /// The requester's plan, if any.
    pub plan: Option<String>,
}

/// Why a query names no bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    /// No such policy, limit or key (404).
    #[error("{0}")]
    NotFound(String),
    /// The query does not fit the limit (a `key=` for an `ip` limit...) (400).
    #[error("{0}")]
    Invalid(String),
}

/// Answers one `/buckets` call.
pub(super) async fn handle<A: AdminSource, B>(
    source: &A,
    token: Option<&AdminToken>,
    req: &Request<B>,
) -> Response<AdminBody> {
    let method = req.method().clone();
    let Some(token) = token else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the bucket endpoints are off: set [admin] token_file",
        );
    };
    if !token.accepts(req.headers()) {
        tracing::warn!(%method, path = req.uri().path(), status = 401, "Admin call refused: no valid bearer token.");
        let mut res = error(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized");
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return res;
    }
    let reset = match method {
        Method::GET | Method::HEAD => false,
        Method::DELETE => true,
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use GET (peek) or DELETE (reset)",
            )
        }
    };
    let query = match BucketQuery::parse(req.uri().query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => {
            tracing::info!(%method, status = 400, %message, "Admin bucket call refused.");
            return error(StatusCode::BAD_REQUEST, "bad_request", &message);
        }
    };
    let target = match source.bucket(&query) {
        Ok(target) => target,
        Err(e) => {
            let (status, code) = match e {
                BucketError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                BucketError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            };
            tracing::info!(%method, policy = %query.policy, limit = ?query.limit, who = ?query.who,
                status = status.as_u16(), message = %e, "Admin bucket call refused.");
            return error(status, code, &e.to_string());
        }
    };
    let decider = source.decider();
    let result = async {
        if reset {
            decider.reset(&target.key).await?;
        }
        decider.peek(&target.key, &target.quota).await
    }
    .await;
    let log = |status: u16, outcome: &str| {
        tracing::info!(%method, policy = %target.policy, limit = %target.limit, who = ?query.who,
            plan = ?target.plan, status, outcome, "Admin bucket call.");
    };
    match result {
        Ok(peek) => {
            log(200, if reset { "reset" } else { "peeked" });
            let store = decider.store();
            json(
                StatusCode::OK,
                &body(
                    &target,
                    &peek,
                    reset,
                    store.capabilities().shared,
                    source.replica(),
                    store.name(),
                ),
            )
        }
        Err(e) => {
            log(503, &e.to_string());
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    }
}

/// Milliseconds, rounded up (0 only for zero).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// The answer: the bucket as the requester's quota sees it, and whose
/// answer it is (`scope`: `shared` for a store every replica shares,
/// `replica` for this process's own buckets).
fn body(
    target: &BucketTarget,
    peek: &Peek,
    reset: bool,
    shared: bool,
    replica: &str,
    store: &str,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "policy": target.policy,
        "limit": target.limit,
        "plan": target.plan,
        "capacity": peek.limit,
        "refill_per_sec": target.quota.refill_per_sec(),
        "remaining": peek.remaining,
        "reset_after_ms": ms(peek.reset_after),
        "retry_after_ms": ms(peek.retry_after),
        "scope": if shared { "shared" } else { "replica" },
        "replica": replica,
        "store": store,
    });
    if reset {
        body["reset"] = true.into();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_policy_a_limit_and_at_most_one_requester() {
        let q = BucketQuery::parse("policy=data&limit=client&key=k%201").unwrap();
        assert_eq!(q.policy, "data");
        assert_eq!(q.limit.as_deref(), Some("client"));
        assert_eq!(q.who, Who::ApiKey("k 1".into()));
        let q = BucketQuery::parse("policy=data&ip=2001:db8::1").unwrap();
        assert_eq!(q.who, Who::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(BucketQuery::parse("policy=g").unwrap().who, Who::Global);
        assert!(BucketQuery::parse("limit=x").is_err());
        assert!(BucketQuery::parse("policy=p&key=a&ip=1.2.3.4").is_err());
        assert!(BucketQuery::parse("policy=p&ip=nope").is_err());
        assert!(BucketQuery::parse("policy=p&user=x").is_err());
    }

    #[test]
    fn logs_show_secrets_only_by_digest() {
        let shown = format!("{:?}", Who::ApiKey("sk_live_123".into()));
        assert!(!shown.contains("sk_live_123"), "{shown}");
        assert!(
            shown.starts_with("key sha256:") && shown.len() == 23,
            "{shown}"
        );
    }
}
