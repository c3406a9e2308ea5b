//! The three Redis stores against real `redis-server` processes and a real
//! 3-master Redis Cluster, started by `rateguard-testkit` on free loopback
//! ports (needs `redis-server` and `redis-cli` on PATH).
//!
//! One test binary (links are slow on 2 cores), one module per concern.

mod cluster;
mod conformance;
mod deny_cache;
mod equivalence;
mod failures;
mod leases;
mod recovery;

use std::time::Duration;

use rateguard_store::RedisOptions;
use rateguard_testkit::RedisServer;

/// Options for behaviour tests: a generous timeout, because a debug build
/// on a busy 2-core machine can stall for more than the 50 ms default, and
/// these tests are about decisions, not latency.
pub(crate) fn relaxed(urls: Vec<String>) -> RedisOptions {
    RedisOptions {
        urls,
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

/// Options with the production budget, for the failure tests.
pub(crate) fn strict(urls: Vec<String>) -> RedisOptions {
    RedisOptions {
        urls,
        ..RedisOptions::default()
    }
}

pub(crate) fn server() -> RedisServer {
    RedisServer::start().expect("start redis-server (is it installed?)")
}

/// `calls=` of `cmdstat_evalsha` in `INFO commandstats`: script calls the
/// server ran (0 before the first).
pub(crate) async fn evalsha_calls(redis: &RedisServer) -> u64 {
    let info = redis.cli(&["INFO", "commandstats"]).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|l| l.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}
