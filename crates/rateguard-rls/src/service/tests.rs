use std::future::Future;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::DescriptorStatus;
use envoy_types::pb::google::protobuf::UInt64Value;
use rateguard_contract::OnError;
use rateguard_core::clock::ManualClock;
use rateguard_core::MultiDecision;
use rateguard_runtime::DecideOptions;
use rateguard_store::{MemoryStore, StoreError};

use crate::Unit;

use super::*;

const LIMITS: &str = "
domain: edge
descriptors:
  - key: client
    rate_limit: { name: per_client, unit: minute, requests_per_unit: 3 }
  - key: route
    value: /search
    rate_limit: { unit: second, requests_per_unit: 1 }
  - key: trial
    shadow_mode: true
    rate_limit: { unit: second, requests_per_unit: 1 }
  - key: internal
    rate_limit: { unlimited: true }
  - key: banned
    rate_limit: { unit: second, requests_per_unit: 0 }
";

fn options() -> RlsOptions {
    RlsOptions {
        store: DecideOptions {
            budget: Duration::from_millis(100),
            on_error: OnError::Allow,
            replicas_hint: 1,
            deny_cache: None,
        },
        response_headers: ResponseHeaders::None,
        replica_id: "rls-1".into(),
    }
}

fn limiter_with<S: BucketStore>(store: S, options: RlsOptions) -> RateLimiter<S> {
    let limits = Limits::load_sources(&[("edge.yaml", LIMITS)]).unwrap();
    RateLimiter::new(limits, store, options)
}

fn limiter() -> (RateLimiter<MemoryStore<ManualClock>>, ManualClock) {
    let clock = ManualClock::new(1_000_000_000);
    (
        limiter_with(MemoryStore::with_clock(clock.clone()), options()),
        clock,
    )
}

fn request(descriptors: &[(&str, &str)]) -> RateLimitRequest {
    RateLimitRequest {
        domain: "edge".into(),
        descriptors: descriptors
            .iter()
            .map(|(k, v)| RateLimitDescriptor {
                entries: vec![Entry {
                    key: (*k).into(),
                    value: (*v).into(),
                }],
                ..Default::default()
            })
            .collect(),
        hits_addend: 0,
    }
}

/// `(code, remaining, seconds until reset)` of each status.
fn brief(statuses: &[DescriptorStatus]) -> Vec<(Code, u32, i64)> {
    statuses
        .iter()
        .map(|s| {
            (
                s.code(),
                s.limit_remaining,
                s.duration_until_reset.as_ref().map_or(-1, |d| d.seconds),
            )
        })
        .collect()
}

#[tokio::test]
async fn exactly_requests_per_unit_pass_then_over_limit_with_limit_fields() {
    let (rl, _clock) = limiter();
    let req = request(&[("client", "10.0.0.1")]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let res = rl.decide(&req).await.unwrap();
        seen.push((res.overall_code(), brief(&res.statuses)));
    }
    assert_eq!(
        seen,
        [
            (Code::Ok, vec![(Code::Ok, 2, 20)]),
            (Code::Ok, vec![(Code::Ok, 1, 40)]),
            (Code::Ok, vec![(Code::Ok, 0, 60)]),
            // Over: the retry can succeed in 20 s (one token of 3/minute).
            (Code::OverLimit, vec![(Code::OverLimit, 0, 20)]),
        ]
    );
    let res = rl.decide(&req).await.unwrap();
    let limit = res.statuses[0].current_limit.as_ref().unwrap();
    assert_eq!(
        (limit.name.as_str(), limit.requests_per_unit, limit.unit()),
        ("per_client", 3, Unit::Minute.to_proto())
    );
    // Another client has its own bucket.
    let other = rl
        .decide(&request(&[("client", "10.0.0.2")]))
        .await
        .unwrap();
    assert_eq!(other.overall_code(), Code::Ok);
    let text = rl.metrics().encode();
    assert!(text.contains(
        "rateguard_rls_decisions_total{domain=\"edge\",limit=\"per_client\",decision=\"over_limit\"} 2"
    ), "{text}");
}

#[tokio::test]
async fn tokens_refill_continuously_without_a_window_edge() {
    let (rl, clock) = limiter();
    let req = request(&[("client", "c")]);
    for _ in 0..3 {
        assert_eq!(rl.decide(&req).await.unwrap().overall_code(), Code::Ok);
    }
    assert_eq!(
        rl.decide(&req).await.unwrap().overall_code(),
        Code::OverLimit
    );
    clock.advance_us(19_999_999);
    assert_eq!(
        rl.decide(&req).await.unwrap().overall_code(),
        Code::OverLimit
    );
    clock.advance_us(1);
    assert_eq!(rl.decide(&req).await.unwrap().overall_code(), Code::Ok);
    assert_eq!(
        rl.decide(&req).await.unwrap().overall_code(),
        Code::OverLimit
    );
}

#[tokio::test]
async fn a_request_over_one_limit_spends_on_none() {
    let (rl, _clock) = limiter();
    let both = request(&[("client", "c"), ("route", "/search")]);
    let first = rl.decide(&both).await.unwrap();
    assert_eq!(first.overall_code(), Code::Ok);
    // /search is empty now: the request is refused and per_client keeps its 2 tokens.
    let second = rl.decide(&both).await.unwrap();
    assert_eq!(second.overall_code(), Code::OverLimit);
    assert_eq!(
        brief(&second.statuses),
        [(Code::Ok, 2, 20), (Code::OverLimit, 0, 1)]
    );
    let alone = rl.decide(&request(&[("client", "c")])).await.unwrap();
    assert_eq!(brief(&alone.statuses), [(Code::Ok, 1, 40)]);
}

#[tokio::test]
async fn shadow_limits_count_but_never_deny() {
    let (rl, _clock) = limiter();
    let req = request(&[("trial", "t")]);
    for _ in 0..3 {
        let res = rl.decide(&req).await.unwrap();
        assert_eq!(res.overall_code(), Code::Ok);
        assert_eq!(res.statuses[0].code(), Code::Ok);
    }
    let text = rl.metrics().encode();
    assert!(text.contains(
        "rateguard_rls_decisions_total{domain=\"edge\",limit=\"trial\",decision=\"shadow_over_limit\"} 2"
    ), "{text}");
}

#[tokio::test]
async fn unlimited_unmatched_and_blocked_descriptors() {
    let (rl, _clock) = limiter();
    let res = rl
        .decide(&request(&[("internal", "x"), ("nothing", "y")]))
        .await
        .unwrap();
    assert_eq!(res.overall_code(), Code::Ok);
    assert_eq!(
        brief(&res.statuses),
        [(Code::Ok, u32::MAX, -1), (Code::Ok, 0, -1)]
    );
    assert!(res.statuses.iter().all(|s| s.current_limit.is_none()));
    // requests_per_unit: 0 refuses, and spends nothing on the other bucket.
    let res = rl
        .decide(&request(&[("client", "c"), ("banned", "b")]))
        .await
        .unwrap();
    assert_eq!(res.overall_code(), Code::OverLimit);
    assert_eq!(
        brief(&res.statuses),
        [(Code::Ok, 3, 0), (Code::OverLimit, 0, 1)]
    );
}

#[tokio::test]
async fn hits_addend_is_the_cost() {
    let (rl, _clock) = limiter();
    let mut req = request(&[("client", "c")]);
    req.hits_addend = 2;
    assert_eq!(
        brief(&rl.decide(&req).await.unwrap().statuses),
        [(Code::Ok, 1, 40)]
    );
    req.descriptors[0].hits_addend = Some(UInt64Value { value: 2 });
    let res = rl.decide(&req).await.unwrap();
    assert_eq!(brief(&res.statuses), [(Code::OverLimit, 1, 20)]);
}

#[tokio::test]
async fn ietf_headers_report_the_descriptor_closest_to_its_limit() {
    let clock = ManualClock::new(1_000_000_000);
    let options = RlsOptions {
        response_headers: ResponseHeaders::Ietf,
        ..options()
    };
    let rl = limiter_with(MemoryStore::with_clock(clock), options);
    let res = rl
        .decide(&request(&[("client", "c"), ("route", "/search")]))
        .await
        .unwrap();
    let headers: Vec<(&str, &str)> = res
        .response_headers_to_add
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("ratelimit-policy", "\"route_/search\";q=1;w=1"),
            ("ratelimit", "\"route_/search\";r=0;t=1"),
        ]
    );
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument() {
    let (rl, _clock) = limiter();
    let err = rl.decide(&request(&[])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "rate limit descriptor list must not be empty"
    );
}

/// A store whose every call fails, as a Redis that is down.
struct DownStore;

impl BucketStore for DownStore {
    fn kind(&self) -> rateguard_store::StoreKind {
        rateguard_store::StoreKind::RedisLua
    }

    fn capabilities(&self) -> rateguard_store::Capabilities {
        rateguard_store::Capabilities::SHARED
    }

    fn acquire_all(
        &self,
        _: &[AcquireRequest],
    ) -> impl Future<Output = Result<MultiDecision, StoreError>> + Send {
        std::future::ready(Err(StoreError::Unavailable("connection refused".into())))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_failed_store_answers_ok_or_unavailable_per_on_error() {
    let open = limiter_with(DownStore, options());
    let res = open.decide(&request(&[("client", "c")])).await.unwrap();
    assert_eq!(res.overall_code(), Code::Ok);
    assert!(res.statuses[0].current_limit.is_none());
    let text = open.metrics().encode();
    assert!(
        text.contains("rateguard_rls_requests_total{outcome=\"failed_open\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rateguard_store_errors_total{error=\"unavailable\"} 1"),
        "{text}"
    );

    let closed = limiter_with(
        DownStore,
        RlsOptions {
            store: DecideOptions {
                on_error: OnError::Deny,
                ..options().store
            },
            ..options()
        },
    );
    let err = closed
        .decide(&request(&[("client", "c")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    // Descriptors that need no store still answer.
    let res = closed.decide(&request(&[("internal", "x")])).await.unwrap();
    assert_eq!(res.overall_code(), Code::Ok);
}

#[tokio::test]
async fn a_descriptor_named_twice_spends_twice_on_one_bucket() {
    let (rl, _clock) = limiter();
    let twice = request(&[("client", "c"), ("client", "c")]);
    let res = rl.decide(&twice).await.unwrap();
    assert_eq!(brief(&res.statuses), [(Code::Ok, 1, 40), (Code::Ok, 1, 40)]);
    // 2 more do not fit in the 1 left: refused, nothing spent.
    let res = rl.decide(&twice).await.unwrap();
    assert_eq!(res.overall_code(), Code::OverLimit);
    let once = rl.decide(&request(&[("client", "c")])).await.unwrap();
    assert_eq!(brief(&once.statuses), [(Code::Ok, 0, 60)]);
}
