//! RateGuard as an Envoy Rate Limit Service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), on the
//! same bucket stores as the gateway.
//!
//! # Layout
//! - [`limits`]: envoyproxy/ratelimit's YAML limits files, loaded and
//!   checked into one lookup tree per domain.
//! - [`unit`]: [`Unit`], a limit's time unit.
//!
//! # Invariants
//! This is the only crate that depends on tonic and the Envoy protos; the
//! gateway and the store know nothing of gRPC.

pub mod limits;
pub mod plan;
pub mod unit;

pub use limits::{Limit, Limits, LimitsError, LimitsErrors, Rule, RuleKind};
pub use unit::Unit;
