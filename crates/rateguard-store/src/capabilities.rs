//! [`Capabilities`]: what a store declares of itself, so the layers above
//! it (the deny cache, the runtime's `on_error`) never ask which kind it
//! is; and [`Grouping`], what a caller declares of a request's buckets.
//!
//! A new store kind states its capabilities in its `BucketStore` impl;
//! nothing above the store crate has to learn about it.

/// What a store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Every replica decides on the same buckets, one round trip away
    /// (Redis): a local deny cache saves round trips, and a replica that
    /// loses the store has something to fall back from. `false`: the
    /// buckets are this process's own (the memory store).
    pub shared: bool,
    /// A bucket's stored state can move back after a decision was seen:
    /// `fred-cluster` refunds the earlier slots of a request whose later
    /// slot denies. A denial of such a bucket may later be stricter than
    /// the store, so the deny cache keeps none of a [`Grouping::Grouped`]
    /// request's.
    pub refunds: bool,
}

impl Capabilities {
    /// Buckets in this process only (the memory store).
    pub const LOCAL: Self = Self {
        shared: false,
        refunds: false,
    };

    /// Buckets shared by every replica, each decision atomic (Redis + Lua).
    pub const SHARED: Self = Self {
        shared: true,
        refunds: false,
    };
}

/// What the caller knows of a request's buckets: whether any request (on
/// any replica) decides them together with buckets in other slots, which
/// a store that [refunds](Capabilities::refunds) may later give tokens
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grouping {
    /// Only ever decided alone: a single-limit gateway policy's bucket
    /// (its key names the policy, and the policy has no other limit).
    Alone,
    /// Possibly decided together with others: a layered policy's buckets,
    /// an RLS descriptor's (any request may combine descriptors).
    Grouped,
}
