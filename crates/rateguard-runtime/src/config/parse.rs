//! TOML text → table → [`RawConfig`], naming the key path of every problem;
//! the file both commands read, checked by each with its own function
//! ([`load_table_with`]).

use std::path::Path;

use serde_path_to_error::Segment;

use rateguard_contract::RawConfig;

use crate::error::{ConfigError, ConfigErrors};

/// Parses TOML text into a table (for [`apply_override`](super::apply_override)).
pub fn parse_table(text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().to_owned()))
}

/// Reads a file into a table.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    parse_table(&text)
}

/// Most keys set aside in one read before giving up.
const MAX_ERRORS: usize = 100;

/// Reads the raw structs from a table, keeping going past bad keys: a key
/// that is unknown, of the wrong type or not one of the allowed names is
/// reported with its path (`server.listn: unknown key ...`), set aside (so
/// its default applies) and reading goes on. Returns the structs when every
/// required key could be read, and every problem found.
pub fn read(table: toml::Table) -> (Option<RawConfig>, Vec<ConfigError>) {
    let mut value = toml::Value::Table(table);
    let mut errors = Vec::new();
    let mut set_aside = Vec::new();
    while errors.len() < MAX_ERRORS {
        let err = match serde_path_to_error::deserialize(value.clone()) {
            Ok(raw) => return (Some(raw), errors),
            Err(err) => err,
        };
        let path = err.path().clone();
        let error = describe(&path.to_string(), &err.into_inner().to_string());
        if let ConfigError::Invalid { key, .. } = &error {
            if set_aside.contains(key) {
                // A required key we set aside: already reported.
                break;
            }
        }
        let segments: Vec<&Segment> = path.iter().collect();
        let removed = remove(&mut value, &segments);
        errors.push(error);
        if !removed {
            break;
        }
        set_aside.push(path.to_string());
    }
    (None, errors)
}

/// One serde error as a [`ConfigError`] naming the key.
fn describe(path: &str, message: &str) -> ConfigError {
    // The TOML deserializer appends "in `key`" lines; the path says it.
    let message = message.lines().next().unwrap_or("").trim_end();
    let key = |name: &str| {
        if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ConfigError::invalid(key(missing), "required key is missing");
    }
    let message = message
        .replace("unknown field", "unknown key")
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number");
    if path == "." {
        ConfigError::Syntax(message)
    } else {
        ConfigError::invalid(path, message)
    }
}

/// Removes the table key at `path` from `value`; whether there was one.
fn remove(value: &mut toml::Value, path: &[&Segment]) -> bool {
    match (path, value) {
        ([Segment::Map { key }], toml::Value::Table(t)) => t.remove(key).is_some(),
        ([Segment::Map { key }, rest @ ..], toml::Value::Table(t)) => {
            t.get_mut(key).is_some_and(|v| remove(v, rest))
        }
        ([Segment::Seq { index }, rest @ ..], toml::Value::Array(a)) => {
            a.get_mut(*index).is_some_and(|v| remove(v, rest))
        }
        _ => false,
    }
}

/// Reads the raw structs from a table; every problem found, each naming
/// its key path.
pub fn from_table(table: toml::Table) -> Result<RawConfig, ConfigErrors> {
    match read(table) {
        (Some(raw), errors) if errors.is_empty() => Ok(raw),
        (_, errors) => Err(ConfigErrors(errors)),
    }
}

/// Reads a table and checks it with `check` (the gateway's `validate`,
/// or `rateguard rls`'s own sections): every problem found, reading and
/// checking.
pub fn load_table_with<T>(
    table: toml::Table,
    check: impl FnOnce(&RawConfig) -> Result<T, ConfigErrors>,
) -> Result<T, ConfigErrors> {
    let (raw, mut errors) = read(table);
    let checked = raw.map(|raw| check(&raw));
    match checked {
        Some(Ok(config)) if errors.is_empty() => Ok(config),
        Some(Err(more)) => {
            add_unreported(&mut errors, more);
            Err(ConfigErrors(errors))
        }
        _ => Err(ConfigErrors(errors)),
    }
}

/// Adds the problems a check found (`more`) to those [`read`] reported
/// (`errors`), except those about a key already reported: a key set aside
/// while reading was reported once, and a check that then finds it missing
/// says nothing new.
pub fn add_unreported(errors: &mut Vec<ConfigError>, more: ConfigErrors) {
    let key = |e: &ConfigError| match e {
        ConfigError::Invalid { key, .. } => Some(key.clone()),
        _ => None,
    };
    let reported: Vec<String> = errors.iter().filter_map(key).collect();
    errors.extend(
        more.0
            .into_iter()
            .filter(|e| key(e).is_none_or(|k| !reported.contains(&k))),
    );
}

/// Parses TOML text into the raw structs.
pub fn from_toml(text: &str) -> Result<RawConfig, ConfigErrors> {
    from_table(parse_table(text)?)
}
