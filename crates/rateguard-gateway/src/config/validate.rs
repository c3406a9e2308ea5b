//! [`RawConfig::validate`]: every check in one pass, into a [`ValidConfig`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::header::HeaderName;
use http::uri::{Authority, Uri};
use ipnet::IpNet;
use rateguard_core::Quota;

use super::{
    OnError, RawConfig, RawIdentity, RawPolicy, RawServer, RawStore, RawUpstream, RuntimeMode,
    StoreKind,
};
use crate::error::{ConfigError, ConfigErrors};

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Listeners and replica identity.
    pub server: ServerConfig,
    /// The backend.
    pub upstream: UpstreamConfig,
    /// The bucket store.
    pub store: StoreConfig,
    /// Client identification.
    pub identity: IdentityConfig,
    /// Policies in file order.
    pub policies: Vec<PolicyConfig>,
}

/// `[server]`, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Value of `X-RateGuard-Replica`.
    pub replica_id: String,
    /// Drain bound on shutdown.
    pub shutdown_grace: Duration,
    /// Connection limit.
    pub max_connections: usize,
    /// How the binary runs its async runtime(s).
    pub runtime: RuntimeMode,
    /// Runtime threads (0 = one per core).
    pub threads: usize,
}

/// `[upstream]`, checked.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The URL as written.
    pub url: String,
    /// `host:port` requests are sent to.
    pub authority: Authority,
    /// Path prepended to every request path (`""` for none).
    pub base_path: String,
    /// Time allowed for response headers.
    pub timeout: Duration,
    /// Idle pooled connections kept.
    pub pool_max_idle: usize,
}

/// `[store]`, checked.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The kind.
    pub kind: StoreKind,
    /// Redis URLs (empty for memory).
    pub urls: Vec<String>,
    /// Budget of one decision.
    pub timeout: Duration,
    /// Failure rule.
    pub on_error: OnError,
    /// Pipelined store: most decisions per pipeline.
    pub batch_max: usize,
    /// Pipelined store: how long a batch waits to fill.
    pub batch_wait: Duration,
    /// Redis stores: longest pause between probes of a failing store.
    pub breaker_max_cooldown: Duration,
}

/// `[identity]`, checked.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The API-key header.
    pub api_key_header: HeaderName,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// One policy, checked.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Name (1-64 of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// Path prefix; `None` for the default policy.
    pub path_prefix: Option<String>,
    /// Bucket shape.
    pub quota: Quota,
    /// Shadow mode (`shadow = true`): the bucket is evaluated and consumed
    /// as usual, but a denial is only counted (`decision="shadow_denied"`)
    /// and the request is forwarded, for rolling out a new limit safely.
    pub shadow: bool,
}

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
            })
        }
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
        runtime: raw.runtime,
        threads: threads?,
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
                format!("expected a redis:// or rediss:// URL, got {url:?}"),
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
    Some(StoreConfig {
        kind: raw.kind,
        urls: raw.urls.clone(),
        timeout: timeout?,
        on_error: raw.on_error,
        batch_max: batch_max?,
        batch_wait: batch_wait?,
        breaker_max_cooldown: breaker_max_cooldown?,
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
    Some(IdentityConfig {
        api_key_header: header?,
        trusted_proxies: nets,
    })
}

fn policies(check: &mut Check, raw: &[RawPolicy]) -> Option<Vec<PolicyConfig>> {
    if raw.is_empty() {
        check.fail("policies", "at least one [[policies]] entry is required");
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut defaults = 0;
    for (i, p) in raw.iter().enumerate() {
        let key = format!("policies[{i}]");
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        if !plain(&p.name) {
            check.fail(
                format!("{key}.name"),
                format!(
                    "must be 1-64 characters of A-Z a-z 0-9 _ . -, got {:?}",
                    p.name
                ),
            );
        } else if raw[..i].iter().any(|q| q.name == p.name) {
            check.fail(
                format!("{key}.name"),
                format!("duplicate policy name {:?}", p.name),
            );
        }
        match &p.path_prefix {
            None => {
                defaults += 1;
                if defaults > 1 {
                    check.fail(
                        format!("{key}.path_prefix"),
                        "missing; only one policy may be the default (without path_prefix)",
                    );
                }
            }
            Some(prefix) if !prefix.starts_with('/') => check.fail(
                format!("{key}.path_prefix"),
                format!("must start with '/', got {prefix:?}"),
            ),
            Some(prefix)
                if raw[..i]
                    .iter()
                    .any(|q| q.path_prefix.as_ref() == Some(prefix)) =>
            {
                check.fail(
                    format!("{key}.path_prefix"),
                    format!("duplicate path_prefix {prefix:?}"),
                )
            }
            Some(_) => {}
        }
        let quota = if p.capacity <= 0 {
            check.fail(
                format!("{key}.capacity"),
                format!("must be > 0, got {}", p.capacity),
            );
            None
        } else if !p.refill_per_sec.is_finite() || p.refill_per_sec <= 0.0 {
            check.fail(
                format!("{key}.refill_per_sec"),
                format!("must be a finite number > 0, got {}", p.refill_per_sec),
            );
            None
        } else {
            match Quota::new(p.capacity as u64, p.refill_per_sec) {
                Ok(q) => Some(q),
                Err(e) => {
                    check.fail(key.clone(), e.to_string());
                    None
                }
            }
        };
        if let Some(quota) = quota {
            out.push(PolicyConfig {
                name: p.name.clone(),
                path_prefix: p.path_prefix.clone(),
                quota,
                shadow: p.shadow,
            });
        }
    }
    Some(out)
}
