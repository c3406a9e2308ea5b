//! The start-up log line: the effective config, passwords redacted.

use rateguard_runtime::{redact_url, Listeners};
use rateguard_store::StoreKind;

use crate::config::ValidConfig;

/// Logs the effective config (passwords in URLs redacted) at `info`.
pub(super) fn log_startup(listeners: &Listeners, config: &ValidConfig, store: StoreKind) {
    let public = listeners.public.local_addr().ok();
    let admin = listeners.admin.local_addr().ok();
    let urls: Vec<String> = config.store.urls.iter().map(|u| redact_url(u)).collect();
    let policies: Vec<String> = config.policies.iter().map(|p| p.summary()).collect();
    tracing::info!(
        listen = ?public,
        admin_listen = ?admin,
        replica_id = %config.server.replica_id,
        upstream = %config.upstream.url,
        store = store.as_str(),
        store_urls = ?urls,
        store_timeout = ?config.store.timeout,
        on_error = %config.store.on_error,
        deny_cache = ?config.store.deny_cache,
        api_key_header = %config.identity.api_key_header,
        trusted_proxies = ?config.identity.trusted_proxies,
        policies = ?policies,
        "Gateway started."
    );
}
