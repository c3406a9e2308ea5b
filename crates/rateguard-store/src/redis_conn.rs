//! The redis-rs connection of `redis-lua` and `redis-pipelined`
//! ([`RedisConn`]): a self-reconnecting `ConnectionManager` on `urls[0]`
//! (plain or `rediss://`, with its ACL user), or on the master a set of
//! sentinels names (`sentinel`), and the error handling both stores share:
//! one more attempt after a refused connection, and the refusals no retry
//! can fix (wrong password, untrusted certificate), which fail at start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind};

use crate::access::redact_url;
use crate::breaker::Breaker;
use crate::script::{self, SCRIPT};
use crate::{tls, RedisOptions, StoreError};

mod sentinel;

use sentinel::SentinelMaster;

/// The connection a standalone Redis store sends its commands on.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) enum RedisConn {
    /// `urls[0]` itself.
    Direct(ConnectionManager),
    /// The master that the sentinels in `urls` name, followed across failovers.
    Sentinel(Arc<SentinelMaster>),
}

impl RedisConn {
    /// A lazily connecting, self-reconnecting connection to `opts.urls[0]`,
    /// or (with `sentinel_master`) to the master the sentinels in
    /// `opts.urls` name. `breaker` is the store's: a switch to a new master
    /// ends its cooldown. Fails only on a malformed URL.
    pub(crate) fn new(opts: &RedisOptions, breaker: &Arc<Breaker>) -> Result<Self, StoreError> {
        let url = opts
            .urls
            .first()
            .ok_or_else(|| StoreError::Backend("no Redis URL configured".to_owned()))?;
        warn_if_insecure(opts);
        Ok(match &opts.access.sentinel_master {
            None => Self::Direct(connection_manager(client(url, opts)?, opts)?),
            Some(name) => Self::Sentinel(SentinelMaster::new(name, opts, breaker)?),
        })
    }

    /// The connection to send the next command on; with Sentinel, an
    /// error until a master is known.
    pub(crate) fn get(&self) -> Result<ConnectionManager, StoreError> {
        match self {
            Self::Direct(manager) => Ok(manager.clone()),
            Self::Sentinel(master) => master.current(),
        }
    }

    /// Records how a call went: with Sentinel, an unreachable or demoted
    /// master makes the store ask the sentinels again (in the background).
    pub(crate) fn observe<T>(&self, result: &Result<T, StoreError>) {
        if let (Self::Sentinel(master), Err(StoreError::Unavailable(_) | StoreError::Timeout(_))) =
            (self, result)
        {
            master.recheck();
        }
    }

    /// Loads the script, so the first decision pays no set-up cost (with
    /// Sentinel, after asking the sentinels for the master). A Redis that is
    /// down or slow is logged and retried later; a refusal no retry can fix
    /// (credentials, certificate, ACL permission) is an error, so a
    /// misconfigured gateway fails at start, naming the cause.
    pub(crate) async fn warm_up(&self, opts: &RedisOptions) -> Result<(), StoreError> {
        let url = opts.urls.first().map_or("", String::as_str);
        if let Self::Sentinel(master) = self {
            master.resolve_at_start().await?;
        }
        let Ok(mut conn) = self.get() else {
            return Ok(());
        };
        let load = SCRIPT.load_async(&mut conn);
        match tokio::time::timeout(opts.timeout.max(Duration::from_secs(1)), load).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => match refusal(&e, &redact_url(url)) {
                Some(cause) => Err(StoreError::Backend(cause)),
                None => {
                    tracing::warn!(error = %e, url = %redact_url(url), "Redis not ready at start; will retry.");
                    Ok(())
                }
            },
            Err(_) => {
                tracing::warn!(url = %redact_url(url), "Redis did not answer at start; will retry.");
                Ok(())
            }
        }
    }
}

/// Logs, once per store at start, that certificates are not verified.
pub(crate) fn warn_if_insecure(opts: &RedisOptions) {
    let tls = opts.urls.iter().any(|u| u.starts_with("rediss://"));
    if tls && opts.access.tls.insecure_skip_verify() {
        tracing::warn!(
            "store.tls_insecure_skip_verify = true: the Redis server's certificate is NOT verified; \
             anyone on the network path can impersonate it. Use store.tls_ca_file instead."
        );
    }
}

/// A redis-rs client for `url`: `rediss://` with the configured CA,
/// client certificate and verification; the URL's user and password are
/// sent with `AUTH` on every connection.
pub(crate) fn client(url: &str, opts: &RedisOptions) -> Result<redis::Client, StoreError> {
    let invalid = |e: RedisError| {
        StoreError::Backend(format!("invalid Redis URL {:?}: {e}", redact_url(url)))
    };
    client_for(url.into_connection_info().map_err(invalid)?, opts).map_err(invalid)
}

/// A redis-rs client for `info`, with the TLS settings of `opts` if its
/// address is TLS.
pub(crate) fn client_for(
    info: redis::ConnectionInfo,
    opts: &RedisOptions,
) -> redis::RedisResult<redis::Client> {
    let tls = &opts.access.tls;
    let info = match info.addr().clone() {
        ConnectionAddr::TcpTls { host, port, .. } if tls.insecure_skip_verify() => {
            info.set_addr(ConnectionAddr::TcpTls {
                host,
                port,
                insecure: true,
                tls_params: None,
            })
        }
        _ => info,
    };
    let is_tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    tls::provider();
    match tls.redis_certificates() {
        Some(certificates) if is_tls => redis::Client::build_with_tls(info, certificates),
        _ => redis::Client::open(info),
    }
}

/// A `ConnectionManager` on `client`, connecting on first use.
pub(crate) fn connection_manager(
    client: redis::Client,
    opts: &RedisOptions,
) -> Result<ConnectionManager, StoreError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(opts.timeout))
        .set_response_timeout(Some(opts.timeout))
        // One attempt per (re)connection: the breaker does the backing off,
        // so a dead Redis sees one connection attempt per probe
        // (`retry_refused` adds the reconnect that its failure starts).
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| StoreError::Backend(format!("Redis client: {e}")))
}

/// Why Redis refused us for good, if it did: wrong or missing credentials,
/// a missing ACL permission, or a TLS certificate either side rejects. The
/// message names the cause, `at` (already redacted) and the `[store]` key
/// to fix, never the password.
pub(crate) fn refusal(err: &RedisError, at: &str) -> Option<String> {
    let auth = err.kind() == ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS"));
    if auth {
        return Some(format!(
            "Redis at {at} refused the credentials ({err}); check the user and password in store.urls"
        ));
    }
    if err.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) {
        return Some(format!(
            "Redis at {at}: the ACL user lacks a permission the store needs ({err}); \
             grant it +@scripting +@read +@write (or +@all)"
        ));
    }
    tls::certificate_error(err).map(|cause| {
        format!(
            "TLS handshake with {at} failed: {cause}; check store.tls_ca_file (and \
             store.tls_cert_file/tls_key_file if the server requires a client certificate)"
        )
    })
}

/// `PING` through `conn`, bounded by the breaker and the timeout.
pub(crate) async fn ping(
    conn: &RedisConn,
    breaker: &Breaker,
    timeout: Duration,
) -> Result<(), StoreError> {
    let result = breaker
        .call(
            timeout,
            retry_refused(conn, timeout, |mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            }),
        )
        .await
        .map(drop);
    conn.observe(&result);
    result
}

/// Runs `attempt` on `conn` once more if its connection was refused,
/// mapping the outcome to a [`StoreError`] (a timeout as `timeout`).
///
/// A refused connection sent nothing, so the second attempt cannot spend
/// twice. It is what makes a probe reconnect eagerly: `ConnectionManager`
/// hands every caller the outcome of its latest connection attempt and
/// starts a new one when that failed, so after an outage the first call
/// gets the refusal from when Redis was still down; measured (see
/// `tests/redis_stores/recovery.rs`), that cost a whole extra breaker
/// cooldown. The second attempt waits for the fresh connection instead.
pub(crate) async fn retry_refused<T, F, Fut>(
    conn: &RedisConn,
    timeout: Duration,
    attempt: F,
) -> Result<T, StoreError>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let result = match attempt(conn.get()?).await {
        Err(e) if e.is_connection_refusal() => attempt(conn.get()?).await,
        other => other,
    };
    // The caller's breaker bounds both attempts by the one `timeout`.
    result.map_err(|e| script::from_redis(&e, timeout))
}
