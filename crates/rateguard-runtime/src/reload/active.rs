//! [`ActiveConfig`]: the config a process runs on, as `GET /config` shows
//! it, and its hash.

use rateguard_contract::RawConfig;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::redact_url;

/// The running config with secrets redacted (passwords in store and
/// upstream URLs; API keys are never shown, only how many and a digest),
/// and the SHA-256 of it in hex.
///
/// The hash leaves out what differs between replicas by design
/// (`server.replica_id`, `server.listen`, `server.admin_listen`), so
/// replicas running the same file report the same hash, and a rollout can
/// be checked by comparing `rateguard_config_info{hash}` across them.
#[derive(Debug, Clone)]
pub struct ActiveConfig {
    raw: RawConfig,
    config: Value,
    hash: String,
}

impl ActiveConfig {
    /// The view of `raw` (the file with its overrides applied).
    pub fn new(raw: &RawConfig) -> Self {
        Self::with_files(raw, Map::new())
    }

    /// The view of `raw` and of the files it names that the process read
    /// (`files`, by config key: `identity.api_keys_file`, `rls.limits`),
    /// shown under `"files"` as given (so already redacted) and hashed
    /// with the rest: a changed file is a changed config.
    pub fn with_files(raw: &RawConfig, files: Map<String, Value>) -> Self {
        let mut shown = raw.clone();
        shown.store.urls = shown.store.urls.iter().map(|u| redact_url(u)).collect();
        shown.upstream.url = redact_url(&shown.upstream.url);
        let mut hashed = shown.clone();
        hashed.server.replica_id = None;
        hashed.server.listen.clear();
        hashed.server.admin_listen.clear();
        let with_files = |raw: &RawConfig| {
            let mut value = serde_json::to_value(raw).unwrap_or(Value::Null);
            if let (Value::Object(map), false) = (&mut value, files.is_empty()) {
                map.insert("files".into(), Value::Object(files.clone()));
            }
            value
        };
        // Struct fields serialize in declaration order and maps in key
        // order: the bytes, and so the hash, depend on the values only.
        let bytes = serde_json::to_vec(&with_files(&hashed)).unwrap_or_default();
        Self {
            raw: raw.clone(),
            config: with_files(&shown),
            hash: hex::encode(Sha256::digest(&bytes)),
        }
    }

    /// The config as read (secrets included: never shown), to tell what
    /// the next reload changes.
    pub fn raw(&self) -> &RawConfig {
        &self.raw
    }

    /// The hash, 64 hex digits.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// `{"hash": "<hex>", "config": {...}}`, the body of `GET /config`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "hash": self.hash, "config": self.config })
    }
}

/// What `/config` shows of a set of API-key digests: how many, and the
/// SHA-256 of the sorted digests (never a key or a digest itself).
pub fn api_keys_summary<'a>(digests: impl IntoIterator<Item = &'a [u8; 32]>) -> Value {
    let mut sorted: Vec<&[u8; 32]> = digests.into_iter().collect();
    sorted.sort_unstable();
    let mut hasher = Sha256::new();
    for digest in &sorted {
        hasher.update(digest);
    }
    serde_json::json!({ "keys": sorted.len(), "sha256": hex::encode(hasher.finalize()) })
}
