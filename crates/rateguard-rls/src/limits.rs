//! The limits files: envoyproxy/ratelimit's YAML format, loaded into a
//! lookup tree per domain.
//!
//! A file holds one `domain` and a tree of `descriptors`; each descriptor has
//! a `key`, an optional `value` (exact, or a pattern with `*`), an optional
//! `rate_limit` and nested `descriptors`. [`Limits::find`] walks a request
//! descriptor's entries down the tree by position, as envoyproxy/ratelimit
//! does: at each level an exact `key`+`value` first, then a `value` pattern,
//! then the bare `key`; the rule applies only when the last entry lands on a
//! descriptor that has one.
//!
//! Parsing lives in `parse`; its errors ([`LimitsError`]) name the file, the
//! path inside it and the key.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rateguard_core::Quota;

use crate::unit::Unit;

mod parse;

/// One problem in a limits file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", path_prefix(.path))]
pub struct LimitsError {
    /// The file, as given in `[rls] limits`.
    pub file: String,
    /// Where in the file, e.g. `descriptors[1].rate_limit.unit` (empty for
    /// the whole file).
    pub path: String,
    /// What is wrong, with the offending value.
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Every problem found in a set of limits files, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LimitsErrors(pub Vec<LimitsError>);

/// What a matched rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `unlimited: true`: always `OK`, never reaches the store.
    Unlimited,
    /// A token bucket of `requests_per_unit` refilled over one `unit`.
    Limited(Limit),
}

/// A configured limit: `requests_per_unit` per `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The capacity, as written (0 refuses every request, like
    /// envoyproxy/ratelimit's block lists).
    pub requests_per_unit: u32,
    /// The time to refill from empty.
    pub unit: Unit,
    /// The bucket; `None` when `requests_per_unit` is 0.
    pub quota: Option<Quota>,
}

impl Limit {
    /// A limit of `requests_per_unit` per `unit`, or why it cannot be a
    /// bucket (more than one token per microsecond).
    pub fn new(requests_per_unit: u32, unit: Unit) -> Result<Self, String> {
        let quota = match std::num::NonZeroU32::new(requests_per_unit) {
            None => None,
            Some(capacity) => {
                let unit_us = unit.duration().as_micros() as u64;
                let interval =
                    (unit_us + u64::from(requests_per_unit) / 2) / u64::from(requests_per_unit);
                let quota = std::num::NonZeroU64::new(interval)
                    .and_then(|interval| Quota::from_interval(capacity, interval));
                Some(quota.ok_or_else(|| {
                    format!(
                        "{requests_per_unit} per {unit} is more than one request per microsecond"
                    )
                })?)
            }
        };
        Ok(Self {
            requests_per_unit,
            unit,
            quota,
        })
    }
}

/// A `rate_limit` block with what surrounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The domain it belongs to.
    pub domain: String,
    /// Its label in metrics: `rate_limit.name` if set, otherwise the
    /// descriptor path (`key_value.key`), as envoyproxy/ratelimit names its
    /// stats. Bounded: it comes from the file, never from a request.
    pub label: String,
    /// `rate_limit.name`, if set (what `replaces` refers to).
    pub name: Option<String>,
    /// Limited or unlimited.
    pub kind: RuleKind,
    /// `shadow_mode: true`: counted and spent, never denies.
    pub shadow: bool,
    /// Names of the rules this one replaces when both match one request.
    pub replaces: Vec<String>,
    /// Position in [`Limits::rules`] (metrics handles are indexed by it).
    pub index: usize,
}

/// The loaded limits of every domain.
#[derive(Debug, Default)]
pub struct Limits {
    domains: HashMap<String, Level>,
    rules: Vec<Arc<Rule>>,
    /// `(file name, YAML text)` as read by [`Limits::load_files`].
    sources: Vec<(String, String)>,
}

/// One level of a descriptor tree.
#[derive(Debug, Default)]
struct Level {
    /// `key` → exact `value` → descriptor.
    exact: HashMap<String, HashMap<String, Node>>,
    /// Descriptors whose `value` has a `*`, in file order.
    patterns: Vec<(String, Pattern, Node)>,
    /// Descriptors with a `key` and no `value`.
    any_value: HashMap<String, Node>,
}

#[derive(Debug, Default)]
struct Node {
    rule: Option<Arc<Rule>>,
    children: Level,
}

/// A `value` with `*` wildcards, each matching any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    fn new(value: &str) -> Self {
        Self {
            parts: value.split('*').map(str::to_owned).collect(),
        }
    }

    fn matches(&self, value: &str) -> bool {
        let (first, rest) = self.parts.split_first().expect("split yields one part");
        let Some((last, middle)) = rest.split_last() else {
            return value == first;
        };
        let Some(mut inner) = value.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some(stripped) = inner.strip_suffix(last.as_str()) else {
            return false;
        };
        inner = stripped;
        for part in middle {
            match inner.find(part.as_str()) {
                Some(at) => inner = &inner[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

impl Limits {
    /// Loads and checks every file; all problems at once, in file order.
    pub fn load_files<P: AsRef<Path>>(files: &[P]) -> Result<Self, LimitsErrors> {
        let mut sources = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for file in files {
            let file = file.as_ref();
            match std::fs::read_to_string(file) {
                Ok(text) => sources.push((file.display().to_string(), text)),
                Err(e) => errors.push(LimitsError {
                    file: file.display().to_string(),
                    path: String::new(),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        match Self::load_sources(&sources) {
            Ok(mut limits) if errors.is_empty() => {
                limits.sources = sources;
                Ok(limits)
            }
            Ok(_) => Err(LimitsErrors(errors)),
            Err(LimitsErrors(more)) => {
                errors.extend(more);
                Err(LimitsErrors(errors))
            }
        }
    }

    /// Loads `(file name, YAML text)` pairs (the name is only for errors).
    pub fn load_sources<N: AsRef<str>, T: AsRef<str>>(
        sources: &[(N, T)],
    ) -> Result<Self, LimitsErrors> {
        parse::load(sources)
    }

    /// The files these limits were read from, `(file name, YAML text)`,
    /// in order (empty for [`load_sources`](Self::load_sources)).
    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }

    /// The domains, in no particular order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// Whether `domain` is configured.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.contains_key(domain)
    }

    /// Every rule, indexed by [`Rule::index`].
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The rule for a request descriptor's `(key, value)` entries in
    /// `domain`, or `None` when nothing matches at the entries' depth.
    pub fn find<'a, I>(&self, domain: &str, entries: I) -> Option<&Arc<Rule>>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut level = self.domains.get(domain)?;
        let mut entries = entries.into_iter().peekable();
        while let Some((key, value)) = entries.next() {
            let node = level.lookup(key, value)?;
            if entries.peek().is_none() {
                return node.rule.as_ref();
            }
            level = &node.children;
        }
        None
    }
}

impl Level {
    fn lookup(&self, key: &str, value: &str) -> Option<&Node> {
        self.exact
            .get(key)
            .and_then(|values| values.get(value))
            .or_else(|| {
                self.patterns
                    .iter()
                    .find(|(k, pattern, _)| k == key && pattern.matches(value))
                    .map(|(_, _, node)| node)
            })
            .or_else(|| self.any_value.get(key))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.domain, self.label)?;
        match &self.kind {
            RuleKind::Unlimited => f.write_str(" (unlimited)")?,
            RuleKind::Limited(l) => write!(f, " ({}/{})", l.requests_per_unit, l.unit)?,
        }
        if self.shadow {
            f.write_str(" shadow")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
