//! The RateGuard lab: one command brings up the real topology on loopback
//! (redis-server, a 3-master Redis Cluster, mock backends behind nginx,
//! gateway replicas behind nginx), runs the load scenarios of
//! `rateguard-loadtests` for every store, and writes
//! `results/<run-id>/{report.html,summary.json}` with `rateguard-report`.
//!
//! # Layout
//! - [`options`]: [`LabOptions`], what a run does.
//! - [`topology`]: the processes, stopped by pid when their guards drop;
//!   [`backends`]: the NGINX behind the limiter (`return 200` for the load
//!   scenarios, the mock backends for the rest).
//! - [`gateway_config`]: the replicas' TOML config per store.
//! - [`runner`]: one accuracy scenario, once; [`load`]: one load scenario
//!   (throughput, capacity), once; [`loads`]: throughput's offered loads;
//!   [`summarize`]: repetitions to a record.
//! - [`cpu`]: CPU time per process role, from `/proc/<pid>/stat`.
//! - [`limit_req`]: the `nginx-limit-req` reference's nginx config;
//!   [`rls_config`]: the `rls` frontend's limits file and config.
//! - [`commandstats`]: Redis commands per request from `INFO commandstats`;
//!   [`decisions`]: the replicas' decision counters, read by the contract's
//!   metrics vocabulary.
//! - [`plan`]: [`LabPlan`], the run's deployments and their steps, as a
//!   value; [`lab`]: the whole run, walking it; [`progress`]: phase lines
//!   and the final table.
//! - [`check`]: `burst URL` and `distribution URL` against any gateway.
//! - [`demo`]: `up`, the topology for one store kept up until shutdown;
//!   [`front`]: the front nginx, on a free or a pinned port.
//! - [`machine`]: cores, CPU, versions, git commit.

pub mod backends;
pub mod check;
pub mod commandstats;
pub mod cpu;
pub mod decisions;
pub mod demo;
pub mod front;
pub mod gateway_config;
pub mod lab;
pub mod limit_req;
pub mod load;
pub mod loads;
pub mod machine;
pub mod options;
pub mod plan;
pub mod progress;
pub mod rls_config;
pub mod runner;
pub mod summarize;
pub mod topology;

pub use lab::{planned, run, LabOutcome};
pub use options::LabOptions;
pub use plan::LabPlan;

/// Why a lab run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The options make no sense.
    #[error("invalid options: {0}")]
    Options(String),
    /// A program the lab needs is missing.
    #[error("{0}")]
    Missing(String),
    /// A test process (redis, cluster, nginx) could not be provided.
    #[error(transparent)]
    Testkit(#[from] rateguard_testkit::TestkitError),
    /// The port asked for the front nginx is in use.
    #[error("port {port} on 127.0.0.1 is taken ({reason}); pick another with --port N, or --port 0 for a free one")]
    PortTaken {
        /// The port asked for.
        port: u16,
        /// Why binding it failed.
        reason: std::io::Error,
    },
    /// A gateway config file (`--config`) is unusable.
    #[error("gateway config: {0}")]
    Config(String),
    /// A gateway replica or nginx did not come up.
    #[error("gateway topology did not start: {0}")]
    Gateway(String),
    /// A scenario asked to kill a store the topology does not run.
    #[error("the store-outage scenario needs a Redis store")]
    NoStore,
    /// The load driver failed (not the server: its answers are measured).
    #[error(transparent)]
    Load(#[from] rateguard_loadtests::LoadError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] rateguard_report::ReportError),
    /// Temp dirs, config files, logs.
    #[error("lab I/O error: {0}")]
    Io(#[from] std::io::Error),
}
