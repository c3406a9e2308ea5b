//! A discrete-event simulation of replicas, a network and one store, for
//! the property tests of [`crate::lease`] and [`crate::share`]: random
//! arrival traces over N replicas, random delays on each leg of every call
//! (send → store decides → reply), crashes, a store outage, ordinary,
//! leased and share-holding replicas side by side; every admission is
//! recorded at the instant its token was taken and checked against the
//! reference GCRA over every window ([`envelope`]).
//!
//! Time is one real clock in µs; each replica reads it with its own
//! offset and the store with another (only differences may matter).

mod envelope;
mod replica;
mod world;

#[cfg(test)]
mod tests;

pub(crate) use envelope::{check, worst_window};
pub(crate) use replica::{Mode, ReplicaSpec};
pub(crate) use world::{run, Arrival, Crash, Scenario};
