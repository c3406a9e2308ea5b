//! The gateway's configuration: the file as the runtime reads it
//! ([`rateguard_runtime::config`]: parsing, overrides, `[server]` and
//! `[store]`), checked whole into a [`ValidConfig`].
//!
//! - [`validate`]: every check in one pass, into the typed model
//!   ([`ValidConfig`]), each message naming the key and the offending value
//!   (`policies[1].capacity: must be > 0, got -5`).
//! - [`load_table`] and [`load_str`] read and check in one go, reporting
//!   every problem found, reading and checking.

mod model;
mod validate;

pub use model::{IdentityConfig, LimitConfig, PolicyConfig, UpstreamConfig, ValidConfig};
pub use rateguard_contract::config::{
    EncodedSlashes, OnError, RawConfig, RawIdentity, RawLimit, RawPolicy, RawRls, RawServer,
    RawStore, RawUpstream, ResponseHeaders, RuntimeMode,
};
pub use rateguard_contract::LimitKey;
pub use rateguard_contract::StoreKind;
pub use rateguard_runtime::config::{
    add_unreported, apply_override, env_key, from_table, from_toml, load_table_with,
    override_sections, parse_table, read, read_table, ServerConfig, StoreConfig, ENV_PREFIX,
};
pub use validate::validate;

/// Reads and validates a table: every problem found, reading and checking.
pub fn load_table(table: toml::Table) -> Result<ValidConfig, crate::ConfigErrors> {
    load_table_with(table, validate)
}

/// Parses and validates TOML text in one go (tests, `check-config`).
pub fn load_str(text: &str) -> Result<ValidConfig, crate::ConfigErrors> {
    load_table(parse_table(text)?)
}

#[cfg(test)]
mod tests;
