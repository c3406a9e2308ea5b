//! The replica runtime both frontends share (`rateguard serve`, the HTTP
//! gateway, and `rateguard rls`, the Envoy Rate Limit Service): everything
//! between a checked config and a stopped process that is not HTTP proxying
//! or gRPC.
//!
//! # Layout
//! - [`replica`]: [`run_replica`] and [`Replica`], one lifecycle for every
//!   [`Frontend`]: bind, connect the store, reloader, admin, shutdown
//!   fan-out, drain; [`shutdown`]: [`shutdown_signal`] and [`Stop`].
//! - [`layout`]: the Tokio runtimes (one per core with `SO_REUSEPORT`, or
//!   one multi-thread runtime); [`listen`]: binding listeners.
//! - [`decide`]: the decision layer: one store call per request within
//!   `store.timeout_ms`, `on_error` (allow, deny, local on a
//!   `1/replicas_hint` share), the deny cache, the store metrics and
//!   warnings; it says what happened ([`Decided`]).
//! - [`config`]: the file every command reads (parsing, overrides) and
//!   `[server]`/`[store]` checked into [`ServerConfig`]/[`StoreConfig`].
//! - [`reload`]: `SIGHUP` and `watch_config`, [`ActiveConfig`] (what
//!   `GET /config` shows), and `reload::sections`, the one table of what
//!   reloads live per command.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/config` for any
//!   [`AdminSource`], on [`plain_http::serve_plain`].
//! - [`metrics`]: the store and config metrics every replica exports.
//! - [`headers`]: the `RateLimit` and `RateLimit-Policy` header values.
//! - [`error`]: [`ConfigError`], [`ConfigErrors`], [`ServeError`].
//!
//! # Invariants
//! Nothing here knows of HTTP proxying, policies, gRPC or Envoy; the
//! frontends know nothing of store kinds (the store declares its
//! [`Capabilities`](rateguard_store::Capabilities)).

pub mod admin;
pub mod config;
pub mod decide;
pub mod error;
pub mod headers;
pub mod layout;
pub mod listen;
pub mod metrics;
pub mod plain_http;
mod redact;
pub mod reload;
pub mod replica;
pub mod shutdown;

pub use admin::AdminSource;
pub use config::{ServerConfig, StoreConfig};
pub use decide::{DecideOptions, Decided, Decider};
pub use error::{ConfigError, ConfigErrors, ServeError};
pub use layout::{multi_thread, thread_count, Layout};
pub use listen::{bind_addr, bind_socket, Listeners};
pub use metrics::{ConfigMetrics, StoreMetrics};
pub use redact::redact_url;
pub use reload::{ActiveConfig, Reload, ReloadSource};
pub use replica::{run_replica, Frontend, Public, Replica, Running};
pub use shutdown::{shutdown_signal, Stop};
