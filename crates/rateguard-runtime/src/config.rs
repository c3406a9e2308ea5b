//! The config file every command reads, and the sections every replica
//! runs on.
//!
//! - The raw structs ([`RawConfig`] and its sections) live in
//!   `rateguard-contract`; they mirror the file exactly
//!   (`deny_unknown_fields`), so a typo is an error, never ignored.
//! - [`parse`](from_table): TOML text → table → raw structs, every problem
//!   named by its key path (`server.listn: unknown key ...`);
//!   [`load_table_with`] reads and checks with a frontend's own function.
//! - [`overrides`](apply_override): single keys set from `RATEGUARD_*`
//!   variables and flags, which the binary collects (nothing here reads
//!   the environment).
//! - [`validate_server_and_store`]: `[server]` and `[store]` into
//!   [`ServerConfig`] and [`StoreConfig`], each message naming the key and
//!   the value, through a [`Check`] that the frontends' checks share.

mod model;
mod overrides;
mod parse;
mod validate;

pub use model::{ServerConfig, StoreConfig};
pub use overrides::{apply_override, env_key, override_sections, ENV_PREFIX};
pub use parse::{
    add_unreported, from_table, from_toml, load_table_with, parse_table, read, read_table,
};
pub use rateguard_contract::config::{
    EncodedSlashes, OnError, RawConfig, RawServer, RawStore, RuntimeMode,
};
pub use rateguard_contract::StoreKind;
pub use validate::{server, store, validate_server_and_store, Check};
