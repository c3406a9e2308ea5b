//! Typed errors of a replica: its config ([`ConfigError`], [`ConfigErrors`])
//! and its start and stop ([`ServeError`]).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use rateguard_store::{StoreError, StoreKind};

/// One thing wrong with a configuration. Messages name the key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error, as text.
        message: String,
    },
    /// The file is not valid TOML.
    #[error("{0}")]
    Syntax(String),
    /// A key has a wrong value, is unknown, or is missing.
    #[error("{key}: {message}")]
    Invalid {
        /// The key's path, e.g. `policies[1].capacity`.
        key: String,
        /// What is wrong, including the offending value.
        message: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn join_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<ConfigError> for ConfigErrors {
    fn from(err: ConfigError) -> Self {
        Self(vec![err])
    }
}

/// Why a replica could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The configured store could not be connected at start-up.
    #[error("cannot connect the {kind} store: {source}")]
    Store {
        /// The store kind.
        kind: StoreKind,
        /// The cause.
        source: StoreError,
    },
    /// A Tokio runtime or a runtime thread could not be started.
    #[error("cannot start a Tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A per-core runtime thread ended without reporting (it panicked).
    #[error("a runtime thread died")]
    RuntimeDied,
    /// Any other I/O error of the server itself.
    #[error("server I/O error: {0}")]
    Io(#[from] io::Error),
}
