//! RateGuard as an Envoy Rate Limit Service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), on the
//! same bucket stores as the gateway, and as Envoy's Rate Limit Quota
//! Service (`RateLimitQuotaService/StreamRateLimitQuotas`) on the same
//! listener and limits.
//!
//! # Layout
//! - [`config`]: [`RlsConfig`], `[server]`, `[store]` and `[rls]` checked.
//! - [`serve`](mod@serve): [`GrpcFrontend`], the service as a frontend of the replica
//!   runtime (`rateguard_runtime`: store, admin, reload, drain).
//! - [`limits`]: envoyproxy/ratelimit's YAML limits files, loaded and
//!   checked into one lookup tree per domain.
//! - [`plan`]: one request → its steps (rule, cost, bucket key per
//!   descriptor; `replaces`, `unlimited`, overrides). Pure.
//! - [`service`]: [`RateLimiter`], `ShouldRateLimit` over any `BucketStore`,
//!   one all-or-nothing call per request to the runtime's decision layer
//!   (budget, `on_error` allow/deny/local, deny cache).
//! - [`response`]: descriptor statuses and the optional IETF headers.
//! - [`quota`]: [`QuotaService`], Envoy's Rate Limit Quota Service
//!   (`StreamRateLimitQuotas`) on the same limits: each bucket's rate
//!   divided among the Envoys reporting it by the share ledger.
//! - [`server`]: the gRPC listener with `grpc.health.v1.Health`.
//! - [`metrics`]: decisions per domain and rule, store latency and errors.
//! - [`unit`]: [`Unit`], a limit's time unit.
//!
//! # Invariants
//! This is the only crate that depends on tonic and the Envoy protos; the
//! runtime, the store and the gateway know nothing of gRPC, and this crate
//! nothing of the HTTP gateway.

pub mod config;
pub mod limits;
pub mod metrics;
pub mod plan;
pub mod quota;
pub mod response;
pub mod serve;
pub mod server;
pub mod service;
pub mod unit;

pub use config::{RlsConfig, RlsOptions};
pub use limits::{Limit, Limits, LimitsError, LimitsErrors, Rule, RuleKind};
pub use quota::{QuotaService, ShareStore};
pub use response::ResponseHeaders;
pub use serve::{serve, serve_reloading, GrpcFrontend, RlsServeError, RlsServer};
pub use server::serve_grpc;
pub use service::RateLimiter;
pub use unit::Unit;
