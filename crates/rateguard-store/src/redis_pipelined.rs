//! [`RedisPipelinedStore`] (`redis-pipelined`): the same script as
//! `redis-lua`, but the decisions that concurrent requests wait for go to
//! Redis together, one pipeline per round trip.
//!
//! A background task takes the requests queued at that moment (at most
//! `batch_max`; under concurrent load it waits up to `batch_wait` more to
//! fill the batch), merges identical requests (same keys and quotas) into
//! one script call with a count (`plan`), sends one pipeline, and splits
//! the results back in arrival order: the first requests of a merged call
//! get the tokens, as sequential calls would. A multi-limit request is one
//! script call over all its keys, never decided before an earlier request
//! that shares one of them. Each update stays one atomic script call, so
//! the limit is as exact as `redis-lua`'s, with fewer round trips and
//! commands under load. Up to four pipelines are in flight at once;
//! requests that arrive while all four are out form the next batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rateguard_core::{BucketKey, Decision, MultiDecision, Peek, Quota};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::redis_admin;
use crate::redis_conn::{ping, retry_refused, RedisConn};
use crate::script::{self, SCRIPT};
use crate::{
    check_distinct_keys, only_decision, AcquireRequest, BucketStore, RedisOptions, StoreError,
};

mod plan;

type Reply = oneshot::Sender<Result<MultiDecision, StoreError>>;

/// One request (its limits, at least one) waiting for its batch.
struct Pending {
    limits: Vec<AcquireRequest>,
    reply: Reply,
}

/// Redis buckets decided in coalesced pipelines (see the module docs).
///
/// Cheap to clone; clones share the connection, the batching task and the
/// statistics. The task ends when the last clone is dropped.
#[derive(Clone)]
pub struct RedisPipelinedStore {
    queue: mpsc::Sender<Vec<Pending>>,
    shared: Arc<Shared>,
}

struct Shared {
    conn: RedisConn,
    breaker: Arc<Breaker>,
    timeout: Duration,
    requests: AtomicU64,
    commands: AtomicU64,
    round_trips: AtomicU64,
    test_now: script::TestNow,
}

impl std::fmt::Debug for RedisPipelinedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPipelinedStore")
            .field("timeout", &self.shared.timeout)
            .field("requests", &self.requests())
            .field("commands_sent", &self.commands_sent())
            .finish_non_exhaustive()
    }
}

impl RedisPipelinedStore {
    /// A store on `opts.urls[0]`; spawns the batching task on the current
    /// Tokio runtime.
    ///
    /// Connects lazily, like [`RedisLuaStore::connect`](crate::RedisLuaStore::connect):
    /// `Ok` even when Redis is down (calls fail until it is back, and the
    /// client reconnects by itself); a malformed URL and a Redis that
    /// refuses us for good (credentials, ACL, certificate) are errors.
    pub async fn connect(opts: &RedisOptions) -> Result<Self, StoreError> {
        let breaker = Arc::new(Breaker::new(opts));
        let conn = RedisConn::new(opts, &breaker)?;
        conn.warm_up(opts).await?;
        let shared = Arc::new(Shared {
            conn,
            breaker,
            timeout: opts.timeout,
            requests: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            test_now: script::TestNow::default(),
        });
        let batch_max = opts.batch_max.max(1);
        let (queue, rx) = mpsc::channel(batch_max * 4);
        tokio::spawn(batch_loop(shared.clone(), rx, batch_max, opts.batch_wait));
        Ok(Self { queue, shared })
    }

    /// Script calls (plus script reloads) sent to Redis so far.
    pub fn commands_sent(&self) -> u64 {
        self.shared.commands.load(Ordering::Relaxed)
    }

    /// Requests decided (or failed) so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Pipelines sent so far (one network round trip each).
    pub fn round_trips(&self) -> u64 {
        self.shared.round_trips.load(Ordering::Relaxed)
    }

    /// Queues `requests` (each a request's limits) as one job, so they
    /// land in one batch, in order, and waits for their decisions, all
    /// within the store's timeout.
    async fn submit(
        &self,
        requests: Vec<Vec<AcquireRequest>>,
    ) -> Vec<Result<MultiDecision, StoreError>> {
        let timeout = self.shared.timeout;
        let deadline = Instant::now() + timeout;
        let n = requests.len();
        let (job, waiting): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .map(|limits| {
                let (reply, rx) = oneshot::channel();
                (Pending { limits, reply }, rx)
            })
            .unzip();
        match tokio::time::timeout_at(deadline, self.queue.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return vec![Err(stopped()); n],
            Err(_) => return vec![Err(StoreError::Timeout(timeout)); n],
        }
        let mut out = Vec::with_capacity(n);
        for rx in waiting {
            out.push(match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(stopped()),
                Err(_) => Err(StoreError::Timeout(timeout)),
            });
        }
        out
    }

    /// From now on every script call passes `clock`'s time instead of
    /// letting the script read Redis `TIME`: tests pin "now" with it.
    #[cfg(feature = "test-util")]
    pub fn with_test_clock(self, clock: rateguard_core::clock::ManualClock) -> Self {
        self.shared.test_now.pin(clock);
        self
    }
}

impl Shared {
    /// The connection, breaker and budget, for the admin calls.
    fn on(&self) -> redis_admin::On<'_> {
        redis_admin::On {
            conn: &self.conn,
            breaker: &self.breaker,
            timeout: self.timeout,
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("batching task stopped".into())
}

impl BucketStore for RedisPipelinedStore {
    fn kind(&self) -> crate::StoreKind {
        crate::StoreKind::RedisPipelined
    }

    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::SHARED
    }

    async fn acquire(
        &self,
        key: &BucketKey,
        quota: &Quota,
        cost: u32,
    ) -> Result<Decision, StoreError> {
        let request = AcquireRequest::new(key.clone(), *quota, cost);
        let mut out = self.submit(vec![vec![request]]).await;
        only_decision(out.pop().expect("one result per request")?)
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        check_distinct_keys(limits)?;
        if limits.is_empty() {
            return Ok(MultiDecision::new(Vec::new(), &[]));
        }
        let mut out = self.submit(vec![limits.to_vec()]).await;
        out.pop().expect("one result per request")
    }

    async fn acquire_many(&self, requests: &[AcquireRequest]) -> Vec<Result<Decision, StoreError>> {
        let jobs = requests.iter().map(|r| vec![r.clone()]).collect();
        let results = self.submit(jobs).await;
        results
            .into_iter()
            .map(|r| r.and_then(only_decision))
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.shared.conn, &self.shared.breaker, self.shared.timeout).await
    }

    /// `peek.lua`, outside the pipelines (an operator's call, not a
    /// decision).
    async fn peek(&self, key: &BucketKey, quota: &Quota) -> Result<Peek, StoreError> {
        let now = self.shared.test_now.get();
        redis_admin::peek(self.shared.on(), key, quota, now).await
    }

    async fn reset(&self, key: &BucketKey) -> Result<(), StoreError> {
        redis_admin::reset(self.shared.on(), key).await
    }

    async fn resets(&self) -> Result<u64, StoreError> {
        redis_admin::resets(self.shared.on()).await
    }
}

/// Pipelines in flight at once. While all are out, requests keep queueing
/// and join the next batch, so batches grow with load by themselves.
const IN_FLIGHT: usize = 4;

/// Collects batches and hands each to its own task (at most [`IN_FLIGHT`]
/// at once), until every sender is gone.
///
/// A batch takes whole jobs (one per `acquire`/`acquire_many` call) while it
/// holds fewer than `batch_max` requests, so one `acquire_many` is never
/// split and its requests for one key are decided in order. Requests of
/// different callers have no order to keep: they raced anyway.
async fn batch_loop(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Vec<Pending>>,
    batch_max: usize,
    batch_wait: Duration,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut concurrent = false;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(batch_max);
        batch.extend(first);
        fill(&mut rx, &mut batch, batch_max);
        if concurrent && !batch_wait.is_zero() {
            // Tokio's timers tick in whole milliseconds, too coarse for a
            // 200 µs budget. Instead, yield so that ready callers can queue,
            // and keep going only while that brings new requests: spinning
            // on an empty queue would take the CPU the callers need.
            let deadline = Instant::now() + batch_wait;
            while batch.len() < batch_max && Instant::now() < deadline {
                tokio::task::yield_now().await;
                if fill(&mut rx, &mut batch, batch_max) == 0 {
                    break;
                }
            }
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        fill(&mut rx, &mut batch, batch_max);
        concurrent = batch.len() > 1;
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.decide(batch).await;
            drop(slot);
        });
    }
}

/// Moves queued jobs into `batch` while it holds fewer than `batch_max`
/// requests; returns how many requests were added.
fn fill(
    rx: &mut mpsc::Receiver<Vec<Pending>>,
    batch: &mut Vec<Pending>,
    batch_max: usize,
) -> usize {
    let before = batch.len();
    while batch.len() < batch_max {
        match rx.try_recv() {
            Ok(job) => batch.extend(job),
            Err(_) => break,
        }
    }
    batch.len() - before
}

impl Shared {
    /// Decides and answers every request of `batch`.
    async fn decide(&self, mut batch: Vec<Pending>) {
        // A caller that timed out no longer waits: do not spend its tokens.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.limits, p.reply)).unzip();
        self.requests
            .fetch_add(requests.len() as u64, Ordering::Relaxed);
        let runs = plan::plan(&requests);
        let mut results: Vec<Option<Result<MultiDecision, StoreError>>> =
            vec![None; requests.len()];
        let sent = self
            .breaker
            .call(self.timeout, self.send(&requests, &runs))
            .await;
        self.conn.observe(&sent);
        match sent {
            Err(e) => results.fill(Some(Err(e))),
            Ok(replies) => {
                for (run, reply) in runs.iter().zip(replies) {
                    let spec: Vec<_> = requests[run.first()]
                        .iter()
                        .map(AcquireRequest::limit)
                        .collect();
                    let count = run.members.len() as u32;
                    let batch =
                        reply.and_then(|r| script::multi_batch_from_reply(&r, &spec, count));
                    for (j, &member) in run.members.iter().enumerate() {
                        results[member] = Some(
                            batch
                                .as_ref()
                                .map(|b| b.decision(j as u32))
                                .map_err(Clone::clone),
                        );
                    }
                }
            }
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let result = result.unwrap_or_else(|| Err(StoreError::Backend("no reply".into())));
            // The caller may have given up meanwhile; nothing to do then.
            let _ = reply.send(result);
        }
    }

    /// Sends one pipeline of script calls (one per run); on `NOSCRIPT`
    /// (after `SCRIPT FLUSH` or a restart) loads the script and resends only
    /// the calls that were refused, which therefore changed nothing.
    async fn send(
        &self,
        requests: &[Vec<AcquireRequest>],
        runs: &[plan::Run],
    ) -> Result<Vec<Result<Vec<i64>, StoreError>>, StoreError> {
        let all: Vec<usize> = (0..runs.len()).collect();
        let mut replies = retry_refused(&self.conn, self.timeout, |mut conn| {
            let all = &all;
            async move { self.pipeline(&mut conn, requests, runs, all).await }
        })
        .await?;
        let mut conn = self.conn.get()?;
        let refused: Vec<usize> = all
            .into_iter()
            .filter(|&i| matches!(&replies[i], Err(e) if is_noscript(e)))
            .collect();
        if !refused.is_empty() {
            self.commands.fetch_add(1, Ordering::Relaxed);
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            SCRIPT
                .load_async(&mut conn)
                .await
                .map_err(|e| script::from_redis(&e, self.timeout))?;
            let retried = self
                .pipeline(&mut conn, requests, runs, &refused)
                .await
                .map_err(|e| script::from_redis(&e, self.timeout))?;
            for (i, reply) in refused.into_iter().zip(retried) {
                replies[i] = reply;
            }
        }
        let replies: Vec<_> = replies
            .into_iter()
            .map(|r| r.map_err(|e| script::from_redis(&e, self.timeout)))
            .collect();
        // `READONLY` replies: the node was demoted; Sentinel looks again.
        if let Some(demoted) = replies
            .iter()
            .find(|r| matches!(r, Err(StoreError::Unavailable(_))))
        {
            self.conn.observe(demoted);
        }
        Ok(replies)
    }

    async fn pipeline(
        &self,
        conn: &mut ConnectionManager,
        requests: &[Vec<AcquireRequest>],
        runs: &[plan::Run],
        which: &[usize],
    ) -> redis::RedisResult<Vec<redis::RedisResult<Vec<i64>>>> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for &i in which {
            let run = &runs[i];
            let head = &requests[run.first()];
            let count = run.members.len() as u32;
            let cmd = pipe.cmd("EVALSHA").arg(SCRIPT.get_hash()).arg(head.len());
            for limit in head {
                cmd.arg(limit.key.as_str());
            }
            let spec: Vec<_> = head.iter().map(AcquireRequest::limit).collect();
            cmd.arg(script::multi_args(&spec, count, self.test_now.get()));
        }
        let result = pipe.query_async(conn).await;
        // A refused connection sent nothing.
        if !result
            .as_ref()
            .is_err_and(redis::RedisError::is_connection_refusal)
        {
            self.commands
                .fetch_add(which.len() as u64, Ordering::Relaxed);
            self.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

fn is_noscript(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}
