//! [`RedisAccess`]: how the Redis stores reach and trust Redis beyond the
//! URLs themselves (TLS material, Sentinel), and the `[store]` keys it
//! comes from ([`StoreKey`], [`ConfigIssue`]).

use std::path::Path;

use rateguard_contract::{RawStore, StoreKind};
use redis::IntoConnectionInfo;

use crate::TlsOptions;

/// The TLS scheme of a store URL.
const TLS_SCHEME: &str = "rediss://";
/// The plain scheme of a store URL.
const PLAIN_SCHEME: &str = "redis://";

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
    /// The TLS keys, which only mean something with `rediss://` URLs.
    const TLS: [Self; 4] = [
        Self::TlsCaFile,
        Self::TlsCertFile,
        Self::TlsKeyFile,
        Self::TlsInsecureSkipVerify,
    ];

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

    /// A problem with this key.
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

impl RedisAccess {
    /// Checks the `[store]` keys that decide how the Redis stores connect
    /// and reads the files they name: the TLS keys only with `rediss://`
    /// URLs (all URLs one scheme), readable, parseable PEM, the client
    /// certificate and key together and matching; `sentinel_master` only
    /// with `redis-lua`/`redis-pipelined`; every URL parseable. Each
    /// problem names its key and value (URLs with their password redacted).
    ///
    /// `urls` being empty or of another scheme is the caller's check.
    pub fn from_raw(raw: &RawStore) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let set = |key: StoreKey| match key {
            StoreKey::TlsCaFile => raw.tls_ca_file.is_some(),
            StoreKey::TlsCertFile => raw.tls_cert_file.is_some(),
            StoreKey::TlsKeyFile => raw.tls_key_file.is_some(),
            StoreKey::TlsInsecureSkipVerify => raw.tls_insecure_skip_verify,
            StoreKey::SentinelMaster => raw.sentinel_master.is_some(),
            StoreKey::Urls => !raw.urls.is_empty(),
        };
        if !raw.kind.needs_server() {
            for key in StoreKey::TLS.into_iter().chain([StoreKey::SentinelMaster]) {
                if set(key) {
                    issues.push(key.issue(format!(
                        "only for the Redis stores, not kind {:?}",
                        raw.kind.as_str()
                    )));
                }
            }
            return finish(Self::default(), issues);
        }
        check_urls(raw, &mut issues);
        let tls_urls = raw.urls.iter().any(|u| u.starts_with(TLS_SCHEME));
        if !tls_urls {
            for key in StoreKey::TLS.into_iter().filter(|&k| set(k)) {
                issues.push(key.issue(
                    "set, but no store.urls entry is rediss:// (TLS is off); use rediss:// URLs",
                ));
            }
        }
        fn path(p: &Option<String>) -> Option<&Path> {
            p.as_deref().map(Path::new)
        }
        let tls = TlsOptions::from_files(
            path(&raw.tls_ca_file),
            path(&raw.tls_cert_file),
            path(&raw.tls_key_file),
        )
        .map_err(|found| issues.extend(found))
        .unwrap_or_default()
        .skip_verify(raw.tls_insecure_skip_verify);
        let sentinel_master = raw.sentinel_master.clone();
        if let Some(name) = &sentinel_master {
            let key = StoreKey::SentinelMaster;
            if !matches!(raw.kind, StoreKind::RedisLua | StoreKind::RedisPipelined) {
                issues.push(key.issue(format!(
                    "only for kinds redis-lua and redis-pipelined, not {:?} (a Redis Cluster has no sentinels)",
                    raw.kind.as_str()
                )));
            }
            if name.is_empty() || name.contains(char::is_whitespace) {
                issues.push(key.issue(format!(
                    "expected the master's name as the sentinels monitor it (e.g. \"mymaster\"), got {name:?}"
                )));
            }
        }
        finish(
            Self {
                tls,
                sentinel_master,
            },
            issues,
        )
    }
}

fn finish(access: RedisAccess, issues: Vec<ConfigIssue>) -> Result<RedisAccess, Vec<ConfigIssue>> {
    if issues.is_empty() {
        Ok(access)
    } else {
        Err(issues)
    }
}

/// Every `redis://`/`rediss://` URL parses, and they all use one scheme.
fn check_urls(raw: &RawStore, issues: &mut Vec<ConfigIssue>) {
    for (i, url) in raw.urls.iter().enumerate() {
        if !(url.starts_with(PLAIN_SCHEME) || url.starts_with(TLS_SCHEME)) {
            continue;
        }
        if let Err(e) = url.as_str().into_connection_info() {
            issues.push(ConfigIssue {
                key: format!("{}[{i}]", StoreKey::Urls.as_str()),
                message: format!("not a valid Redis URL: {e}, got {:?}", redact_url(url)),
            });
        }
    }
    let tls = raw
        .urls
        .iter()
        .filter(|u| u.starts_with(TLS_SCHEME))
        .count();
    let plain = raw
        .urls
        .iter()
        .filter(|u| u.starts_with(PLAIN_SCHEME))
        .count();
    if tls > 0 && plain > 0 {
        issues.push(StoreKey::Urls.issue(format!(
            "mixes {plain} redis:// and {tls} rediss:// URLs; use rediss:// for all (TLS) or for none"
        )));
    }
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
/// assert_eq!(redact_url("http://h:1/@team"), "http://h:1/@team");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // In a Redis URL, up to the last `@` anywhere: a password with an
    // unescaped `/`, `?` or `#` must not end the authority early and leak
    // (a Redis URL's path is a database number, never an `@`). Elsewhere
    // (`http://`), the authority ends at the first `/`.
    let authority_end = match scheme.starts_with("redis") {
        true => rest.len(),
        false => rest.find('/').unwrap_or(rest.len()),
    };
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
