//! The gRPC listener: `envoy.service.ratelimit.v3.RateLimitService`,
//! `envoy.service.rate_limit_quota.v3.RateLimitQuotaService` and the
//! standard `grpc.health.v1.Health`, HTTP/2 plaintext.

use std::future::Future;
use std::sync::Arc;

use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_service_server::RateLimitQuotaServiceServer;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use rateguard_store::BucketStore;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::quota::QuotaService;
use crate::service::RateLimiter;

/// Serves `limiter` (and `quota`, when given) on `listener` until
/// `shutdown` resolves, then ends the quota streams and drains in-flight
/// calls. The health service reports `SERVING` for the whole server
/// (`""`) and for each service while it runs, `NOT_SERVING` once shutdown
/// begins.
pub async fn serve_grpc<S: BucketStore>(
    limiter: Arc<RateLimiter<S>>,
    quota: Option<QuotaService<S>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<RateLimitServiceServer<RateLimiter<S>>>()
        .await;
    if quota.is_some() {
        reporter
            .set_serving::<RateLimitQuotaServiceServer<QuotaService<S>>>()
            .await;
    }
    let stopper = quota.clone();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(health)
        .add_service(RateLimitServiceServer::from_arc(limiter))
        .add_optional_service(quota.map(RateLimitQuotaServiceServer::new))
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            if let Some(quota) = stopper {
                quota.stop_streams();
                reporter
                    .set_not_serving::<RateLimitQuotaServiceServer<QuotaService<S>>>()
                    .await;
            }
            reporter
                .set_not_serving::<RateLimitServiceServer<RateLimiter<S>>>()
                .await;
            reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            tracing::info!("Shutdown requested; draining in-flight gRPC calls.");
        })
        .await
}
