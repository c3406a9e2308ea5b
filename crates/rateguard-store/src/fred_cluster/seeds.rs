//! `fred-cluster`'s seed URLs as fred takes them, and the refusals at
//! start that no retry can fix.

use fred::prelude::{Config, Error as FredError, ErrorKind, Server};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::access::redact_url;
use crate::StoreError;

/// The seed nodes of `urls`, whether they use TLS, and the first URL's
/// credentials.
pub(super) struct Seeds {
    pub(super) hosts: Vec<Server>,
    pub(super) tls: bool,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
}

impl Seeds {
    pub(super) fn parse(urls: &[String]) -> Result<Self, StoreError> {
        let mut seeds = Self {
            hosts: Vec::new(),
            tls: false,
            username: None,
            password: None,
        };
        for (i, url) in urls.iter().enumerate() {
            // Parsed as plain: fred would build its own TLS connector for
            // `rediss://` (system roots only); the store supplies its own.
            let (tls, plain) = match url.strip_prefix("rediss://") {
                Some(rest) => (true, format!("redis://{rest}")),
                None => (false, url.clone()),
            };
            let config = Config::from_url_clustered(&plain).map_err(|e| {
                StoreError::Backend(format!("invalid Redis URL {:?}: {e}", redact_url(url)))
            })?;
            seeds.tls |= tls;
            seeds.hosts.extend(config.server.hosts());
            if i == 0 {
                seeds.username = config.username;
                seeds.password = config.password;
            }
        }
        if seeds.hosts.is_empty() {
            return Err(StoreError::Backend(
                "no Redis Cluster URL configured".into(),
            ));
        }
        Ok(seeds)
    }
}

/// Why the cluster refused us for good, if it did: credentials, an ACL
/// permission, or a TLS certificate. fred reports TLS failures as text
/// (the rustls error's name), so that is what is matched.
pub(super) fn refusal(err: &FredError, seed: &str) -> Option<String> {
    let details = err.details();
    if *err.kind() == ErrorKind::Auth
        || details.starts_with("WRONGPASS")
        || details.starts_with("NOAUTH")
    {
        return Some(format!(
            "Redis Cluster at {seed} refused the credentials ({err}); check the user and password in store.urls"
        ));
    }
    if details.starts_with("NOPERM") {
        return Some(format!(
            "Redis Cluster at {seed}: the ACL user lacks a permission the store needs ({err}); \
             grant it +@scripting +@read +@write +@connection (or +@all)"
        ));
    }
    const CERTIFICATE: [&str; 4] = [
        "InvalidCertificate",
        "NoCertificatesPresented",
        "AlertReceived(BadCertificate",
        "AlertReceived(UnknownCA",
    ];
    let tls = *err.kind() == ErrorKind::Tls || CERTIFICATE.iter().any(|c| details.contains(c));
    tls.then(|| {
        format!(
            "TLS handshake with {seed} failed ({err}); check store.tls_ca_file (and \
             store.tls_cert_file/tls_key_file if the servers require a client certificate)"
        )
    })
}

/// The first error fred reports (connecting, in the background) that
/// [`refusal`] says no retry can fix; never ends otherwise.
pub(super) async fn first_refusal(
    errors: &mut broadcast::Receiver<(FredError, Option<Server>)>,
    seed: &str,
) -> String {
    loop {
        match errors.recv().await {
            Ok((e, _)) => {
                if let Some(cause) = refusal(&e, seed) {
                    return cause;
                }
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
