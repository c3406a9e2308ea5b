//! The three Redis stores against real `redis-server` processes and a real
//! 3-master Redis Cluster, started by `rateguard-testkit` on free loopback
//! ports (needs `redis-server` and `redis-cli` on PATH).
//!
//! One test binary (links are slow on 2 cores), one module per concern.

mod acl;
mod cluster;
mod conformance;
mod deny_cache;
mod equivalence;
mod failures;
mod leases;
mod peek;
mod recovery;
mod sentinel;
mod tls;

use std::time::Duration;

use rateguard_store::RedisOptions;
use rateguard_testkit::RedisServer;

/// A realistic Redis `TIME` in µs (late 2026), far below 2^53: where the
/// scripts' pinned "now" starts.
pub(crate) const T0: u64 = rateguard_store::conformance::T0_US;

/// A small deterministic generator (no dependency, reproducible failures).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    /// The next number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    /// One of `items`, uniformly.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

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
