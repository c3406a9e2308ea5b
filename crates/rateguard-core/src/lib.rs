//! The pure token-bucket math of RateGuard.
//!
//! # Layout
//! - [`clock`]: the [`Clock`] trait, the process [`SystemClock`] and (feature
//!   `test-util`) a [`ManualClock`](clock::ManualClock) that tests advance by hand.
//! - [`quota`]: [`Quota`], a capacity and a refill interval that cannot be invalid.
//! - [`bucket`]: the state transition `(tat, now, quota, cost, count) -> (tat', decisions)`.
//! - [`multi`]: all-or-nothing decisions over several buckets (layered
//!   limits): [`Limit`], [`MultiDecision`].
//! - [`decision`]: [`Decision`], the value every limiter returns; it maps one to
//!   one onto the 429 / `RateLimit` headers.
//! - [`key`]: [`BucketKey`], the stable, hashed, hash-tagged store key.
//! - [`lease`]: tier 1 of exact leases, tokens a replica takes ahead of time
//!   and spends locally, decaying from when it asked ([`lease::Lease`]).
//! - [`share`]: tier 2, rate shares of a hot bucket held by replicas or
//!   Envoys ([`share::Ledger`] in the store, [`share::LocalShare`] at the holder).
//!
//! # Invariants
//! This crate does no I/O, has no async runtime, and never reads the system
//! clock except inside [`SystemClock`]. All time is integer microseconds, so
//! the Redis Lua script can reproduce every decision exactly.
//!
//! # Example
//! ```
//! use rateguard_core::{bucket, Quota};
//!
//! let quota = Quota::new(2, 1.0).unwrap(); // 2 tokens, 1 token per second
//! let now = 1_000_000;
//! let first = bucket::acquire(0, now, &quota, 1); // 0: a key never seen
//! assert!(first.decision.allowed);
//! assert_eq!(first.decision.remaining, 1);
//! let second = bucket::acquire(first.tat, now, &quota, 1);
//! let third = bucket::acquire(second.tat, now, &quota, 1);
//! assert!(!third.decision.allowed);
//! assert_eq!(third.decision.retry_after.as_secs(), 1);
//! ```

pub mod bucket;
pub mod clock;
pub mod decision;
pub mod key;
pub mod lease;
pub mod multi;
pub mod quota;
pub mod share;

#[cfg(test)]
mod sim;

pub use clock::{Clock, SystemClock};
pub use decision::Decision;
pub use key::BucketKey;
pub use multi::{Limit, MultiDecision};
pub use quota::{Quota, QuotaError};
