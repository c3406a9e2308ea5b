//! The Redis stores' `acquire`: latency with 1 caller, and time per
//! decision with 64 concurrent callers (its inverse is the throughput),
//! against real servers started by `rateguard-testkit` (a `redis-server`,
//! and a 3-master Redis Cluster for `fred-cluster`).
//!
//! `redis-pipelined-nowait` is `redis-pipelined` with `batch_wait = 0`.
//! `redis-lua_acquire_all` compares one and two limits per `acquire_all`
//! (one script call either way).
//!
//! After the criterion groups it prints, for each store, the Redis commands
//! per decision (from `INFO commandstats` deltas, all nodes summed: the
//! commands clients sent, and the total including the script's own calls)
//! and round trips per decision for `redis-pipelined`, over a fixed workload
//! of 64 callers × 500 decisions on 1000 keys and on 1 hot key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rateguard_benches::keys;
use rateguard_core::{BucketKey, Quota};
use rateguard_store::{
    AcquireRequest, BucketStore, FredClusterStore, RedisLuaStore, RedisOptions, RedisPipelinedStore,
};
use rateguard_testkit::{RedisCluster, RedisServer};
use tokio::runtime::Runtime;

const CALLERS: usize = 64;

/// Big enough that the benches never run out of tokens (allowed and denied
/// decisions cost the same anyway).
fn quota() -> Quota {
    Quota::new(1_000_000, 1_000_000.0).unwrap()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options(urls: Vec<String>) -> RedisOptions {
    RedisOptions {
        urls,
        // Benches measure speed; a rare stall must not turn into an error.
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

/// `callers` tasks share `iters` calls of `decide(store, i)` (`i` spread
/// over the callers); returns the wall time.
async fn concurrent<S, F, Fut>(store: &S, callers: usize, iters: u64, decide: F) -> Duration
where
    S: BucketStore + Clone,
    F: Fn(S, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let per_caller = iters.div_ceil(callers as u64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (store, decide) = (store.clone(), decide.clone());
            tokio::spawn(async move {
                for i in 0..per_caller as usize {
                    decide(store.clone(), c * 7919 + i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

/// `acquire` of `keys[i % len]` with the bench quota, for [`concurrent`].
async fn acquire_key<S: BucketStore>(store: S, keys: Arc<Vec<BucketKey>>, i: usize) {
    let key = &keys[i % keys.len()];
    store.acquire(key, &quota(), 1).await.expect("store error");
}

fn bench_store<S: BucketStore + Clone>(c: &mut Criterion, rt: &Runtime, store: &S, label: &str) {
    let mut group = c.benchmark_group(format!("{label}_acquire"));
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let keys = Arc::new(keys(1000));
    let quota = quota();
    let mut i = 0usize;
    group.bench_function("1_caller", |b| {
        b.to_async(rt).iter(|| {
            i = (i + 1) % keys.len();
            let key = &keys[i];
            async move { store.acquire(key, &quota, 1).await.expect("store error") }
        })
    });
    group.bench_function("64_callers", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let keys = keys.clone();
            concurrent(store, CALLERS, iters, move |s, i| {
                acquire_key(s, keys.clone(), i)
            })
        })
    });
    group.finish();
}

/// `acquire_all` with one limit and with two (a per-client key of 1000 and
/// one shared per-IP key), 1 caller and 64; requests are built beforehand.
fn bench_acquire_all<S: BucketStore + Clone>(
    c: &mut Criterion,
    rt: &Runtime,
    store: &S,
    label: &str,
) {
    let mut group = c.benchmark_group(format!("{label}_acquire_all"));
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let ip = AcquireRequest::new(BucketKey::new("bench-ip", "203.0.113.7"), quota(), 1);
    for n in [1usize, 2] {
        let requests: Arc<Vec<Vec<AcquireRequest>>> = Arc::new(
            keys(1000)
                .into_iter()
                .map(|k| {
                    let client = AcquireRequest::new(k, quota(), 1);
                    [client, ip.clone()].into_iter().take(n).collect()
                })
                .collect(),
        );
        let mut i = 0usize;
        group.bench_function(format!("{n}_limits_1_caller"), |b| {
            b.to_async(rt).iter(|| {
                i = (i + 1) % requests.len();
                let limits = &requests[i];
                async move { store.acquire_all(limits).await.expect("store error") }
            })
        });
        group.bench_function(format!("{n}_limits_64_callers"), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let requests = requests.clone();
                concurrent(store, CALLERS, iters, move |s, i| {
                    let requests = requests.clone();
                    async move {
                        let limits = &requests[i % requests.len()];
                        s.acquire_all(limits).await.expect("store error");
                    }
                })
            })
        });
    }
    group.finish();
}

/// `calls=` of the `INFO commandstats` lines `keep` accepts, summed.
fn calls(info: &str, keep: impl Fn(&str) -> bool) -> u64 {
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, stats) = l.split_once(':')?;
            keep(name).then_some(())?;
            stats
                .split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// (commands clients sent, all commands including those the script ran).
fn commands(infos: &[String]) -> (u64, u64) {
    let client = |name: &str| matches!(name, "evalsha" | "eval" | "script");
    let all = |name: &str| name != "info";
    infos.iter().fold((0, 0), |(c, a), info| {
        (c + calls(info, client), a + calls(info, all))
    })
}

/// Prints commands (and round trips) per decision for a fixed workload.
fn report_commands<S: BucketStore + Clone>(
    rt: &Runtime,
    store: &S,
    label: &str,
    infos: &dyn Fn() -> Vec<String>,
    round_trips: &dyn Fn() -> Option<u64>,
) {
    for (keys_label, distinct) in [("1000 keys", 1000), ("1 hot key", 1)] {
        let keys = Arc::new(keys(distinct));
        let decisions = (CALLERS * 500) as u64;
        let (client_before, all_before) = commands(&infos());
        let trips_before = round_trips();
        let took = rt.block_on(concurrent(store, CALLERS, decisions, move |s, i| {
            acquire_key(s, keys.clone(), i)
        }));
        let (client_after, all_after) = commands(&infos());
        let per = |after: u64, before: u64| (after - before) as f64 / decisions as f64;
        let trips = round_trips()
            .zip(trips_before)
            .map(|(a, b)| format!(", {:.3} round trips", per(a, b)))
            .unwrap_or_default();
        println!(
            "{label}: {CALLERS} callers, {keys_label}: {:.3} commands sent/decision \
             ({:.3} counting the script's own TIME/GET/SET){trips}, {:.0} decisions/s",
            per(client_after, client_before),
            per(all_after, all_before),
            decisions as f64 / took.as_secs_f64()
        );
    }
}

fn redis_stores(c: &mut Criterion) {
    let rt = runtime();
    let redis = RedisServer::start().expect("redis-server");
    let info = || vec![redis.blocking_cli(&["INFO", "commandstats"]).unwrap()];
    let opts = options(vec![redis.url()]);
    let lua = rt.block_on(RedisLuaStore::connect(&opts)).unwrap();
    let pipelined = rt.block_on(RedisPipelinedStore::connect(&opts)).unwrap();
    let no_wait = RedisOptions {
        batch_wait: Duration::ZERO,
        ..opts.clone()
    };
    let pipelined_no_wait = rt.block_on(RedisPipelinedStore::connect(&no_wait)).unwrap();
    bench_store(c, &rt, &lua, "redis-lua");
    bench_acquire_all(c, &rt, &lua, "redis-lua");
    bench_store(c, &rt, &pipelined, "redis-pipelined");
    bench_store(c, &rt, &pipelined_no_wait, "redis-pipelined-nowait");
    report_commands(&rt, &lua, "redis-lua", &info, &|| None);
    report_commands(&rt, &pipelined, "redis-pipelined", &info, &|| {
        Some(pipelined.round_trips())
    });
    report_commands(
        &rt,
        &pipelined_no_wait,
        "redis-pipelined-nowait",
        &info,
        &|| Some(pipelined_no_wait.round_trips()),
    );
    drop((lua, pipelined, pipelined_no_wait));

    let cluster = RedisCluster::start(3).expect("Redis Cluster");
    let fred = rt
        .block_on(FredClusterStore::connect(&options(cluster.urls())))
        .unwrap();
    bench_store(c, &rt, &fred, "fred-cluster");
    let infos = || {
        (0..3)
            .map(|i| cluster.blocking_cli(i, &["INFO", "commandstats"]).unwrap())
            .collect()
    };
    report_commands(&rt, &fred, "fred-cluster", &infos, &|| None);
}

criterion_group!(benches, redis_stores);
criterion_main!(benches);
