//! How long each Redis store takes to decide through Redis again once
//! Redis is back, and what it does meanwhile: steady calls (one every
//! [`PACE`]) while Redis is killed for [`OUTAGE`], restarted, and answers
//! again. A measurement, not an assertion (`#[ignore]`); run it with
//!
//! ```text
//! cargo test -p rateguard-store --test redis_stores recovery -- --ignored --nocapture
//! ```
//!
//! Each run prints its timeline (runs of one outcome, times from the
//! moment Redis answered `PING` again, or the cluster said `ok`) and the
//! time to the first decision through Redis; each variant its median.
//! "client only" disables the breaker (threshold `u32::MAX`), so it shows
//! what the client's own reconnecting contributes.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rateguard_store::conformance::unique_key;
use rateguard_store::{
    BucketKey, BucketStore, FredClusterStore, Quota, RedisLuaStore, RedisOptions,
    RedisPipelinedStore, StoreError,
};
use rateguard_testkit::RedisCluster;
use tokio::sync::watch;

use crate::{server, strict};

/// Time between two calls of the steady caller.
const PACE: Duration = Duration::from_millis(5);
/// How long Redis stays down (the lab's outage phase).
const OUTAGE: Duration = Duration::from_secs(3);
/// Runs per variant.
const RUNS: usize = 3;
/// A call that takes longer than this is reported as hung.
const HUNG: Duration = Duration::from_secs(2);
/// Longest wait for a decision after the restart before a run gives up.
const GIVE_UP: Duration = Duration::from_secs(10);

fn quota() -> Quota {
    Quota::new(1_000_000, 1000.0).unwrap()
}

/// What one call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Decided,
    Timeout,
    Unavailable,
    CircuitOpen,
    Backend,
    /// No answer within [`HUNG`] (a store bug: every call has a time budget).
    Hung,
}

impl Outcome {
    fn of<T>(result: &Result<T, StoreError>) -> Self {
        match result {
            Ok(_) => Self::Decided,
            Err(StoreError::Timeout(_)) => Self::Timeout,
            Err(StoreError::Unavailable(_)) => Self::Unavailable,
            Err(StoreError::CircuitOpen(_)) => Self::CircuitOpen,
            Err(StoreError::Backend(_)) => Self::Backend,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    sent: Instant,
    took: Duration,
    outcome: Outcome,
}

/// Calls `store` every [`PACE`] until `stop`, recording every outcome and
/// publishing when the last decision came back.
async fn steady<S: BucketStore + Clone>(
    store: S,
    key: BucketKey,
    samples: Arc<Mutex<Vec<Sample>>>,
    decided: watch::Sender<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(PACE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let sent = Instant::now();
        let result = tokio::time::timeout(HUNG, store.acquire(&key, &quota(), 1)).await;
        let outcome = result.as_ref().map_or(Outcome::Hung, Outcome::of);
        samples.lock().unwrap().push(Sample {
            sent,
            took: sent.elapsed(),
            outcome,
        });
        if outcome == Outcome::Decided {
            decided.send_replace(Some(Instant::now()));
        }
    }
}

/// One outage under steady calls: `down` kills Redis, `up` restarts it and
/// returns once it answers. Returns the time from `up`'s return until a
/// decision came back, and the timeline.
async fn one_outage<S: BucketStore + Clone>(
    store: &S,
    key: &BucketKey,
    down: &mut (dyn FnMut() + Send),
    up: &mut (dyn FnMut() + Send),
) -> (Option<Duration>, String) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (decided_tx, mut decided) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let caller = tokio::spawn(steady(
        store.clone(),
        key.clone(),
        samples.clone(),
        decided_tx,
        stop,
    ));
    decided.wait_for(Option::is_some).await.unwrap();
    let killed = Instant::now();
    tokio::task::block_in_place(&mut *down);
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(&mut *up);
    let back = Instant::now();
    let _ =
        tokio::time::timeout(GIVE_UP, decided.wait_for(|at| at.is_some_and(|t| t > back))).await;
    stop_tx.send_replace(true);
    caller.await.unwrap();
    let samples = samples.lock().unwrap().clone();
    // A call sent just before `back` may be the first one decided.
    let recovered = samples
        .iter()
        .find(|s| s.sent + s.took >= back && s.outcome == Outcome::Decided)
        .map(|s| (s.sent + s.took) - back);
    (recovered, timeline(&samples, killed, back))
}

/// Runs of one outcome from the kill on, in ms relative to `back`.
fn timeline(samples: &[Sample], killed: Instant, back: Instant) -> String {
    let ms = |t: Instant| {
        if t >= back {
            (t - back).as_millis() as i64
        } else {
            -((back - t).as_millis() as i64)
        }
    };
    let mut out = String::new();
    let mut runs: Vec<(Outcome, Instant, Instant, usize, Duration)> = Vec::new();
    for s in samples.iter().filter(|s| s.sent + s.took >= killed) {
        match runs.last_mut() {
            Some(run) if run.0 == s.outcome => {
                run.2 = s.sent;
                run.3 += 1;
                run.4 = run.4.max(s.took);
            }
            _ => runs.push((s.outcome, s.sent, s.sent, 1, s.took)),
        }
    }
    for (outcome, first, last, n, slowest) in runs.iter().take(40) {
        let _ = write!(
            out,
            "\n      {:>6} .. {:>6} ms  {outcome:?} ×{n} (slowest {} ms)",
            ms(*first),
            ms(*last),
            slowest.as_millis()
        );
    }
    out
}

/// Runs [`RUNS`] outages and prints each timeline and the median.
async fn measure<S: BucketStore + Clone>(
    label: &str,
    store: &S,
    key: &BucketKey,
    down: &mut (dyn FnMut() + Send),
    up: &mut (dyn FnMut() + Send),
) {
    let mut figures = Vec::new();
    for run in 0..RUNS {
        let (recovered, timeline) = one_outage(store, key, down, up).await;
        println!("  {label}, run {run}: first decision after {recovered:?}{timeline}");
        figures.push(recovered.unwrap_or(GIVE_UP));
    }
    figures.sort();
    println!(
        "{label}: median {} ms over {RUNS} runs ({:?})",
        figures[RUNS / 2].as_millis(),
        figures.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );
}

/// The production options, and the same without a breaker.
fn variants(urls: Vec<String>) -> [(&'static str, RedisOptions); 2] {
    let production = strict(urls);
    let client_only = RedisOptions {
        breaker_threshold: u32::MAX,
        ..production.clone()
    };
    [("with breaker", production), ("client only", client_only)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (seconds per run): prints recovery timelines"]
async fn recovery_after_a_redis_restart() {
    let redis = Arc::new(Mutex::new(server()));
    let url = redis.lock().unwrap().url();
    let mut down = || redis.lock().unwrap().kill().unwrap();
    let mut up = || redis.lock().unwrap().restart().unwrap();
    for (variant, opts) in variants(vec![url]) {
        let key = unique_key("recovery");
        let lua = RedisLuaStore::connect(&opts).await.unwrap();
        measure(
            &format!("redis-lua {variant}"),
            &lua,
            &key,
            &mut down,
            &mut up,
        )
        .await;
        let pipelined = RedisPipelinedStore::connect(&opts).await.unwrap();
        let label = format!("redis-pipelined {variant}");
        measure(&label, &pipelined, &key, &mut down, &mut up).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (seconds per run): prints recovery timelines"]
async fn recovery_after_a_cluster_node_restart() {
    let cluster = Arc::new(Mutex::new(
        RedisCluster::start(3).expect("start a 3-master Redis Cluster"),
    ));
    let urls = cluster.lock().unwrap().urls();
    // As the lab does: the first node (a master without a replica) goes.
    let mut down = || cluster.lock().unwrap().kill_node(0).unwrap();
    let mut up = || cluster.lock().unwrap().restart_node(0).unwrap();
    for (variant, opts) in variants(urls) {
        let store = FredClusterStore::connect(&opts).await.unwrap();
        let key = key_on_node_0(&store, &cluster).await;
        measure(
            &format!("fred-cluster {variant}"),
            &store,
            &key,
            &mut down,
            &mut up,
        )
        .await;
    }
}

/// A key whose slot node 0 serves (asked of node 0 itself: a key it does
/// not own is a `MOVED` error).
async fn key_on_node_0(store: &FredClusterStore, cluster: &Mutex<RedisCluster>) -> BucketKey {
    loop {
        let key = unique_key("recovery");
        store.acquire(&key, &quota(), 1).await.unwrap();
        let owned = cluster
            .lock()
            .unwrap()
            .blocking_cli(0, &["EXISTS", key.as_str()]);
        if owned.is_ok_and(|n| n == "1") {
            return key;
        }
    }
}
