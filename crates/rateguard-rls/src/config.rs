//! `rateguard rls`'s view of the config file: `[server]` and `[store]` as
//! `serve` checks them, and `[rls]` with its limits files loaded.

use std::path::{Path, PathBuf};

use rateguard_contract::{RawConfig, ResponseHeaders};
use rateguard_runtime::config::{validate_server_and_store, ServerConfig, StoreConfig};
use rateguard_runtime::reload::ActiveConfig;
use rateguard_runtime::{ConfigError, ConfigErrors, DecideOptions};

use crate::limits::Limits;

/// How the service treats the store and what it adds to answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsOptions {
    /// How the decision layer treats the store: `store.timeout_ms`,
    /// `on_error`, `replicas_hint`, `deny_cache`.
    pub store: DecideOptions,
    /// `[rls] response_headers`.
    pub response_headers: ResponseHeaders,
    /// `server.replica_id` (reported by the admin listener).
    pub replica_id: String,
}

/// A checked `rls` configuration.
#[derive(Debug)]
pub struct RlsConfig {
    /// `[server]`: `listen` is the gRPC listener.
    pub server: ServerConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// The limits files, resolved against the config file's directory.
    pub limit_files: Vec<PathBuf>,
    /// Their contents.
    pub limits: Limits,
    /// `[rls] response_headers`.
    pub response_headers: ResponseHeaders,
    /// The file as read (overrides applied), for `GET /config` and for
    /// telling what a reload changed.
    pub raw: RawConfig,
}

impl RlsConfig {
    /// How the service treats the store and what it adds to answers.
    pub fn options(&self) -> RlsOptions {
        RlsOptions {
            store: DecideOptions::from(&self.store),
            response_headers: self.response_headers,
            replica_id: self.server.replica_id.clone(),
        }
    }

    /// `GET /config`'s view: the file (passwords redacted) and the limits
    /// files' texts under `files."rls.limits"`, hashed together.
    pub fn active(&self) -> ActiveConfig {
        let texts: serde_json::Map<String, serde_json::Value> = self
            .limits
            .sources()
            .iter()
            .map(|(file, text)| (file.clone(), text.clone().into()))
            .collect();
        let mut files = serde_json::Map::new();
        files.insert("rls.limits".into(), texts.into());
        ActiveConfig::with_files(&self.raw, files)
    }

    /// The limits and [`active`](Self::active), taken apart.
    pub fn active_parts(self) -> (Limits, ActiveConfig) {
        let active = self.active();
        (self.limits, active)
    }
}

/// Checks `[server]`, `[store]` and `[rls]` of `raw` and loads the limits
/// files (relative paths from `base_dir`); every problem found. Limits
/// file problems are reported under `rls.limits`.
pub fn validate(raw: &RawConfig, base_dir: &Path) -> Result<RlsConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let shared = validate_server_and_store(raw).map_err(|e| errors.extend(e.0));
    let limit_files: Vec<PathBuf> = raw.rls.limits.iter().map(|f| base_dir.join(f)).collect();
    let limits = if limit_files.is_empty() {
        errors.push(ConfigError::invalid(
            "rls.limits",
            "must name at least one limits file (envoyproxy/ratelimit's YAML format)",
        ));
        None
    } else {
        match Limits::load_files(&limit_files) {
            Ok(limits) => Some(limits),
            Err(problems) => {
                errors.extend(
                    problems
                        .0
                        .iter()
                        .map(|p| ConfigError::invalid("rls.limits", p.to_string())),
                );
                None
            }
        }
    };
    match (shared, limits) {
        (Ok((server, store)), Some(limits)) if errors.is_empty() => Ok(RlsConfig {
            server,
            store,
            limit_files,
            limits,
            response_headers: raw.rls.response_headers,
            raw: raw.clone(),
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

#[cfg(test)]
mod tests {
    use rateguard_contract::OnError;

    use super::*;

    fn raw(text: &str) -> RawConfig {
        rateguard_runtime::config::from_toml(text).unwrap()
    }

    #[test]
    fn upstream_and_policies_may_be_absent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("edge.yaml"), "domain: edge\n").unwrap();
        let config = validate(
            &raw("[rls]\nlimits = [\"edge.yaml\"]\nresponse_headers = \"ietf\"\n"),
            dir.path(),
        )
        .unwrap();
        assert!(config.limits.has_domain("edge"));
        assert_eq!(config.response_headers, ResponseHeaders::Ietf);
        assert_eq!(config.options().store.on_error, OnError::Allow);
    }

    #[test]
    fn problems_in_every_section_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "domain: d\nextra: 1\n").unwrap();
        let errors = validate(
            &raw("[store]\ntimeout_ms = 0\n[rls]\nlimits = [\"bad.yaml\", \"missing.yaml\"]\n"),
            dir.path(),
        )
        .unwrap_err();
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        let bad = dir.path().join("bad.yaml");
        let missing = dir.path().join("missing.yaml");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], "store.timeout_ms: must be > 0, got 0");
        assert!(
            lines[1].starts_with(&format!("rls.limits: {}: cannot read", missing.display())),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            format!(
                "rls.limits: {}: extra: unknown key \"extra\", expected one of domain, descriptors",
                bad.display()
            )
        );
        let none = validate(&raw(""), dir.path()).unwrap_err();
        assert_eq!(
            none.to_string(),
            "rls.limits: must name at least one limits file (envoyproxy/ratelimit's YAML format)"
        );
    }
}
