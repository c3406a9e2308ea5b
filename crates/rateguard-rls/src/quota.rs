//! Envoy's Rate Limit Quota Service
//! (`envoy.service.rate_limit_quota.v3.RateLimitQuotaService/StreamRateLimitQuotas`)
//! on the same limits files and listener as `ShouldRateLimit`.
//!
//! Each Envoy streams usage reports per bucket; the service streams back
//! assignments that Envoy enforces locally: a token bucket at the Envoy's
//! share of the bucket's rate, or a blanket allow/deny. Shares are divided
//! max-min fairly by reported demand by the tier-2 share ledger
//! ([`rateguard_core::share`], `share.lua` on Redis), so the Envoys of all
//! replicas together never exceed the bucket's envelope.
//!
//! - [`bucket`]: a `BucketId` → its rule and shared bucket. Pure.
//! - [`action`]: the assignments (token bucket, blanket rules, abandon).
//! - [`shares`]: [`ShareStore`], the ledgers on Redis or in this process.
//! - [`stream`]: [`QuotaStream`], one stream's buckets, demand and renewals.
//! - [`service`]: [`QuotaService`], the gRPC service, a task per stream.

pub mod action;
pub mod bucket;
pub mod service;
pub mod shares;
pub mod stream;

pub use service::QuotaService;
pub use shares::{MemoryShares, ShareStore};
pub use stream::QuotaStream;
