//! The checks of the sections every command reads: [`server`] and
//! [`store`], each message naming the key and the offending value
//! (`store.timeout_ms: must be > 0, got 0`), collected in a [`Check`]
//! that the frontends' own checks (the gateway's `[upstream]`,
//! `[identity]` and policies) add to.

use std::net::SocketAddr;
use std::time::Duration;

use rateguard_contract::{RawAdmin, RawConfig, RawServer, RawStore};

use rateguard_store::LeaseOptions;

use super::{ServerConfig, StoreConfig};
use crate::admin::AdminToken;
use crate::error::{ConfigError, ConfigErrors};

/// Collects every problem of one config while it is checked.
#[derive(Debug, Default)]
pub struct Check(Vec<ConfigError>);

impl Check {
    /// No problem yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` is wrong, saying why (with the value).
    pub fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::invalid(key, message));
    }

    /// Records a problem found elsewhere.
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems found, in the order found.
    pub fn into_errors(self) -> ConfigErrors {
        ConfigErrors(self.0)
    }

    /// `value` as an IP socket address, or a problem with `key`.
    pub fn addr(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        let parsed = value.parse().ok();
        if parsed.is_none() {
            self.fail(
                key,
                format!("not an IP socket address (e.g. 127.0.0.1:8080), got {value:?}"),
            );
        }
        parsed
    }

    /// `value` milliseconds, if > 0, or a problem with `key`.
    pub fn millis(&mut self, key: &str, value: i64) -> Option<Duration> {
        match u64::try_from(value) {
            Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => {
                self.fail(key, format!("must be > 0, got {value}"));
                None
            }
        }
    }

    /// A network prefix length between `min` and `max` bits, or a problem
    /// with `key`.
    pub fn prefix(&mut self, key: &str, value: i64, min: u8, max: u8) -> Option<u8> {
        match u8::try_from(value) {
            Ok(bits) if (min..=max).contains(&bits) => Some(bits),
            _ => {
                self.fail(key, format!("must be between {min} and {max}, got {value}"));
                None
            }
        }
    }

    /// `value`, if > 0, or a problem with `key`.
    pub fn positive(&mut self, key: &str, value: i64) -> Option<usize> {
        match usize::try_from(value) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.fail(key, format!("must be > 0, got {value}"));
                None
            }
        }
    }
}

/// Checks the sections every command reads (`[server]`, `[store]`), as
/// `rateguard rls` needs them.
pub fn validate_server_and_store(
    raw: &RawConfig,
) -> Result<(ServerConfig, StoreConfig), ConfigErrors> {
    let mut check = Check::new();
    let server = server(&mut check, &raw.server, &raw.admin);
    let store = store(&mut check, &raw.store);
    match (server, store) {
        (Some(server), Some(store)) if check.is_clean() => Ok((server, store)),
        _ => Err(check.into_errors()),
    }
}

/// Checks `[server]`, and `[admin]` (which belongs to it: the admin
/// listener's token).
pub fn server(check: &mut Check, raw: &RawServer, admin: &RawAdmin) -> Option<ServerConfig> {
    let admin_token = match &admin.token_file {
        None => Some(None),
        Some(path) => match AdminToken::read(path) {
            Ok(token) => Some(Some(token)),
            Err(message) => {
                check.fail("admin.token_file", message);
                None
            }
        },
    };
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
    // Outer `None`: invalid; inner `None`: not set (never closed for quiet).
    let upgrade_idle_timeout = match raw.upgrade_idle_timeout_ms {
        None => Some(None),
        Some(ms) => check.millis("server.upgrade_idle_timeout_ms", ms).map(Some),
    };
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
        upgrade_idle_timeout: upgrade_idle_timeout?,
        grpc_denied_status: raw.grpc_denied_status,
        admin_token: admin_token?,
    })
}

/// Checks `[store]`.
pub fn store(check: &mut Check, raw: &RawStore) -> Option<StoreConfig> {
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
                    rateguard_store::redact_url(url)
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
    // TLS files, URL schemes and Sentinel: the store crate checks its own keys.
    let access = rateguard_store::RedisAccess::from_raw(raw)
        .map_err(|issues| {
            for issue in issues {
                check.fail(issue.key, issue.message);
            }
        })
        .ok();
    let lease = lease(check, raw);
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
        lease: lease?,
    })
}

/// Longest lease period: a lease's tokens are spent within about one
/// period, and longer periods only waste more of them.
const MAX_LEASE_PERIOD_MS: i64 = 10_000;

/// Checks `store.lease_*` (`redis-leased`; checked whatever the kind, so a
/// typo never waits for a kind change to surface).
fn lease(check: &mut Check, raw: &RawStore) -> Option<LeaseOptions> {
    let period = match raw.lease_period_ms {
        ms @ 1..=MAX_LEASE_PERIOD_MS => Some(Duration::from_millis(ms.unsigned_abs())),
        ms => {
            check.fail(
                "store.lease_period_ms",
                format!("must be between 1 and {MAX_LEASE_PERIOD_MS} (milliseconds), got {ms}"),
            );
            None
        }
    };
    let hot_rate = match u32::try_from(raw.lease_hot_rate) {
        Ok(rate) => Some(rate),
        Err(_) => {
            check.fail(
                "store.lease_hot_rate",
                format!(
                    "must be between 0 (every key leases) and {} requests per second, got {}",
                    u32::MAX,
                    raw.lease_hot_rate
                ),
            );
            None
        }
    };
    let keys = check.positive("store.lease_keys", raw.lease_keys);
    Some(LeaseOptions {
        period: period?,
        hot_rate: hot_rate?,
        keys: keys?,
    })
}
