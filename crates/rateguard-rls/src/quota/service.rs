//! [`QuotaService`]: `StreamRateLimitQuotas`, one task per stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::r#type::v3::rate_limit_strategy::{BlanketRule, Strategy};
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_response::{
    bucket_action, BucketAction,
};
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_service_server::RateLimitQuotaService;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::{
    RateLimitQuotaResponse, RateLimitQuotaUsageReports,
};
use rateguard_contract::metrics::RlqsAssignment;
use rateguard_store::BucketStore;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::shares::{MemoryShares, ShareStore};
use super::stream::{Context, QuotaStream, RENEW_EVERY};
use crate::metrics::UNKNOWN_DOMAIN;
use crate::service::RateLimiter;

/// The Rate Limit Quota Service: the limits of a [`RateLimiter`] (reloads
/// included), shares in a [`ShareStore`].
///
/// Cheap to clone; clones serve the same streams.
#[derive(Debug)]
pub struct QuotaService<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for QuotaService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    limiter: Arc<RateLimiter<S>>,
    shares: ShareStore,
    local: MemoryShares,
    /// `replica_id` and a per-process nonce: holder ids never repeat.
    process: String,
    next_stream: AtomicU64,
    stop: watch::Sender<bool>,
}

impl<S: BucketStore> QuotaService<S> {
    /// Serves `limiter`'s limits with shares in `shares`.
    pub fn new(limiter: Arc<RateLimiter<S>>, shares: ShareStore) -> Self {
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let process = format!("{}/{nonce:x}", limiter.options().replica_id);
        Self {
            inner: Arc::new(Inner {
                limiter,
                shares,
                local: MemoryShares::default(),
                process,
                next_stream: AtomicU64::new(0),
                stop: watch::channel(false).0,
            }),
        }
    }

    /// Ends every stream (at shutdown: Envoys reconnect elsewhere; what
    /// they hold lapses at its expiry).
    pub fn stop_streams(&self) {
        self.inner.stop.send_replace(true);
    }
}

impl<S: BucketStore> Inner<S> {
    async fn run(
        self: Arc<Self>,
        mut inbound: Streaming<RateLimitQuotaUsageReports>,
        out: mpsc::Sender<Result<RateLimitQuotaResponse, Status>>,
    ) {
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let mut stream = QuotaStream::new(format!("{}/{n}", self.process));
        let metrics = self.limiter.metrics().quota();
        metrics.streams(1);
        let mut tracked = 0;
        let mut stop = self.stop.subscribe();
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        while !*stop.borrow() {
            let actions = tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(reports)) => match self.usage(&stream, &reports)
                        .and_then(|()| stream.report(reports, Instant::now()).map_err(Into::into)) {
                        Ok(new) if new.is_empty() => continue,
                        Ok(new) => {
                            let live = self.limiter.live();
                            stream.assign(self.context(live.limits()), &new).await
                        }
                        Err(status) => {
                            let _ = out.send(Err(status)).await;
                            break;
                        }
                    },
                    Ok(None) | Err(_) => break,
                },
                _ = tick.tick() => {
                    let live = self.limiter.live();
                    stream.renew(self.context(live.limits())).await
                }
                _ = stop.changed() => break,
                () = out.closed() => break,
            };
            let now_tracked = stream.bucket_count() as i64;
            metrics.buckets(now_tracked - tracked);
            tracked = now_tracked;
            if actions.is_empty() {
                continue;
            }
            for action in &actions {
                metrics.assigned(kind(action));
            }
            let response = RateLimitQuotaResponse {
                bucket_action: actions,
            };
            if out.send(Ok(response)).await.is_err() {
                break;
            }
        }
        metrics.buckets(-tracked);
        metrics.streams(-1);
        tracing::debug!(
            domain = stream.domain().unwrap_or(""),
            buckets = stream.bucket_count(),
            "RLQS stream ended."
        );
    }

    /// Counts the requests a report names (by the stream's domain, or the
    /// report's for the first one).
    fn usage(
        &self,
        stream: &QuotaStream,
        reports: &RateLimitQuotaUsageReports,
    ) -> Result<(), Status> {
        let domain = stream.domain().unwrap_or(&reports.domain);
        let live = self.limiter.live();
        let label = if live.limits().has_domain(domain) {
            domain
        } else {
            UNKNOWN_DOMAIN
        };
        let (allowed, denied) =
            reports
                .bucket_quota_usages
                .iter()
                .fold((0u64, 0u64), |(a, d), u| {
                    (
                        a.saturating_add(u.num_requests_allowed),
                        d.saturating_add(u.num_requests_denied),
                    )
                });
        self.limiter.metrics().quota().usage(label, allowed, denied);
        Ok(())
    }

    fn context<'a>(&'a self, limits: &'a crate::limits::Limits) -> Context<'a> {
        Context {
            limits,
            shares: &self.shares,
            local: &self.local,
            options: &self.limiter.options().store,
            store_metrics: self.limiter.metrics().store(),
        }
    }
}

/// What kind of assignment `action` is.
fn kind(action: &BucketAction) -> RlqsAssignment {
    match &action.bucket_action {
        Some(bucket_action::BucketAction::QuotaAssignmentAction(a)) => {
            match a
                .rate_limit_strategy
                .as_ref()
                .and_then(|s| s.strategy.as_ref())
            {
                Some(Strategy::TokenBucket(_)) => RlqsAssignment::TokenBucket,
                Some(Strategy::BlanketRule(rule)) if *rule == BlanketRule::DenyAll as i32 => {
                    RlqsAssignment::DenyAll
                }
                _ => RlqsAssignment::AllowAll,
            }
        }
        _ => RlqsAssignment::Abandon,
    }
}

#[tonic::async_trait]
impl<S: BucketStore> RateLimitQuotaService for QuotaService<S> {
    type StreamRateLimitQuotasStream = ReceiverStream<Result<RateLimitQuotaResponse, Status>>;

    async fn stream_rate_limit_quotas(
        &self,
        request: Request<Streaming<RateLimitQuotaUsageReports>>,
    ) -> Result<Response<Self::StreamRateLimitQuotasStream>, Status> {
        if let ShareStore::Unsupported(kind) = &self.inner.shares {
            return Err(Status::failed_precondition(format!(
                "RLQS needs store kind memory, redis-lua or redis-pipelined, not {kind}"
            )));
        }
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(self.inner.clone().run(request.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
