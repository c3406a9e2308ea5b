//! Open-model load: requests start at a fixed arrival rate whatever the
//! server does, and each one's latency is measured from its *intended*
//! start time.
//!
//! A closed model (goose users waiting for their previous answer) sends less
//! when the server slows down, so the slow moments are sampled less and the
//! percentiles look better than users would see ("coordinated omission").
//! Here request `i` is due at `start + i / rate`; if the generator, its
//! connections or the server are behind, the wait counts as latency.
//!
//! Built to cost the machine little (the generator shares it with the
//! system under test): a pacer thread releases one permit per due request
//! (slept with `nanosleep`: Tokio's timer ticks in whole milliseconds), and
//! a fixed set of workers, one keep-alive HTTP/1.1 connection each, take
//! permits in order. The URI, host and key header values are prepared
//! once ([`KeyPlan`]); samples are kept per worker and merged at the end.
//!
//! With an [`Slo`], a run stops as soon as it can no longer meet it (more
//! failures or late requests than the SLO allows), which keeps the
//! capacity search's failing probes short.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::keys::KeyPlan;
use crate::record::{micros, Outcome, Recorder, Recording};
use crate::LoadError;

mod rls_worker;
mod worker;

pub use rls_worker::{RlsTarget, WORKERS_PER_CHANNEL};

/// A request sent this much after it was due by a connection that was
/// idle at its due time means the generator itself fell behind (with an
/// SLO: a quarter of its p99 bound, the share of the budget the client
/// alone would have spent).
pub const LATE_SEND: Duration = Duration::from_millis(2);
/// The pacer's shortest sleep (releases are batched below it).
const MIN_TICK: Duration = Duration::from_micros(100);
/// The pacer's longest sleep (so it notices a stop promptly).
const MAX_TICK: Duration = Duration::from_millis(5);

/// A fixed-rate run.
#[derive(Debug, Clone)]
pub struct OpenPlan {
    /// Full URL of every request, e.g. `http://127.0.0.1:8080/open/item`
    /// (unused with [`OpenPlan::rls`]).
    pub url: String,
    /// Call `ShouldRateLimit` on these services instead of sending HTTP
    /// requests to `url`; `connections` is then the number of concurrent
    /// calls (over one HTTP/2 channel per [`WORKERS_PER_CHANNEL`]).
    pub rls: Option<RlsTarget>,
    /// Requests started per second.
    pub rate_per_sec: u32,
    /// How long requests keep being started.
    pub duration: Duration,
    /// Keep-alive connections (so requests in flight at most); later
    /// requests wait for one, and that wait counts.
    pub connections: usize,
    /// The API key of each request.
    pub keys: Arc<KeyPlan>,
    /// Per-request timeout; a request that takes longer is an error.
    pub timeout: Duration,
    /// Stop early once this SLO cannot be met any more.
    pub slo: Option<Slo>,
}

/// A latency and success objective over one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// The 99th percentile latency (from the intended start) must stay below this.
    pub p99: Duration,
    /// At least this share of the planned requests must succeed (2xx).
    pub min_success: f64,
}

impl Slo {
    /// Most failed requests of `planned` the SLO tolerates.
    pub fn max_failed(&self, planned: u64) -> u64 {
        ((1.0 - self.min_success).max(0.0) * planned as f64).floor() as u64
    }

    /// Most requests of `planned` at or over the p99 bound.
    pub fn max_late(&self, planned: u64) -> u64 {
        planned / 100
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct OpenRun {
    /// Every request that was sent.
    pub recording: Recording,
    /// Requests the plan called for.
    pub planned: u64,
    /// Requests never sent because the run stopped early.
    pub unsent: u64,
    /// Whether the run stopped early (it could not meet its SLO).
    pub aborted: bool,
    /// Requests an idle connection sent late (more than [`LATE_SEND`], or
    /// a quarter of the SLO's p99 bound) after they were due: the
    /// generator itself was behind.
    pub late_sends: u64,
    /// From the first due time to the last completion.
    pub window: Duration,
}

impl OpenRun {
    /// Whether the run met `slo`: enough 2xx among the planned requests,
    /// and fewer than 1 % of them (unsent ones included) at or over the
    /// p99 bound.
    pub fn meets(&self, slo: &Slo) -> bool {
        let bound = micros(slo.p99);
        let samples = &self.recording.samples;
        let ok = samples
            .iter()
            .filter(|s| s.outcome == Outcome::Allowed)
            .count() as u64;
        let late = samples.iter().filter(|s| s.latency_us >= bound).count() as u64 + self.unsent;
        !self.aborted
            && self.planned.saturating_sub(ok) <= slo.max_failed(self.planned)
            && late <= slo.max_late(self.planned)
    }

    /// Requests the generator sent late on its own, as a share of those sent.
    pub fn late_send_share(&self) -> f64 {
        self.late_sends as f64 / self.recording.samples.len().max(1) as f64
    }
}

/// The workers' connections, opened before the clock starts.
enum Transport {
    /// One keep-alive HTTP/1.1 connection per worker.
    Http(Arc<worker::Target>, Vec<worker::Sender>),
    /// HTTP/2 channels shared by the gRPC workers.
    Grpc(Arc<RlsTarget>, Vec<tonic::transport::Channel>),
}

/// State shared by the pacer and the workers.
#[derive(Debug)]
struct Shared {
    start: Instant,
    rate: f64,
    total: u64,
    permits: Semaphore,
    /// The next request index a worker takes.
    next: AtomicU64,
    stop: AtomicBool,
    /// Set when the run stopped because it missed its SLO.
    missed: AtomicBool,
    failed: AtomicU64,
    late: AtomicU64,
    slo: Option<Slo>,
    /// How late a send counts as the generator's own lateness.
    late_send: Duration,
}

impl Shared {
    /// When request `i` is due.
    fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Waits for the next request to send: its index and when it was due,
    /// or `None` once the run is over. A send later than `late_send` after
    /// its due time, by a worker that was already waiting, counts in
    /// `tally` as the generator's own lateness.
    async fn next_due(&self, tally: &mut worker::Tally) -> Option<(u64, Instant)> {
        let waiting_since = Instant::now();
        let permit = self.permits.acquire().await.ok()?;
        permit.forget();
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.total || self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let due = self.due(i);
        let sent = Instant::now();
        if waiting_since <= due && sent.saturating_duration_since(due) > self.late_send {
            tally.late_sends += 1;
        }
        Some((i, due))
    }

    /// Requests due at or before `t`.
    fn due_by(&self, t: Instant) -> u64 {
        if t < self.start {
            return 0;
        }
        (((t - self.start).as_secs_f64() * self.rate).floor() as u64 + 1).min(self.total)
    }

    /// Stops the run: no more permits, waiting workers wake and leave.
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.permits.close();
    }

    /// Stops the run because it can no longer meet its SLO.
    fn abort(&self) {
        self.missed.store(true, Ordering::Relaxed);
        self.stop();
    }

    /// Counts a finished request against the SLO; aborts when it is missed.
    fn account(&self, latency: Duration, ok: bool) {
        let Some(slo) = self.slo else { return };
        let late = if latency >= slo.p99 {
            self.late.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.late.load(Ordering::Relaxed)
        };
        let failed = if ok {
            self.failed.load(Ordering::Relaxed)
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed) + 1
        };
        if late > slo.max_late(self.total) || failed > slo.max_failed(self.total) {
            self.abort();
        }
    }
}

/// Runs `plan`, recording every request into `recorder` (sample times are
/// relative to its start).
pub async fn run(plan: &OpenPlan, recorder: Arc<Recorder>) -> Result<OpenRun, LoadError> {
    if plan.rate_per_sec == 0 {
        return Err(LoadError::Config("rate_per_sec must be at least 1".into()));
    }
    let connections = plan.connections.max(1);
    let transport = match &plan.rls {
        None => {
            let target = worker::Target::parse(&plan.url)?;
            let senders = worker::connect_all(&target, connections).await?;
            Transport::Http(Arc::new(target), senders)
        }
        Some(rls) => Transport::Grpc(
            Arc::new(rls.clone()),
            rls_worker::connect_all(&rls.endpoints, connections).await?,
        ),
    };
    let total = (plan.duration.as_secs_f64() * f64::from(plan.rate_per_sec)).round() as u64;
    let shared = Arc::new(Shared {
        start: Instant::now() + Duration::from_millis(2),
        rate: f64::from(plan.rate_per_sec),
        total: total.max(1),
        permits: Semaphore::new(0),
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        missed: AtomicBool::new(false),
        failed: AtomicU64::new(0),
        late: AtomicU64::new(0),
        slo: plan.slo,
        late_send: plan.slo.map_or(LATE_SEND, |s| (s.p99 / 4).max(LATE_SEND)),
    });
    let pacer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("loadgen-pacer".into())
            .spawn(move || pace(&shared, connections))
            .map_err(|e| LoadError::Config(format!("cannot start the pacer thread: {e}")))?
    };
    let mut workers = tokio::task::JoinSet::new();
    match transport {
        Transport::Http(target, senders) => {
            for sender in senders {
                let ctx = worker::Worker {
                    shared: shared.clone(),
                    target: target.clone(),
                    keys: plan.keys.clone(),
                    timeout: plan.timeout,
                    started: recorder.started(),
                };
                workers.spawn(ctx.run(sender));
            }
        }
        Transport::Grpc(call, channels) => {
            for i in 0..connections {
                let ctx = rls_worker::RlsWorker {
                    shared: shared.clone(),
                    call: call.clone(),
                    keys: plan.keys.clone(),
                    timeout: plan.timeout,
                    started: recorder.started(),
                };
                workers.spawn(ctx.run(channels[i % channels.len()].clone()));
            }
        }
    }
    let mut out = OpenRun {
        planned: shared.total,
        ..OpenRun::default()
    };
    let mut last_done = shared.start;
    while let Some(done) = workers.join_next().await {
        let tally = done.map_err(|e| LoadError::Config(format!("a load worker failed: {e}")))?;
        out.late_sends += tally.late_sends;
        if let Some(t) = tally.last_done {
            last_done = last_done.max(t);
        }
        recorder.extend(tally.samples, tally.per_replica, tally.per_backend);
    }
    // The pacer has ended or ends at its next tick: the run is over.
    shared.stop();
    let _ = pacer.join();
    out.aborted = shared.missed.load(Ordering::Relaxed);
    out.recording = recorder.finish();
    out.unsent = shared
        .total
        .saturating_sub(out.recording.samples.len() as u64);
    out.window = last_done.saturating_duration_since(shared.start);
    Ok(out)
}

/// The pacer: releases one permit per request as it falls due, stops the
/// run when queued requests alone miss the SLO, and finally wakes every
/// worker so it sees the end.
fn pace(shared: &Shared, workers: usize) {
    let mut released = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = shared.due_by(now);
        if due > released {
            shared.permits.add_permits((due - released) as usize);
            released = due;
        }
        if released >= shared.total {
            break;
        }
        if let Some(slo) = shared.slo {
            // Requests overdue by the SLO that no worker has started yet.
            let overdue = now
                .checked_sub(slo.p99)
                .map_or(0, |t| shared.due_by(t))
                .saturating_sub(shared.next.load(Ordering::Relaxed));
            if shared.late.load(Ordering::Relaxed) + overdue > slo.max_late(shared.total) {
                shared.abort();
                break;
            }
        }
        let next = shared.due(released);
        let wait = next.saturating_duration_since(Instant::now());
        std::thread::sleep(wait.clamp(MIN_TICK, MAX_TICK));
    }
    // One extra permit per worker: each takes an index past the end and leaves.
    shared.permits.add_permits(workers);
}
