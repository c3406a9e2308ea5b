//! [`validate`]: every check in one pass, from a [`RawConfig`] into a
//! [`ValidConfig`]. `[server]` and `[store]` are the runtime's checks
//! ([`rateguard_runtime::config`]); `[upstream]` and `[identity]` have
//! their function here, policies their module.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::uri::Uri;
use ipnet::IpNet;
use rateguard_contract::{KeySource, StoreKind};
use rateguard_core::key::MAX_POLICY_LEN;
use rateguard_runtime::config::{self as runtime_config, Check};

use super::{
    IdentityConfig, IpPrefixes, RawConfig, RawIdentity, RawUpstream, UpstreamConfig, ValidConfig,
};
use crate::error::ConfigErrors;

mod known_keys;
mod limits;
mod plans;
mod policies;

use plans::plans;
use policies::policies;

/// The message for a name outside the alphabet kept verbatim in keys.
fn plain_name_message(name: &str) -> String {
    format!("must be 1-{MAX_POLICY_LEN} characters of A-Z a-z 0-9 _ . -, got {name:?}")
}

/// Checks every key of `raw` and returns the typed config, or every problem found.
pub fn validate(raw: &RawConfig) -> Result<ValidConfig, ConfigErrors> {
    let mut check = Check::new();
    let server = runtime_config::server(&mut check, &raw.server, &raw.admin);
    let upstream = upstream(&mut check, &raw.upstream);
    let store = runtime_config::store(&mut check, &raw.store);
    let plan_names: Vec<&str> = raw.plans.iter().map(|p| p.name.as_str()).collect();
    let identity = identity(&mut check, &raw.identity, &plan_names);
    let policies = policies(&mut check, &raw.policies);
    let plans = plans(&mut check, &raw.plans, &raw.policies);
    let key_registry = key_registry(&mut check, raw);
    match (
        server,
        upstream,
        store,
        identity,
        policies,
        plans,
        key_registry,
    ) {
        (
            Some(server),
            Some(upstream),
            Some(store),
            Some(identity),
            Some(policies),
            Some(plans),
            Some(key_registry),
        ) if check.is_clean() => Ok(ValidConfig {
            server,
            upstream,
            store,
            identity,
            policies,
            plans,
            key_registry,
            raw: raw.clone(),
        }),
        _ => Err(check.into_errors()),
    }
}

fn upstream(check: &mut Check, raw: &RawUpstream) -> Option<UpstreamConfig> {
    let timeout = check.millis("upstream.timeout_ms", raw.timeout_ms);
    let pool = match usize::try_from(raw.pool_max_idle) {
        Ok(n) => Some(n),
        Err(_) => {
            check.fail(
                "upstream.pool_max_idle",
                format!("must be >= 0, got {}", raw.pool_max_idle),
            );
            None
        }
    };
    if raw.url.is_empty() {
        // A file without [upstream] (it is optional for `rateguard rls`).
        check.fail("upstream.url", "required key is missing");
        return None;
    }
    let parsed = raw.url.parse::<Uri>().ok().and_then(|uri| {
        let ok = uri.scheme_str() == Some("http") && uri.query().is_none();
        let authority = uri.authority()?.clone();
        ok.then(|| (authority, uri.path().trim_end_matches('/').to_owned()))
    });
    if parsed.is_none() {
        check.fail(
            "upstream.url",
            format!(
                "expected an http:// URL without query (e.g. http://127.0.0.1:9000), got {:?}",
                raw.url
            ),
        );
    }
    let (authority, base_path) = parsed?;
    Some(UpstreamConfig {
        url: raw.url.clone(),
        authority,
        base_path,
        timeout: timeout?,
        pool_max_idle: pool?,
        protocol: raw.protocol,
    })
}

/// `identity.keys` and `keys_max_stale_ms`: `Some(None)` for the file,
/// `Some(Some(max_stale))` for Redis (which needs a standalone Redis
/// store and no `api_keys_file`).
fn key_registry(check: &mut Check, raw: &RawConfig) -> Option<Option<Duration>> {
    let identity = &raw.identity;
    let max_stale = check.millis("identity.keys_max_stale_ms", identity.keys_max_stale_ms);
    if identity.keys != KeySource::Redis {
        return Some(None);
    }
    if identity.api_keys_file.is_some() {
        check.fail(
            "identity.keys",
            "\"redis\" cannot be combined with identity.api_keys_file: choose one source of keys",
        );
    }
    if !matches!(
        raw.store.kind,
        StoreKind::RedisLua | StoreKind::RedisPipelined
    ) {
        check.fail(
            "identity.keys",
            format!(
                "\"redis\" keeps the keys in the store's Redis: needs store.kind \"redis-lua\" or \"redis-pipelined\", got {:?}",
                raw.store.kind.as_str()
            ),
        );
    }
    Some(Some(max_stale?))
}

/// `[identity]`; `plans`: the plan names a line of `api_keys_file` may give.
fn identity(check: &mut Check, raw: &RawIdentity, plans: &[&str]) -> Option<IdentityConfig> {
    let header = HeaderName::from_bytes(raw.api_key_header.as_bytes()).ok();
    if header.is_none() {
        check.fail(
            "identity.api_key_header",
            format!("not a valid header name, got {:?}", raw.api_key_header),
        );
    }
    let mut nets = Vec::new();
    for (i, text) in raw.trusted_proxies.iter().enumerate() {
        let net = text
            .parse::<IpNet>()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from));
        match net {
            Some(net) => nets.push(net.trunc()),
            None => check.fail(
                format!("identity.trusted_proxies[{i}]"),
                format!("not a CIDR or IP address (e.g. 10.0.0.0/8), got {text:?}"),
            ),
        }
    }
    let known_api_keys = match &raw.api_keys_file {
        Some(path) => Some(Arc::new(known_keys::read(check, path, plans)?)),
        None => None,
    };
    let v4 = check.prefix("identity.ipv4_prefix", raw.ipv4_prefix, 8, 32);
    let v6 = check.prefix("identity.ipv6_prefix", raw.ipv6_prefix, 32, 128);
    Some(IdentityConfig {
        api_key_header: header?,
        trusted_proxies: nets,
        known_api_keys,
        ip_prefixes: IpPrefixes { v4: v4?, v6: v6? },
    })
}
