//! RateGuard as an Envoy Rate Limit Service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), on the
//! same bucket stores as the gateway.
//!
//! # Layout
//! - [`config`]: [`RlsConfig`], `[server]`, `[store]` and `[rls]` checked.
//! - [`serve`]: the process: runtime, store, gRPC and admin listeners, drain.
//! - [`limits`]: envoyproxy/ratelimit's YAML limits files, loaded and
//!   checked into one lookup tree per domain.
//! - [`plan`]: one request → its steps (rule, cost, bucket key per
//!   descriptor; `replaces`, `unlimited`, overrides). Pure.
//! - [`service`]: [`RateLimiter`], `ShouldRateLimit` over any `BucketStore`,
//!   one all-or-nothing store call per request, fail-open / fail-closed.
//! - [`response`]: descriptor statuses and the optional IETF headers.
//! - [`server`]: the gRPC listener with `grpc.health.v1.Health`.
//! - [`metrics`]: decisions per domain and rule, store latency and errors.
//! - [`unit`]: [`Unit`], a limit's time unit.
//!
//! # Invariants
//! This is the only crate that depends on tonic and the Envoy protos; the
//! gateway and the store know nothing of gRPC.

pub mod config;
pub mod limits;
pub mod metrics;
pub mod plan;
pub mod response;
pub mod serve;
pub mod server;
pub mod service;
pub mod unit;

pub use config::RlsConfig;
pub use limits::{Limit, Limits, LimitsError, LimitsErrors, Rule, RuleKind};
pub use response::ResponseHeaders;
pub use serve::{serve, serve_reloading, RlsServeError};
pub use server::serve_grpc;
pub use service::{RateLimiter, RlsOptions};
pub use unit::Unit;
