//! [`validate`]: every check in one pass, from a [`RawConfig`] into a
//! [`ValidConfig`]. Each section has its function; policies have their module.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::uri::Uri;
use ipnet::IpNet;

use super::{
    IdentityConfig, RawConfig, RawIdentity, RawServer, RawStore, RawUpstream, ServerConfig,
    StoreConfig, UpstreamConfig, ValidConfig,
};
use crate::error::{ConfigError, ConfigErrors};

mod known_keys;
mod limits;
mod policies;

use policies::policies;

/// Collects errors while validating.
struct Check(Vec<ConfigError>);

impl Check {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::invalid(key, message));
    }

    fn addr(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        let parsed = value.parse().ok();
        if parsed.is_none() {
            self.fail(
                key,
                format!("not an IP socket address (e.g. 127.0.0.1:8080), got {value:?}"),
            );
        }
        parsed
    }

    fn millis(&mut self, key: &str, value: i64) -> Option<Duration> {
        match u64::try_from(value) {
            Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => {
                self.fail(key, format!("must be > 0, got {value}"));
                None
            }
        }
    }

    fn positive(&mut self, key: &str, value: i64) -> Option<usize> {
        match usize::try_from(value) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.fail(key, format!("must be > 0, got {value}"));
                None
            }
        }
    }
}

/// Checks every key of `raw` and returns the typed config, or every problem found.
pub fn validate(raw: &RawConfig) -> Result<ValidConfig, ConfigErrors> {
    let mut check = Check(Vec::new());
    let server = server(&mut check, &raw.server);
    let upstream = upstream(&mut check, &raw.upstream);
    let store = store(&mut check, &raw.store);
    let identity = identity(&mut check, &raw.identity);
    let policies = policies(&mut check, &raw.policies);
    match (server, upstream, store, identity, policies) {
        (Some(server), Some(upstream), Some(store), Some(identity), Some(policies))
            if check.0.is_empty() =>
        {
            Ok(ValidConfig {
                server,
                upstream,
                store,
                identity,
                policies,
                raw: raw.clone(),
            })
        }
        _ => Err(ConfigErrors(check.0)),
    }
}

/// Checks the sections every command reads (`[server]`, `[store]`), as
/// `rateguard rls` needs them.
pub fn validate_server_and_store(
    raw: &RawConfig,
) -> Result<(ServerConfig, StoreConfig), ConfigErrors> {
    let mut check = Check(Vec::new());
    let server = server(&mut check, &raw.server);
    let store = store(&mut check, &raw.store);
    match (server, store) {
        (Some(server), Some(store)) if check.0.is_empty() => Ok((server, store)),
        _ => Err(ConfigErrors(check.0)),
    }
}

fn server(check: &mut Check, raw: &RawServer) -> Option<ServerConfig> {
    let listen = check.addr("server.listen", &raw.listen);
    let admin_listen = check.addr("server.admin_listen", &raw.admin_listen);
    if let (Some(a), Some(b)) = (listen, admin_listen) {
        if a == b && a.port() != 0 {
            check.fail(
                "server.admin_listen",
                format!("must differ from server.listen, got {:?}", raw.admin_listen),
            );
        }
    }
    let replica_id = match &raw.replica_id {
        Some(id) if !id.is_empty() && http::HeaderValue::from_str(id).is_ok() => id.clone(),
        Some(id) => {
            check.fail(
                "server.replica_id",
                format!("must be non-empty visible ASCII, got {id:?}"),
            );
            String::new()
        }
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };
    let grace = check.millis("server.shutdown_grace_ms", raw.shutdown_grace_ms);
    let max = check.positive("server.max_connections", raw.max_connections);
    let idle_timeout = check.millis("server.idle_timeout_ms", raw.idle_timeout_ms);
    let threads = match usize::try_from(raw.threads) {
        Ok(n) if n <= 1024 => Some(n),
        _ => {
            check.fail(
                "server.threads",
                format!(
                    "must be between 0 (one per core) and 1024, got {}",
                    raw.threads
                ),
            );
            None
        }
    };
    Some(ServerConfig {
        listen: listen?,
        admin_listen: admin_listen?,
        replica_id,
        shutdown_grace: grace?,
        max_connections: max?,
        idle_timeout: idle_timeout?,
        runtime: raw.runtime,
        threads: threads?,
        encoded_slashes: raw.encoded_slashes,
        watch_config: raw.watch_config,
    })
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
    })
}

fn store(check: &mut Check, raw: &RawStore) -> Option<StoreConfig> {
    if raw.kind.needs_server() && raw.urls.is_empty() {
        check.fail(
            "store.urls",
            format!(
                "must list at least one redis:// URL for kind {:?}",
                raw.kind.as_str()
            ),
        );
    }
    for (i, url) in raw.urls.iter().enumerate() {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            check.fail(
                format!("store.urls[{i}]"),
                format!(
                    "expected a redis:// or rediss:// URL, got {:?}",
                    crate::redact_url(url)
                ),
            );
        }
    }
    let timeout = check.millis("store.timeout_ms", raw.timeout_ms);
    let batch_max = check.positive("store.batch_max", raw.batch_max);
    let batch_wait = match u64::try_from(raw.batch_wait_us) {
        Ok(us) => Some(Duration::from_micros(us)),
        Err(_) => {
            check.fail(
                "store.batch_wait_us",
                format!("must be >= 0, got {}", raw.batch_wait_us),
            );
            None
        }
    };
    let breaker_max_cooldown =
        check.millis("store.breaker_max_cooldown_ms", raw.breaker_max_cooldown_ms);
    let deny_cache_size = check.positive("store.deny_cache_size", raw.deny_cache_size);
    let replicas_hint = match u32::try_from(raw.replicas_hint) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            check.fail(
                "store.replicas_hint",
                format!(
                    "must be between 1 and {}, got {}",
                    u32::MAX,
                    raw.replicas_hint
                ),
            );
            None
        }
    };
    // TLS files and Sentinel: checked by the store crate (edge-redis).
    let access = rateguard_store::RedisAccess::from_raw(raw)
        .map_err(|issues| {
            for issue in issues {
                check.fail(issue.key, issue.message);
            }
        })
        .ok();
    Some(StoreConfig {
        kind: raw.kind,
        urls: raw.urls.clone(),
        timeout: timeout?,
        on_error: raw.on_error,
        batch_max: batch_max?,
        batch_wait: batch_wait?,
        breaker_max_cooldown: breaker_max_cooldown?,
        deny_cache: raw.deny_cache.then_some(deny_cache_size?),
        replicas_hint: replicas_hint?,
        access: access?,
    })
}

fn identity(check: &mut Check, raw: &RawIdentity) -> Option<IdentityConfig> {
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
        Some(path) => Some(Arc::new(known_keys::read(check, path)?)),
        None => None,
    };
    Some(IdentityConfig {
        api_key_header: header?,
        trusted_proxies: nets,
        known_api_keys,
    })
}
