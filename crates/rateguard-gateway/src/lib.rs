//! The RateGuard gateway: a reverse proxy that enforces token-bucket limits
//! per client and route before forwarding, generic over the bucket store.
//!
//! # Layout
//! - [`config`]: the TOML file (raw structs from `rateguard-contract`),
//!   overrides, validation into [`ValidConfig`].
//! - [`policy`]: longest-prefix policy matching, precomputed headers.
//! - [`identity`]: API key or client IP (trusted-proxy `X-Forwarded-For` rules).
//! - [`enforce`]: store call with a time budget, fail-open / fail-closed.
//! - [`response`]: the 429 and error responses, `RateLimit*` header values.
//! - [`proxy`]: the pooled upstream client (HTTP/1.1 or h2c) and the
//!   reverse-proxy header rules.
//! - [`upgrade`]: upgrade requests (WebSocket) limited, then relayed.
//! - [`grpc`]: gRPC calls refused with a gRPC status.
//! - [`service`]: [`Shared`] (what every runtime shares) and [`Gateway`]
//!   (one runtime's handler): one request's path through all of the above.
//! - [`server`]: the accept loop (HTTP/1.1 and h2c) with connection limit,
//!   graceful drain and upgraded-connection tunnels.
//! - [`serve()`] and [`Server`]: runtime layout, listeners ([`listen`]),
//!   store construction, admin, start-up log and drain.
//! - [`admin`] and [`metrics`]: `/healthz` (liveness), `/readyz` (store
//!   reachability), `/metrics` on their own port.
//! - [`mock_backend`]: the demo backend the tests and the lab run.
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
//! rateguard_gateway::serve(config, rateguard_gateway::shutdown_signal())?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod config;
pub mod enforce;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod listen;
pub mod metrics;
pub mod mock_backend;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod response;
mod serve;
pub mod server;
pub mod service;
pub mod upgrade;

pub use config::ValidConfig;
pub use error::{ConfigError, ConfigErrors, ProxyError, ServeError};
pub use listen::{bind_addr, bind_socket, Listeners};
pub use reload::{Reload, ReloadSource};
pub use serve::{
    multi_thread, redact_url, redis_options, run_mock_backend, serve, serve_admin,
    serve_mock_backend, serve_reloading, shutdown_signal, thread_count, with_store, Server,
    StoreUser,
};
pub use service::{Gateway, Live, Shared};
