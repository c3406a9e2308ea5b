//! Open-model load: requests start at a fixed arrival rate whatever the
//! server does, and each one's latency is measured from its *intended*
//! start time.
//!
//! A closed model (goose users waiting for their previous answer) sends less
//! when the server slows down, so the slow moments are sampled less and the
//! percentiles look better than users would see ("coordinated omission").
//! Here request `i` is due at `start + i / rate`; if the driver, the
//! connection pool or the server is behind, the wait counts as latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::record::{replica_and_backend, Outcome, Recorder, API_KEY_HEADER};
use crate::LoadError;

/// A fixed-rate run.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    /// Full URL of every request, e.g. `http://127.0.0.1:8080/open/item`.
    pub url: String,
    /// Requests started per second.
    pub rate_per_sec: u32,
    /// How long requests keep being started.
    pub duration: Duration,
    /// Requests in flight at most; later ones wait (and that wait counts).
    pub max_in_flight: usize,
    /// API keys, used in turn (request `i` sends key `i % len`); several
    /// keys spread decisions over several buckets as real clients would.
    pub api_keys: Vec<String>,
    /// Per-request timeout; a request that takes longer is an error.
    pub timeout: Duration,
}

/// Runs `plan`, recording every request into `recorder`.
pub async fn run(plan: &OpenPlan, recorder: Arc<Recorder>) -> Result<(), LoadError> {
    let uri: http::Uri = plan
        .url
        .parse()
        .map_err(|e| LoadError::Config(format!("bad URL {}: {e}", plan.url)))?;
    if plan.rate_per_sec == 0 || plan.api_keys.is_empty() {
        return Err(LoadError::Config(
            "rate_per_sec and the API key list must not be empty".into(),
        ));
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(plan.max_in_flight)
        .build_http();
    let slots = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let interval = Duration::from_secs(1).as_secs_f64() / f64::from(plan.rate_per_sec);
    let total = (plan.duration.as_secs_f64() * f64::from(plan.rate_per_sec)).round() as u64;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 * interval);
        tokio::time::sleep_until(due.into()).await;
        let (client, slots, recorder) = (client.clone(), slots.clone(), recorder.clone());
        let key = plan.api_keys[(i % plan.api_keys.len() as u64) as usize].clone();
        let (uri, timeout) = (uri.clone(), plan.timeout);
        tasks.spawn(async move {
            let Ok(_permit) = slots.acquire_owned().await else {
                return;
            };
            let request = http::Request::get(uri)
                .header(API_KEY_HEADER, key)
                .body(Empty::<Bytes>::new());
            let Ok(request) = request else {
                recorder.record(due, Outcome::Error, 0, None, None);
                return;
            };
            let exchange = async {
                let resp = client.request(request).await.ok()?;
                let (replica, backend) = replica_and_backend(resp.headers());
                let status = resp.status().as_u16();
                let body_ok = resp.into_body().collect().await.is_ok();
                Some((status, body_ok, replica, backend))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(Some((status, true, replica, backend))) => recorder.record(
                    due,
                    Outcome::from_status(status),
                    0,
                    replica.as_deref(),
                    backend.as_deref(),
                ),
                _ => recorder.record(due, Outcome::Error, 0, None, None),
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
