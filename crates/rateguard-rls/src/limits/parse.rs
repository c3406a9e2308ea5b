//! YAML text → [`Limits`], checking every key.
//!
//! The keys are envoyproxy/ratelimit's. Those that only change how its
//! stats are named (`detailed_metric`, `value_to_metric`) are accepted and
//! have no effect (RateGuard labels metrics by rule, see `metrics`); those
//! that change what is limited and that RateGuard does not implement
//! (`quota_mode`, `share_threshold`, `metadata`) are errors, so nothing is
//! silently enforced differently.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

use super::{Level, Limit, Limits, LimitsError, LimitsErrors, Node, Pattern, Rule, RuleKind};
use crate::unit::Unit;

const ROOT_KEYS: &[&str] = &["domain", "descriptors"];
const DESCRIPTOR_KEYS: &[&str] = &[
    "key",
    "value",
    "rate_limit",
    "descriptors",
    "shadow_mode",
    "detailed_metric",
    "value_to_metric",
];
const RATE_LIMIT_KEYS: &[&str] = &["name", "unit", "requests_per_unit", "unlimited", "replaces"];
const REPLACES_KEYS: &[&str] = &["name"];
/// envoyproxy/ratelimit keys that change enforcement in ways RateGuard does not implement.
const UNSUPPORTED_KEYS: &[&str] = &["quota_mode", "share_threshold", "metadata"];

pub(super) fn load<N: AsRef<str>, T: AsRef<str>>(
    sources: &[(N, T)],
) -> Result<Limits, LimitsErrors> {
    let mut limits = Limits::default();
    let mut errors = Vec::new();
    let mut domain_files: HashMap<String, String> = HashMap::new();
    for (file, text) in sources {
        let file = file.as_ref();
        let mut parser = FileParser {
            file,
            errors: &mut errors,
            rules: &mut limits.rules,
        };
        let Some((domain, level)) = parser.file(text.as_ref()) else {
            continue;
        };
        match domain_files.entry(domain.clone()) {
            Entry::Occupied(first) => errors.push(LimitsError {
                file: file.to_owned(),
                path: "domain".into(),
                message: format!("duplicate domain {domain:?} (also in {})", first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(file.to_owned());
                limits.domains.insert(domain, level);
            }
        }
    }
    if errors.is_empty() {
        Ok(limits)
    } else {
        Err(LimitsErrors(errors))
    }
}

struct FileParser<'a> {
    file: &'a str,
    errors: &'a mut Vec<LimitsError>,
    rules: &'a mut Vec<Arc<Rule>>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => format!("{s:?}"),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Array(_) => "a list".into(),
        Yaml::Hash(_) => "a mapping".into(),
        Yaml::Null => "null".into(),
        Yaml::Alias(_) | Yaml::BadValue => "an unsupported value".into(),
    }
}

impl FileParser<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(LimitsError {
            file: self.file.to_owned(),
            path: path.into(),
            message: message.into(),
        });
    }

    fn file(&mut self, text: &str) -> Option<(String, Level)> {
        let docs = match YamlLoader::load_from_str(text) {
            Ok(docs) => docs,
            Err(e) => {
                self.error("", format!("invalid YAML: {e}"));
                return None;
            }
        };
        let [root] = docs.as_slice() else {
            self.error(
                "",
                format!("expected one YAML document, found {}", docs.len()),
            );
            return None;
        };
        let root = self.mapping(root, "")?;
        self.check_keys(root, "", ROOT_KEYS);
        let domain = match self.string(root, "", "domain") {
            Some(d) if !d.is_empty() => Some(d),
            Some(_) => {
                self.error("domain", "must not be empty");
                None
            }
            None => {
                self.error("domain", "missing (every limits file names its domain)");
                None
            }
        };
        let level = self.level(root, "", domain.as_deref().unwrap_or(""), "");
        Some((domain?, level))
    }

    fn mapping<'y>(&mut self, value: &'y Yaml, path: &str) -> Option<&'y Hash> {
        match value {
            Yaml::Hash(h) => Some(h),
            other => {
                let at = if path.is_empty() { "the file" } else { path };
                self.error(
                    path,
                    format!("{at} must be a mapping, got {}", describe(other)),
                );
                None
            }
        }
    }

    fn check_keys(&mut self, map: &Hash, path: &str, allowed: &[&str]) {
        for key in map.keys() {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) if UNSUPPORTED_KEYS.contains(&k) => self.error(
                    join(path, k),
                    format!("{k:?} is not supported by rateguard rls"),
                ),
                Some(k) => self.error(
                    join(path, k),
                    format!("unknown key {k:?}, expected one of {}", allowed.join(", ")),
                ),
                None => self.error(path, format!("keys must be strings, got {}", describe(key))),
            }
        }
    }

    fn get<'y>(map: &'y Hash, key: &str) -> Option<&'y Yaml> {
        map.get(&Yaml::String(key.to_owned()))
            .filter(|v| !matches!(v, Yaml::Null))
    }

    /// A scalar as text (YAML numbers are accepted, as Go's yaml does).
    fn string(&mut self, map: &Hash, path: &str, key: &str) -> Option<String> {
        match Self::get(map, key)? {
            Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
            Yaml::Integer(i) => Some(i.to_string()),
            other => {
                self.error(
                    join(path, key),
                    format!("must be a string, got {}", describe(other)),
                );
                None
            }
        }
    }

    fn bool(&mut self, map: &Hash, path: &str, key: &str) -> bool {
        match Self::get(map, key) {
            None => false,
            Some(Yaml::Boolean(b)) => *b,
            Some(other) => {
                self.error(
                    join(path, key),
                    format!("must be true or false, got {}", describe(other)),
                );
                false
            }
        }
    }

    fn list<'y>(&mut self, map: &'y Hash, path: &str, key: &str) -> &'y [Yaml] {
        match Self::get(map, key) {
            None => &[],
            Some(Yaml::Array(items)) => items,
            Some(other) => {
                self.error(
                    join(path, key),
                    format!("must be a list, got {}", describe(other)),
                );
                &[]
            }
        }
    }

    /// The `descriptors` list of `map` (at `path`) as one tree level.
    /// `prefix` is the parent descriptors' label (`key_value.key`).
    fn level(&mut self, map: &Hash, path: &str, domain: &str, prefix: &str) -> Level {
        let mut level = Level::default();
        // Where each (key, value) was first defined, for duplicate errors.
        let mut seen: HashMap<(String, Option<String>), String> = HashMap::new();
        for (i, item) in self.list(map, path, "descriptors").iter().enumerate() {
            let item_path = format!("{}[{i}]", join(path, "descriptors"));
            let Some(descriptor) = self.mapping(item, &item_path) else {
                continue;
            };
            self.check_keys(descriptor, &item_path, DESCRIPTOR_KEYS);
            let key = match self.string(descriptor, &item_path, "key") {
                Some(k) if !k.is_empty() => k,
                Some(_) => {
                    self.error(join(&item_path, "key"), "must not be empty");
                    continue;
                }
                None => {
                    self.error(
                        join(&item_path, "key"),
                        "missing (every descriptor has a key)",
                    );
                    continue;
                }
            };
            let value = self.string(descriptor, &item_path, "value");
            let label = match &value {
                Some(v) => format!("{prefix}{key}_{v}"),
                None => format!("{prefix}{key}"),
            };
            match seen.entry((key.clone(), value.clone())) {
                Entry::Occupied(first) => {
                    let shown = match &value {
                        Some(v) => format!("key {key:?} value {v:?}"),
                        None => format!("key {key:?} (no value)"),
                    };
                    self.error(
                        join(&item_path, "key"),
                        format!("duplicate descriptor {shown}, first at {}", first.get()),
                    );
                    continue;
                }
                Entry::Vacant(slot) => {
                    slot.insert(item_path.clone());
                }
            }
            let shadow = self.bool(descriptor, &item_path, "shadow_mode");
            self.bool(descriptor, &item_path, "detailed_metric");
            self.bool(descriptor, &item_path, "value_to_metric");
            let rule = Self::get(descriptor, "rate_limit").and_then(|rl| {
                self.rule(rl, &join(&item_path, "rate_limit"), domain, &label, shadow)
            });
            let children = self.level(descriptor, &item_path, domain, &format!("{label}."));
            let node = Node { rule, children };
            match value {
                None => {
                    level.any_value.insert(key, node);
                }
                Some(v) if v.contains('*') => level.patterns.push((key, Pattern::new(&v), node)),
                Some(v) => {
                    level.exact.entry(key).or_default().insert(v, node);
                }
            }
        }
        level
    }

    fn rule(
        &mut self,
        value: &Yaml,
        path: &str,
        domain: &str,
        label: &str,
        shadow: bool,
    ) -> Option<Arc<Rule>> {
        let map = self.mapping(value, path)?;
        self.check_keys(map, path, RATE_LIMIT_KEYS);
        let errors_before = self.errors.len();
        let name = self.string(map, path, "name").filter(|n| !n.is_empty());
        let unlimited = self.bool(map, path, "unlimited");
        let unit = self.string(map, path, "unit");
        let requests = Self::get(map, "requests_per_unit");
        let kind = if unlimited {
            if let Some(unit) = unit {
                self.error(
                    join(path, "unit"),
                    format!("must not be set when unlimited is true, got {unit:?}"),
                );
            }
            if let Some(requests) = requests {
                self.error(
                    join(path, "requests_per_unit"),
                    format!(
                        "must not be set when unlimited is true, got {}",
                        describe(requests)
                    ),
                );
            }
            Some(RuleKind::Unlimited)
        } else {
            let unit = match unit {
                None => {
                    self.error(join(path, "unit"), unit_expectation("missing"));
                    None
                }
                Some(u) => match Unit::parse(&u) {
                    Some(unit) => Some(unit),
                    None => {
                        self.error(join(path, "unit"), unit_expectation(&format!("{u:?}")));
                        None
                    }
                },
            };
            let requests = match requests {
                None => {
                    self.error(
                        join(path, "requests_per_unit"),
                        "missing (a number >= 0, or unlimited: true)",
                    );
                    None
                }
                Some(Yaml::Integer(n)) if u32::try_from(*n).is_ok() => Some(*n as u32),
                Some(other) => {
                    self.error(
                        join(path, "requests_per_unit"),
                        format!(
                            "must be a whole number from 0 to {}, got {}",
                            u32::MAX,
                            describe(other)
                        ),
                    );
                    None
                }
            };
            match (requests, unit) {
                (Some(requests), Some(unit)) => match Limit::new(requests, unit) {
                    Ok(limit) => Some(RuleKind::Limited(limit)),
                    Err(message) => {
                        self.error(join(path, "requests_per_unit"), message);
                        None
                    }
                },
                _ => None,
            }
        };
        let mut replaces = Vec::new();
        for (i, item) in self.list(map, path, "replaces").iter().enumerate() {
            let item_path = format!("{}[{i}]", join(path, "replaces"));
            let Some(entry) = self.mapping(item, &item_path) else {
                continue;
            };
            self.check_keys(entry, &item_path, REPLACES_KEYS);
            match self.string(entry, &item_path, "name") {
                Some(n) if n.is_empty() => {
                    self.error(join(&item_path, "name"), "must not be empty")
                }
                None => self.error(join(&item_path, "name"), "missing"),
                Some(n) if name.as_ref() == Some(&n) => self.error(
                    join(&item_path, "name"),
                    format!("a limit cannot replace itself ({n:?})"),
                ),
                Some(n) => replaces.push(n),
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        let rule = Arc::new(Rule {
            domain: domain.to_owned(),
            label: name.clone().unwrap_or_else(|| label.to_owned()),
            name,
            kind: kind?,
            shadow,
            replaces,
            index: self.rules.len(),
        });
        self.rules.push(rule.clone());
        Some(rule)
    }
}

fn unit_expectation(got: &str) -> String {
    let names: Vec<&str> = Unit::ALL.iter().map(|u| u.name()).collect();
    format!(
        "expected one of {} (or unlimited: true), got {got}",
        names.join(", ")
    )
}
