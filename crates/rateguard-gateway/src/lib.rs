//! The RateGuard gateway: a reverse proxy that enforces token-bucket limits
//! per client and route before forwarding, generic over the bucket store.
//!
//! # Layout
//! - [`config`]: the TOML file (raw structs from `rateguard-contract`),
//!   overrides, validation into [`ValidConfig`].
//! - [`policy`]: longest-prefix policy matching, precomputed headers.
//! - [`identity`]: API key or client IP (trusted-proxy `X-Forwarded-For` rules).
//! - [`plan`]: a policy's limits × the requester → the store requests
//!   (quotas through a [`plan::QuotaSource`]). Pure.
//! - [`enforce`]: the plan decided by the runtime's decision layer
//!   (budget, `on_error`, deny cache), as a verdict, counted.
//! - [`response`]: the 429 and error responses.
//! - [`proxy`]: the pooled upstream client (HTTP/1.1 or h2c) and the
//!   reverse-proxy header rules.
//! - [`upgrade`]: upgrade requests (WebSocket) limited, then relayed.
//! - [`grpc`]: gRPC calls refused with a gRPC status.
//! - [`service`]: [`Shared`] (what every runtime shares) and [`Gateway`]
//!   (one runtime's handler): one request's path through all of the above:
//!   path → policy → identity → plan → decide → respond.
//! - [`live`]: [`Live`], what a reload swaps in, and [`LiveSlot`], the
//!   replica's reload target.
//! - [`server`]: the accept loop (HTTP/1.1 and h2c) with connection limit,
//!   graceful drain and upgraded-connection tunnels.
//! - [`serve()`] and [`Server`]: the gateway as a frontend of the replica
//!   runtime (`rateguard_runtime`: layout, listeners, store, admin, reload).
//! - [`metrics`]: the gateway's counters (`/metrics` on the admin port).
//! - [`error`]: typed errors.
//!
//! # Example: one replica, as the binary runs it
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = rateguard_gateway::config::load_str(r#"
//!     [upstream]
//!     url = "http://127.0.0.1:9000"
//!     [[policies]]
//!     name = "default"
//!     capacity = 100
//!     refill_per_sec = 50.0
//! "#)?;
//! rateguard_gateway::serve(config, rateguard_runtime::shutdown_signal())?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod enforce;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod live;
pub mod metrics;
pub mod path;
pub mod plan;
pub mod policy;
pub mod proxy;
pub mod registry;
pub mod response;
mod serve;
pub mod server;
pub mod service;
pub mod upgrade;

pub use config::ValidConfig;
pub use error::{ConfigError, ConfigErrors, ProxyError, ServeError};
pub use live::{Live, LiveSlot};
/// The listeners a [`Server`] runs on (the runtime's).
pub use rateguard_runtime::{bind_addr, Listeners};
pub use serve::{serve, serve_reloading, HttpFrontend, Server};
pub use service::{Gateway, Shared};
