//! The gRPC surface in-process: `ShouldRateLimit` and `grpc.health.v1`
//! over a real HTTP/2 connection on loopback.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use rateguard_contract::OnError;
use rateguard_rls::{serve_grpc, Limits, RateLimiter, ResponseHeaders, RlsOptions};
use rateguard_runtime::DecideOptions;
use rateguard_store::MemoryStore;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[tokio::test]
async fn should_rate_limit_and_health_over_http2() {
    let limits = Limits::load_sources(&[(
        "edge.yaml",
        "domain: edge\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 2 }\n",
    )])
    .unwrap();
    let options = RlsOptions {
        store: DecideOptions {
            budget: Duration::from_millis(100),
            on_error: OnError::Allow,
            replicas_hint: 1,
            deny_cache: None,
        },
        response_headers: ResponseHeaders::None,
        replica_id: "rls-1".into(),
    };
    let limiter = Arc::new(RateLimiter::new(limits, MemoryStore::new(), options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_grpc(limiter, None, listener, async {
        let _ = stopped.await;
    }));

    let url = format!("http://{addr}");
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "envoy.service.ratelimit.v3.RateLimitService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    let mut client = RateLimitServiceClient::new(channel);
    let request = RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "k".into(),
                value: "v".into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    };
    let mut codes = Vec::new();
    for _ in 0..3 {
        let res = client.should_rate_limit(request.clone()).await.unwrap();
        codes.push(res.into_inner().overall_code());
    }
    assert_eq!(codes, [Code::Ok, Code::Ok, Code::OverLimit]);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
