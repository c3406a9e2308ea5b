//! Overrides of single `[section]` keys (`store.timeout_ms = 75`), as the
//! binary collects them from `RATEGUARD_*` variables and flags.
//!
//! Which sections exist and which keys hold lists both come from
//! [`RawConfig`]'s defaults, so a new key or section needs no change here.

use std::sync::OnceLock;

use rateguard_contract::RawConfig;

use crate::error::ConfigError;

/// The raw config at its defaults, as a TOML table.
fn defaults() -> &'static toml::Table {
    static DEFAULTS: OnceLock<toml::Table> = OnceLock::new();
    DEFAULTS.get_or_init(|| match toml::Value::try_from(RawConfig::new("")) {
        Ok(toml::Value::Table(table)) => table,
        _ => toml::Table::new(),
    })
}

/// The sections whose keys can be overridden (`server`, `upstream`, ...):
/// every table of the file, not the `[[policies]]` array.
pub fn override_sections() -> impl Iterator<Item = &'static str> {
    defaults()
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.as_str())
}

/// Whether `section.name` holds a list (`store.urls`): an override given as
/// plain text is then split at commas.
fn is_list_key(section: &str, name: &str) -> bool {
    defaults()
        .get(section)
        .and_then(|s| s.get(name))
        .is_some_and(toml::Value::is_array)
}

/// Sets `key` (`section.name`, e.g. `store.timeout_ms`) to `value` in a parsed
/// TOML table, before [`from_table`](super::from_table) reads it.
///
/// `value` is read as a TOML value when it is one (`50`, `true`,
/// `["a", "b"]`) and as a string otherwise; for list keys, plain text is
/// split at commas. Only `[section]` keys can be overridden, not policies.
pub fn apply_override(table: &mut toml::Table, key: &str, value: &str) -> Result<(), ConfigError> {
    let Some((section, name)) = key.split_once('.') else {
        return Err(ConfigError::invalid(key, "override must be section.key"));
    };
    let list = is_list_key(section, name);
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let value = match parsed {
        Some(v) if !list || v.is_array() => v,
        _ if list => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_owned()),
    };
    let entry = table
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(section_table) = entry else {
        return Err(ConfigError::invalid(section, "expected a table"));
    };
    section_table.insert(name.to_owned(), value);
    Ok(())
}

/// Prefix of the environment variables that set config keys.
pub const ENV_PREFIX: &str = "RATEGUARD_";

/// The config key an environment variable sets: `RATEGUARD_STORE_TIMEOUT_MS`
/// → `store.timeout_ms` for the [`override_sections`]; `None` for other
/// names (`RATEGUARD_CONFIG`, `RATEGUARD_LOG_FORMAT`, `HOME`, ...). This only
/// maps names: the binary reads the environment.
pub fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    (override_sections().any(|s| s == section) && !key.is_empty())
        .then(|| format!("{section}.{key}"))
}
