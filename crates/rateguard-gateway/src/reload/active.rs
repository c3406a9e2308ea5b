//! [`ActiveConfig`]: the config a process runs on, as `GET /config` shows
//! it, and its hash.

use rateguard_contract::RawConfig;
use sha2::{Digest, Sha256};

use crate::redact_url;

/// The running config with secrets redacted (passwords in store URLs), and
/// the SHA-256 of it in hex.
///
/// The hash leaves out what differs between replicas by design
/// (`server.replica_id`, `server.listen`, `server.admin_listen`), so
/// replicas running the same file report the same hash, and a rollout can
/// be checked by comparing `rateguard_config_info{hash}` across them.
#[derive(Debug, Clone)]
pub struct ActiveConfig {
    config: serde_json::Value,
    hash: String,
}

impl ActiveConfig {
    /// The view of `raw` (the file with its overrides applied).
    pub fn new(raw: &RawConfig) -> Self {
        let mut shown = raw.clone();
        shown.store.urls = shown.store.urls.iter().map(|u| redact_url(u)).collect();
        let config = serde_json::to_value(&shown).unwrap_or(serde_json::Value::Null);
        let mut hashed = shown;
        hashed.server.replica_id = None;
        hashed.server.listen.clear();
        hashed.server.admin_listen.clear();
        // Struct fields serialize in declaration order: the bytes, and so
        // the hash, depend on the values only.
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        Self {
            config,
            hash: hex::encode(Sha256::digest(&bytes)),
        }
    }

    /// The hash, 64 hex digits.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `{"hash": "<hex>", "config": {...}}`, the body of `GET /config`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "hash": self.hash, "config": self.config })
    }
}
