//! RateGuard's contract: the vocabulary every crate shares, defined once.
//!
//! - [`StoreKind`]: which bucket store a gateway runs, and what each kind
//!   needs to run (a Redis server, a Redis Cluster, nothing).
//! - [`headers`]: the HTTP header names the gateway writes and reads.
//! - [`admin`]: the admin listener's paths.
//! - [`metrics`]: what `/metrics` exports: family names and fixed label
//!   values, as an operator or the lab reads them.
//! - [`LimitKey`]: what a policy's limit counts requests by (`client`,
//!   `ip`, `api_key`, `header:<name>`, `global`).
//! - [`config`]: the gateway's TOML file as raw serde structs
//!   ([`RawConfig`]), both ways, so the lab can write a gateway config by
//!   serializing them and the gateway reads the very same schema.
//!
//! Every name is a type or a constant: an enum's ids, `Display`, `FromStr`
//! and serde all come from one list ([`vocabulary!`], see [`UnknownName`]
//! for the error), so a typo does not compile. The lab's own vocabulary
//! (scenarios, frontends, key mixes, CPU roles) lives with the lab, in
//! `rateguard-lab-model`: no product crate names it.
//!
//! This crate is a leaf: plain data, `serde` and `thiserror`, no I/O, no
//! async runtime, no HTTP types.
//!
//! # Example
//! ```
//! use rateguard_contract::StoreKind;
//!
//! let kind: StoreKind = "redis-lua".parse().unwrap();
//! assert!(kind.needs_redis() && kind.shared_across_replicas());
//! assert_eq!(kind.to_string(), "redis-lua");
//! let err = "redis-lau".parse::<StoreKind>().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "unknown kind \"redis-lau\", expected one of memory, redis-lua, redis-pipelined, fred-cluster, redis-leased"
//! );
//! ```

mod vocabulary;

pub mod admin;
pub mod config;
pub mod headers;
mod limit_key;
pub mod metrics;
mod store_kind;

pub use config::{
    EncodedSlashes, GrpcDeniedStatus, KeySource, OnError, RawAdmin, RawConfig, RawIdentity,
    RawLimit, RawPlan, RawPlanLimit, RawPolicy, RawRls, RawServer, RawStore, RawUpstream,
    ResponseHeaders, RuntimeMode, UpstreamProtocol,
};
pub use limit_key::LimitKey;
pub use store_kind::{Backend, StoreKind};
pub use vocabulary::UnknownName;

// For `vocabulary!` expansions in other crates.
#[doc(hidden)]
pub use serde as __serde;
#[doc(hidden)]
pub use vocabulary::List as __List;
