//! Why forwarding a request failed ([`ProxyError`]); the mapping to a
//! status code lives in [`crate::response`]. A replica's config and
//! start-up errors are the runtime's ([`rateguard_runtime::ConfigError`],
//! [`rateguard_runtime::ServeError`]).

pub use rateguard_runtime::{ConfigError, ConfigErrors, ServeError};

/// Why forwarding a request to the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream could not be reached or broke the connection (`502`).
    #[error("upstream unreachable: {0}")]
    Unreachable(#[source] hyper_util::client::legacy::Error),
    /// The upstream did not send response headers in time (`504`).
    #[error("upstream timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The request could not be turned into an upstream request (`400`).
    #[error("cannot build the upstream request: {0}")]
    BadRequest(#[from] http::Error),
}
