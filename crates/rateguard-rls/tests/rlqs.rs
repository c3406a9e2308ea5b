//! RLQS on real processes: two `rls` services (in this process, each with
//! its own gRPC listener and its own Redis connection) on one real
//! `redis-server`, and three streams from simulated Envoys (tonic clients
//! that enforce their assignments as Envoy's `rate_limit_quota` filter
//! does: a changed token bucket starts full, the same one is extended, an
//! expired or missing assignment denies, time-to-live and fill interval are
//! taken in whole seconds).
//!
//! Checked: the assigned rates never add up to more than `R`; no window of
//! admissions exceeds the bucket's envelope `B + R·w` (+ one token per
//! holder for rounding); the Envoys admit close to the quota at 3× offered
//! load; when one Envoy stops sending, the others' shares grow.
//!
//! Figures: `cargo test -p rateguard-rls --test rlqs -- --nocapture`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::r#type::v3::rate_limit_strategy::{BlanketRule, Strategy};
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_response::bucket_action::BucketAction as Action;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_service_client::RateLimitQuotaServiceClient;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_usage_reports::BucketQuotaUsage;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::{
    BucketId, RateLimitQuotaResponse, RateLimitQuotaUsageReports,
};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use rateguard_contract::OnError;
use rateguard_rls::quota::action::from_proto;
use rateguard_rls::{
    serve_grpc, Limits, QuotaService, RateLimiter, ResponseHeaders, RlsOptions, ShareStore,
};
use rateguard_runtime::DecideOptions;
use rateguard_store::{LeaseScripts, MemoryStore, RedisOptions};
use rateguard_testkit::RedisServer;
use tokio::sync::{mpsc, oneshot};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

/// The bucket's rate and burst: 1000 per second.
const R: f64 = 1000.0;
const B: f64 = 1000.0;
const LIMITS: &str = "domain: edge
descriptors:
  - key: name
    value: api
    rate_limit: { unit: second, requests_per_unit: 1000 }
";
/// One slot of the admission record.
const SLOT: Duration = Duration::from_millis(10);
/// Envoy's `reporting_interval`.
const REPORT_EVERY: Duration = Duration::from_secs(1);

fn bucket_id() -> BucketId {
    BucketId {
        bucket: [("name".to_owned(), "api".to_owned())].into(),
    }
}

/// One `rls` replica: its listener's address and its stop switch.
struct Replica {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    limiter: Arc<RateLimiter<MemoryStore>>,
}

async fn replica(name: &str, shares: ShareStore) -> Replica {
    let limits = Limits::load_sources(&[("edge.yaml", LIMITS)]).unwrap();
    let options = RlsOptions {
        store: DecideOptions {
            budget: Duration::from_millis(200),
            on_error: OnError::Deny,
            replicas_hint: 2,
            deny_cache: None,
        },
        response_headers: ResponseHeaders::None,
        replica_id: name.into(),
    };
    let limiter = Arc::new(RateLimiter::new(limits, MemoryStore::new(), options));
    let quota = QuotaService::new(limiter.clone(), shares);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_grpc(limiter.clone(), Some(quota), listener, async {
        let _ = stopped.await;
    }));
    Replica {
        addr,
        stop,
        limiter,
    }
}

async fn redis_shares(redis: &RedisServer) -> ShareStore {
    let opts = RedisOptions {
        urls: vec![redis.url()],
        timeout: rateguard_rls::quota::stream::SHARE_BUDGET,
        ..RedisOptions::default()
    };
    ShareStore::Redis(LeaseScripts::connect(&opts).await.unwrap())
}

/// A simulated Envoy's active assignment.
#[derive(Debug, Clone)]
struct Active {
    strategy: Strategy,
    until: Instant,
    tokens: f64,
    at: Instant,
}

impl Active {
    /// Tokens per second of a token bucket (`None` for a blanket rule).
    fn rate(&self) -> Option<f64> {
        match &self.strategy {
            Strategy::TokenBucket(b) => {
                // As Envoy: the interval in whole seconds.
                let per = b.tokens_per_fill.as_ref().map_or(1, |v| v.value);
                Some(f64::from(per) / from_proto(b.fill_interval.as_ref()).as_secs() as f64)
            }
            _ => None,
        }
    }

    fn admit(&mut self, now: Instant) -> bool {
        match &self.strategy {
            Strategy::BlanketRule(rule) => *rule == BlanketRule::AllowAll as i32,
            Strategy::TokenBucket(b) => {
                let rate = self.rate().unwrap();
                let dt = now.duration_since(self.at).as_secs_f64();
                self.tokens = (self.tokens + dt * rate).min(f64::from(b.max_tokens));
                self.at = now;
                if self.tokens >= 1.0 {
                    self.tokens -= 1.0;
                    true
                } else {
                    false
                }
            }
            Strategy::RequestsPerTimeUnit(_) => panic!("not sent by rateguard"),
        }
    }
}

/// What one simulated Envoy saw: admissions per slot, its assigned rate
/// per slot (0 without a token bucket), messages received.
struct Record {
    admitted: Vec<u32>,
    rate: Vec<f64>,
    offered: u64,
    messages: u64,
}

/// Runs one Envoy against `server` for `slots` slots from `start`,
/// offering `rate(t)` requests per second.
async fn envoy(
    server: SocketAddr,
    start: Instant,
    slots: usize,
    rate: impl Fn(Duration) -> f64,
) -> Record {
    let mut client = RateLimitQuotaServiceClient::connect(format!("http://{server}"))
        .await
        .unwrap();
    let (reports, rx) = mpsc::channel::<RateLimitQuotaUsageReports>(16);
    let mut inbound = client
        .stream_rate_limit_quotas(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut record = Record {
        admitted: vec![0; slots],
        rate: vec![0.0; slots],
        offered: 0,
        messages: 0,
    };
    let mut active: Option<Active> = None;
    let mut subscribed = false;
    let (mut allowed, mut denied) = (0u64, 0u64);
    let mut last_report = Instant::now();
    let mut report_due = false;
    let mut tick = tokio::time::interval(SLOT);
    let mut offered_f = 0.0;
    loop {
        tokio::select! {
            message = inbound.message() => {
                let Some(RateLimitQuotaResponse { bucket_action }) = message.unwrap() else { break };
                record.messages += 1;
                let now = Instant::now();
                for action in bucket_action {
                    assert_eq!(action.bucket_id, Some(bucket_id()));
                    match action.bucket_action.unwrap() {
                        Action::QuotaAssignmentAction(a) => {
                            let strategy = a.rate_limit_strategy.unwrap().strategy.unwrap();
                            // As Envoy: whole seconds.
                            let ttl = Duration::from_secs(
                                from_proto(a.assignment_time_to_live.as_ref()).as_secs(),
                            );
                            match &mut active {
                                Some(cur) if cur.until > now && cur.strategy == strategy => {
                                    cur.until = now + ttl;
                                }
                                _ => {
                                    if std::env::var_os("RLQS_TRACE").is_some() {
                                        eprintln!("{:>6} ms {server} {strategy:?} ttl {ttl:?}", now.duration_since(start).as_millis());
                                    }
                                    let tokens = match &strategy {
                                        Strategy::TokenBucket(b) => f64::from(b.max_tokens),
                                        _ => 0.0,
                                    };
                                    active = Some(Active { strategy, until: now + ttl, tokens, at: now });
                                    report_due = true;
                                }
                            }
                        }
                        Action::AbandonAction(_) => active = None,
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let t = now.duration_since(start);
                let slot = (t.as_micros() / SLOT.as_micros()) as usize;
                if slot >= slots {
                    break;
                }
                offered_f += rate(t) * SLOT.as_secs_f64();
                while offered_f >= 1.0 {
                    offered_f -= 1.0;
                    record.offered += 1;
                    let ok = active.as_mut().is_some_and(|a| a.until > now && a.admit(now));
                    if ok {
                        allowed += 1;
                        record.admitted[slot] += 1;
                    } else {
                        denied += 1;
                    }
                    if !subscribed {
                        subscribed = true;
                        report_due = true;
                    }
                }
                if let Some(a) = active.as_ref().filter(|a| a.until > now) {
                    record.rate[slot] = a.rate().unwrap_or(0.0);
                }
                if subscribed && (report_due || now.duration_since(last_report) >= REPORT_EVERY) {
                    let elapsed = now.duration_since(last_report);
                    let usage = BucketQuotaUsage {
                        bucket_id: Some(bucket_id()),
                        time_elapsed: Some(ProtoDuration {
                            seconds: elapsed.as_secs() as i64,
                            nanos: elapsed.subsec_nanos() as i32,
                        }),
                        num_requests_allowed: allowed,
                        num_requests_denied: denied,
                    };
                    reports
                        .send(RateLimitQuotaUsageReports {
                            domain: "edge".into(),
                            bucket_quota_usages: vec![usage],
                        })
                        .await
                        .unwrap();
                    (allowed, denied, last_report, report_due) = (0, 0, now, false);
                }
            }
        }
    }
    record
}

/// The largest `admitted − R·w` over every window of whole slots.
fn worst_excess(admitted: &[u32]) -> f64 {
    let mut prefix = vec![0u64; admitted.len() + 1];
    for (i, a) in admitted.iter().enumerate() {
        prefix[i + 1] = prefix[i] + u64::from(*a);
    }
    let mut worst = f64::MIN;
    for i in 0..admitted.len() {
        for j in i + 1..=admitted.len() {
            let w = (j - i) as f64 * SLOT.as_secs_f64();
            // A slot's admissions may come from anywhere in it: the window
            // spans at most one slot less.
            let w = (w - SLOT.as_secs_f64()).max(0.0);
            worst = worst.max((prefix[j] - prefix[i]) as f64 - R * w);
        }
    }
    worst
}

fn sum(v: &[u32], from: Duration, to: Duration) -> u64 {
    let (a, b) = (
        (from.as_micros() / SLOT.as_micros()) as usize,
        (to.as_micros() / SLOT.as_micros()) as usize,
    );
    v[a..b].iter().map(|&x| u64::from(x)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_envoys_two_replicas_one_redis_share_one_quota() {
    let redis = RedisServer::start().unwrap();
    let a = replica("rls-a", redis_shares(&redis).await).await;
    let b = replica("rls-b", redis_shares(&redis).await).await;
    let phase = Duration::from_secs(12);
    let total = phase * 2;
    let slots = (total.as_micros() / SLOT.as_micros()) as usize;
    let start = Instant::now();
    let steady = move |_t: Duration| R;
    let stops = move |t: Duration| if t < phase { R } else { 0.0 };
    let envoys = [
        tokio::spawn(envoy(a.addr, start, slots, steady)),
        tokio::spawn(envoy(a.addr, start, slots, steady)),
        tokio::spawn(envoy(b.addr, start, slots, stops)),
    ];
    let mut records = Vec::new();
    for e in envoys {
        records.push(e.await.unwrap());
    }
    // Replica A's metrics: the streams it served, what it sent, what the
    // Envoys reported.
    let metrics = a.limiter.metrics().encode();
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    assert!(sample("rateguard_rlqs_assignments_total{assignment=\"token_bucket\"}") > 0.0);
    assert!(sample("rateguard_rlqs_usage_total{domain=\"edge\",outcome=\"allowed\"}") > 0.0);
    assert!(sample("rateguard_rlqs_usage_total{domain=\"edge\",outcome=\"denied\"}") > 0.0);
    assert!(sample("rateguard_rlqs_streams") <= 2.0);
    let _ = a.stop.send(());
    let _ = b.stop.send(());

    let admitted: Vec<u32> = (0..slots)
        .map(|s| records.iter().map(|r| r.admitted[s]).sum())
        .collect();
    // Σ assigned rates ≤ R in every slot.
    let worst_rate = (0..slots)
        .map(|s| records.iter().map(|r| r.rate[s]).sum::<f64>())
        .fold(0.0, f64::max);
    assert!(
        worst_rate <= R + 1e-6,
        "assigned rates summed to {worst_rate}"
    );
    // No window over the envelope (one token per holder for rounding).
    let excess = worst_excess(&admitted);
    assert!(excess <= B + 3.0, "a window admitted B + {}", excess - B);
    // Phase 1: three Envoys at R each (3R offered) admit close to R·T + B.
    let first = sum(&admitted, Duration::ZERO, phase) as f64;
    let envelope = B + R * phase.as_secs_f64();
    // Phase 2: the third stops; the other two take its share.
    let late = Duration::from_secs(7);
    let two: u64 = records[..2]
        .iter()
        .map(|r| sum(&r.admitted, phase + late, total))
        .sum();
    let two_rate = two as f64 / (total - phase - late).as_secs_f64();
    let per_second: Vec<u64> = (0..total.as_secs())
        .map(|s| {
            sum(
                &admitted,
                Duration::from_secs(s),
                Duration::from_secs(s + 1),
            )
        })
        .collect();
    println!("admitted per second: {per_second:?}");
    for (i, r) in records.iter().enumerate() {
        let steady = sum(&r.admitted, Duration::from_secs(5), Duration::from_secs(11));
        let rates: f64 = r.rate[500..1100].iter().sum::<f64>() / 600.0;
        println!(
            "envoy {i}: steady admitted {:.1}/s at a mean assigned rate {rates:.1}/s, offered {}",
            steady as f64 / 6.0,
            r.offered
        );
    }
    let messages: u64 = records.iter().map(|r| r.messages).sum();
    let admitted_all: u64 = admitted.iter().map(|&x| u64::from(x)).sum();
    println!(
        "phase 1 (3 Envoys × R for {phase:?}): admitted {first} of envelope {envelope} \
         ({:.1} %); worst window B + {:.1}; max Σ assigned rate {worst_rate:.2}/s of {R}/s",
        100.0 * first / envelope,
        excess - B,
    );
    println!(
        "phase 2 (third Envoy idle): the two others admit {two_rate:.1}/s from {late:?} on; \
         {messages} assignment messages for {admitted_all} admitted requests ({:.4} per request)",
        messages as f64 / admitted_all as f64
    );
    assert!(
        first >= 0.85 * envelope,
        "phase 1 admitted {first} of {envelope}"
    );
    assert!(
        two_rate >= 0.85 * R,
        "after the third stopped: {two_rate}/s"
    );
}
