//! [`RedisAccess`]: how the Redis stores reach and trust Redis beyond the
//! URLs themselves (TLS material, Sentinel), and the `[store]` keys it
//! comes from ([`StoreKey`], [`ConfigIssue`]).

use crate::TlsOptions;

/// The `[store]` keys this crate checks itself; a [`ConfigIssue`] names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKey {
    /// `store.urls`.
    Urls,
    /// `store.tls_ca_file`.
    TlsCaFile,
    /// `store.tls_cert_file`.
    TlsCertFile,
    /// `store.tls_key_file`.
    TlsKeyFile,
    /// `store.tls_insecure_skip_verify`.
    TlsInsecureSkipVerify,
    /// `store.sentinel_master`.
    SentinelMaster,
}

impl StoreKey {
    /// The key as a config file spells it, with its section.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urls => "store.urls",
            Self::TlsCaFile => "store.tls_ca_file",
            Self::TlsCertFile => "store.tls_cert_file",
            Self::TlsKeyFile => "store.tls_key_file",
            Self::TlsInsecureSkipVerify => "store.tls_insecure_skip_verify",
            Self::SentinelMaster => "store.sentinel_master",
        }
    }

    pub(crate) fn issue(self, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            key: self.as_str().to_owned(),
            message: message.into(),
        }
    }
}

/// One problem with a `[store]` key: the key (`store.tls_ca_file`,
/// `store.urls[1]`) and what is wrong, naming the offending value (never a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigIssue {
    /// The key, with its section and index if any.
    pub key: String,
    /// What is wrong with its value.
    pub message: String,
}

/// The checked `[store]` settings that decide how the Redis stores connect,
/// beyond `urls`: TLS for `rediss://` URLs, and the Sentinel master name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisAccess {
    /// Certificates for `rediss://` URLs (default: the system roots).
    pub tls: TlsOptions,
    /// `redis-lua` and `redis-pipelined`: `urls` are sentinels, and the
    /// store talks to the master they name under this name, following
    /// failovers.
    pub sentinel_master: Option<String>,
}

/// `url` with its password replaced by `***`, for logs, errors and
/// `/config` (`rediss://app:s3cret@h:6380` → `rediss://app:***@h:6380`).
///
/// ```
/// use rateguard_store::redact_url;
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// assert_eq!(redact_url("redis://:s3cret@h:1/0"), "redis://:***@h:1/0");
/// assert_eq!(redact_url("rediss://u:p@w@h:1"), "rediss://u:***@h:1");
/// assert_eq!(redact_url("redis://u:a/b?c@h:1"), "redis://u:***@h:1");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` anywhere: a password with an unescaped `/`, `?` or `#`
    // must not end the authority early and leak (over-redacting a rare
    // `@` in a query is harmless).
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}
