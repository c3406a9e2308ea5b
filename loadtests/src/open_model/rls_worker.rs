//! The open model over gRPC: workers that call Envoy's
//! `RateLimitService/ShouldRateLimit` directly (as Envoy's ratelimit
//! filter would), one descriptor per request whose value is the request's
//! key, over a few HTTP/2 channels shared by the workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use tonic::transport::Channel;

use super::worker::Tally;
use super::Shared;
use crate::keys::KeyPlan;
use crate::record::Outcome;
use crate::LoadError;

/// Workers per HTTP/2 channel (one TCP connection each): requests are
/// multiplexed, as Envoy multiplexes its calls to the service.
pub const WORKERS_PER_CHANNEL: usize = 16;

/// Where the requests go and what each asks: `domain`, one descriptor
/// `[(descriptor_key, <request key>)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsTarget {
    /// The services, `http://127.0.0.1:port` each (channels round robin).
    pub endpoints: Vec<String>,
    /// The limits file's domain.
    pub domain: String,
    /// The descriptor entry's key (its value is the request's key).
    pub descriptor_key: String,
}

/// One channel per [`WORKERS_PER_CHANNEL`] workers, spread round robin
/// over `endpoints` (`http://127.0.0.1:port`).
pub(super) async fn connect_all(
    endpoints: &[String],
    workers: usize,
) -> Result<Vec<Channel>, LoadError> {
    if endpoints.is_empty() {
        return Err(LoadError::Config("no gRPC endpoint to call".into()));
    }
    let n = workers.div_ceil(WORKERS_PER_CHANNEL).max(endpoints.len());
    let mut channels = Vec::with_capacity(n);
    for i in 0..n {
        let url = &endpoints[i % endpoints.len()];
        let channel = Channel::from_shared(url.clone())
            .map_err(|e| LoadError::Config(format!("bad gRPC endpoint {url}: {e}")))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| LoadError::Config(format!("cannot connect to {url}: {e}")))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// One gRPC worker's share of the run.
pub(super) struct RlsWorker {
    pub(super) shared: Arc<Shared>,
    pub(super) call: Arc<RlsTarget>,
    pub(super) keys: Arc<KeyPlan>,
    pub(super) timeout: Duration,
    /// The recorder's start (sample times are relative to it).
    pub(super) started: Instant,
}

impl RlsWorker {
    /// Takes due requests until the run ends: `OK` is allowed,
    /// `OVER_LIMIT` denied, anything else (a gRPC error, a timeout,
    /// `UNKNOWN`) an error.
    pub(super) async fn run(self, channel: Channel) -> Tally {
        let mut client = RateLimitServiceClient::new(channel);
        let mut tally = Tally::default();
        let shared = &*self.shared;
        loop {
            let Some((i, due)) = shared.next_due(&mut tally).await else {
                break;
            };
            let sent = Instant::now();
            let (client_index, key) = self.keys.key(i);
            let request = RateLimitRequest {
                domain: self.call.domain.clone(),
                descriptors: vec![RateLimitDescriptor {
                    entries: vec![Entry {
                        key: self.call.descriptor_key.clone(),
                        value: key.to_str().unwrap_or_default().to_owned(),
                    }],
                    ..Default::default()
                }],
                hits_addend: 0,
            };
            let answer =
                tokio::time::timeout(self.timeout, client.should_rate_limit(request)).await;
            let outcome = match answer {
                Ok(Ok(response)) => match response.into_inner().overall_code() {
                    Code::Ok => Outcome::Allowed,
                    Code::OverLimit => Outcome::Denied,
                    Code::Unknown => Outcome::Error,
                },
                Ok(Err(_)) | Err(_) => Outcome::Error,
            };
            tally.record(
                shared,
                self.started,
                (due, sent),
                outcome,
                (client_index, None),
            );
        }
        tally
    }
}
