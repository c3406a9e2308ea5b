//! The gateway replicas' config file, written by serializing the contract's
//! raw config structs ([`RawConfig`]): the lab declares no schema of its own.

use rateguard_contract::{OnError, RawConfig, RawPolicy, StoreKind};
use rateguard_loadtests::record::API_KEY_HEADER;
use rateguard_loadtests::Policy;

use crate::LabError;

/// The listen addresses written into every file: placeholders, since the
/// testkit passes free ports on the command line.
const PLACEHOLDER_LISTEN: &str = "127.0.0.1:0";
/// Only the local nginx in front of the replicas is a trusted proxy.
const TRUSTED_PROXY: &str = "127.0.0.1/32";

/// The lab's own config: a `store_timeout_ms` budget, `on_error`, the given
/// policies. The store and the upstream are [`place`]d by the topology.
pub fn generated(store_timeout_ms: u64, policies: &[Policy], on_error: OnError) -> RawConfig {
    let mut config = RawConfig::new(String::new());
    config.store.timeout_ms = i64::try_from(store_timeout_ms).unwrap_or(i64::MAX);
    config.store.on_error = on_error;
    config.identity.api_key_header = API_KEY_HEADER.to_owned();
    config.identity.trusted_proxies = vec![TRUSTED_PROXY.to_owned()];
    config.policies = policies.iter().map(raw_policy).collect();
    config
}

/// A user's config file (`up --config FILE`). The lab [`place`]s the store
/// and the upstream, so the file may leave `[upstream]` out; everything else
/// (policies, timeouts, identity) is the file's. An unknown key or a wrong
/// type is an error naming it.
pub fn parse_user(text: &str) -> Result<RawConfig, LabError> {
    let config = |e: toml::de::Error| LabError::Config(e.to_string());
    let mut table: toml::Table = text.parse().map_err(config)?;
    table
        .entry("upstream")
        .or_insert_with(|| toml::Table::from_iter([("url".into(), "".into())]).into());
    table.try_into().map_err(config)
}

/// Fills in what the lab owns: `store.kind`, `store.urls`, `upstream.url`.
pub fn place(config: &mut RawConfig, store: StoreKind, store_urls: &[String], upstream_url: &str) {
    config.store.kind = store;
    config.store.urls = store_urls.to_vec();
    config.upstream.url = upstream_url.to_owned();
}

/// The path prefix of the only policy of [`match_nothing`]: no lab request
/// goes there.
pub const UNMATCHED_PREFIX: &str = "/reference-unmatched";

/// Replaces the policies with one no request matches (the `none`
/// reference: the gateways proxy everything without a decision).
pub fn match_nothing(config: &mut RawConfig) {
    config.policies = vec![RawPolicy {
        path_prefix: Some(UNMATCHED_PREFIX.to_owned()),
        ..RawPolicy::new("unmatched", 1, 1.0)
    }];
}

/// `config` as replica `replica_id`'s TOML file, with placeholder listen
/// addresses (the testkit passes free ports on the command line).
pub fn for_replica(config: &RawConfig, replica_id: &str) -> String {
    let mut config = config.clone();
    config.server.replica_id = Some(replica_id.to_owned());
    config.server.listen = PLACEHOLDER_LISTEN.to_owned();
    config.server.admin_listen = PLACEHOLDER_LISTEN.to_owned();
    toml::to_string(&config).expect("the contract's config structs always serialize")
}

fn raw_policy(p: &Policy) -> RawPolicy {
    RawPolicy {
        path_prefix: p.path_prefix.clone(),
        ..RawPolicy::new(
            p.name.clone(),
            i64::from(p.shape.capacity),
            p.shape.refill_per_sec,
        )
    }
}

#[cfg(test)]
mod tests;
