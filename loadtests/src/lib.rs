//! The lab's load scenarios, driven against a running RateGuard topology
//! (nginx in front of gateway replicas).
//!
//! # Layout
//! - [`scenarios`]: the scenario ids, the gateway policies they need
//!   ([`Params::policies`]) and their load plans.
//! - [`goose_driver`]: closed-model runs on goose (burst, sustained,
//!   distribution, store-outage).
//! - [`open_model`]: the fixed-arrival-rate driver (throughput, capacity),
//!   which measures latency from each request's intended start;
//!   [`keys`]: which API key each of its requests sends ([`KeyMix`]);
//!   [`capacity`]: the search for the highest rate that meets the SLO.
//! - [`record`]: [`Recorder`] and [`Sample`]: every request, timed in µs.
//! - [`analysis`]: counts, `hdrhistogram` percentiles, allowed-over-time
//!   against an ideal token bucket, the outage timeline.
//!
//! The lab (`rateguard-lab`) owns the processes; this crate only sends
//! traffic (to loopback) and measures it.

pub mod analysis;
pub mod capacity;
pub mod goose_driver;
pub mod keys;
pub mod open_model;
pub mod record;
pub mod scenarios;

pub use analysis::{BucketShape, Counts};
pub use capacity::CapacitySearch;
pub use keys::{KeyMix, KeyPlan};
pub use open_model::{OpenRun, Slo};
pub use record::{Outcome, Recorder, Recording, Sample};
pub use scenarios::{path_prefix, Params, Policy, ScenarioId};

/// Why a load run could not be carried out (the server's answers, good or
/// bad, are measurements, not errors).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Goose refused the plan or failed to run it.
    #[error("goose: {0}")]
    Goose(String),
    /// The plan itself is invalid (bad URL, zero rate).
    #[error("invalid load plan: {0}")]
    Config(String),
}
