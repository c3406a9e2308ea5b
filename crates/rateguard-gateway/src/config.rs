//! The configuration file: loading, overrides, and validation into a
//! [`ValidConfig`].
//!
//! - The raw structs ([`RawConfig`] and its sections) live in
//!   `rateguard-contract`, shared with the lab that writes configs; they
//!   mirror the file exactly (`deny_unknown_fields`, so a typo is an error,
//!   never silently ignored), and serde parses the closed sets of names
//!   ([`StoreKind`], [`OnError`], [`RuntimeMode`]).
//! - [`parse`](from_table): TOML text → table → raw structs, every problem
//!   named by its key path (`server.listn: unknown key ...`).
//! - [`overrides`](apply_override): single keys set from `RATEGUARD_*`
//!   variables and flags, which the binary collects (this module never reads
//!   the environment).
//! - [`validate`]: every check in one pass, into the typed [`model`]
//!   ([`ValidConfig`]), each message naming the key and the offending value
//!   (`policies[1].capacity: must be > 0, got -5`).
//!
//! - [`warnings`]: what a valid config allows that was likely not meant
//!   (reported, never refused).
//!
//! [`load_table`] and [`load_str`] do all of it and report every problem
//! found, reading and checking.

mod model;
mod overrides;
mod parse;
mod validate;
mod warnings;

pub use model::{
    IdentityConfig, IpPrefixes, LimitConfig, PolicyConfig, ServerConfig, StoreConfig,
    UpstreamConfig, ValidConfig,
};
pub use overrides::{apply_override, env_key, override_sections, ENV_PREFIX};
pub use parse::{
    add_unreported, from_table, from_toml, load_str, load_table, load_table_with, parse_table,
    read, read_table,
};
pub use rateguard_contract::config::{
    EncodedSlashes, GrpcDeniedStatus, OnError, RawConfig, RawIdentity, RawLimit, RawPolicy, RawRls,
    RawServer, RawStore, RawUpstream, ResponseHeaders, RuntimeMode, UpstreamProtocol,
};
pub use rateguard_contract::LimitKey;
pub use rateguard_contract::StoreKind;
pub use validate::{validate, validate_server_and_store};
pub use warnings::warnings;

#[cfg(test)]
mod tests;
