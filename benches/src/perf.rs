//! `just perf` (the `rateguard-perf` binary): `rateguard serve` side by side
//! with nginx and two minimal reference proxies on this machine, in one run.
//!
//! One nginx serves a static JSON body (the backend of every target); the
//! targets are nginx `proxy_pass` with upstream keep-alive (the ceiling),
//! the reference proxies (`rateguard-refproxy`: hyper alone, and hyper + one
//! `EVALSHA` per request) and one `rateguard serve` per gateway [`Case`].
//! `wrk` measures them in alternating rounds; each run also reads the
//! target's CPU time, context switches and RSS from `/proc`, so
//! configurations stay apart when two shared cores cap the throughput of
//! all of them. Each gateway case is read against nginx and its reference.
//!
//! # Layout
//! - [`case`]: the [`Case`]s, their ids, groups and references;
//! - [`keys`]: the key mixes (one key per thread, hot, Zipf, uniform);
//! - [`limits`]: the gateway config and the reference's bucket per case;
//! - [`nginx`]: the static backend and the `proxy_pass` ceiling (the
//!   testkit's nginx runner);
//! - [`reference`]: a running reference proxy;
//! - [`topology`]: every process of a run, started on free loopback ports and
//!   stopped by pid (through `rateguard-testkit`);
//! - [`wrk`]: one `wrk` run, its figures read from JSON its Lua `done()` hook prints;
//! - [`rounds`]: the alternating rounds and the per-case summary;
//! - [`key_memory`]: the memory store's RSS per live key;
//! - [`report`]: `results/perf-<time>.md` and `.json`;
//! - [`idle`]: RSS under N idle keep-alive client connections (`--idle N`).

pub mod case;
pub mod idle;
pub mod key_memory;
pub mod keys;
pub mod limits;
pub mod nginx;
pub mod reference;
pub mod report;
pub mod rounds;
pub mod topology;
pub mod wrk;

pub use case::Case;

/// Why a perf run stopped.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// A process of the topology could not be started.
    #[error(transparent)]
    Testkit(#[from] rateguard_testkit::TestkitError),
    /// `wrk` failed or printed no figures.
    #[error("wrk: {0}")]
    Wrk(String),
    /// Reading `/proc`, writing results, spawning.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The options make no sense.
    #[error("invalid options: {0}")]
    Options(String),
}
