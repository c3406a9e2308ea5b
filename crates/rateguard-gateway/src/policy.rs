//! Policy matching: which policy governs a request path.
//!
//! The longest matching `path_prefix` wins; the policy without a prefix (if
//! any) takes everything else. Prefixes match whole path segments:
//! `/api/data` matches `/api/data` and `/api/data/7`, not `/api/database`
//! (a prefix ending in `/` matches anything below it).
//!
//! Everything a request needs from its policy (the precomputed
//! `RateLimit-Policy` header value and its decision counters) is built
//! here once at start-up, so the hot path allocates none of it.

use http::HeaderValue;
use rateguard_core::Quota;

use crate::config::PolicyConfig;
use crate::metrics::{DecisionCounters, Metrics};
use crate::response;

/// One policy, ready for the hot path.
#[derive(Debug)]
pub struct Policy {
    name: String,
    prefix: Option<String>,
    quota: Quota,
    shadow: bool,
    policy_header: HeaderValue,
    pub(crate) counters: DecisionCounters,
}

impl Policy {
    /// Policy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path prefix, `None` for the default policy.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Bucket shape.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Shadow mode: denials are counted and forwarded, never answered 429.
    pub fn shadow(&self) -> bool {
        self.shadow
    }

    /// The `RateLimit-Policy` header value, e.g. `"data";q=20;w=40`.
    pub fn policy_header(&self) -> &HeaderValue {
        &self.policy_header
    }

    fn matches(&self, path: &str) -> bool {
        let Some(prefix) = &self.prefix else {
            return true;
        };
        path.starts_with(prefix.as_str())
            && (prefix.ends_with('/')
                || path.len() == prefix.len()
                || path.as_bytes()[prefix.len()] == b'/')
    }
}

/// All policies, ordered for matching.
#[derive(Debug)]
pub struct PolicyTable {
    /// Prefixed policies, longest prefix first, then the default (if any) last.
    ordered: Vec<Policy>,
}

impl PolicyTable {
    /// Builds the table; `metrics` provides each policy's counters.
    pub fn new(configs: &[PolicyConfig], metrics: &Metrics) -> Self {
        let mut ordered: Vec<Policy> = configs
            .iter()
            .map(|c| Policy {
                name: c.name.clone(),
                prefix: c.path_prefix.clone(),
                quota: c.quota,
                shadow: c.shadow,
                policy_header: response::policy_header(&c.name, &c.quota),
                counters: metrics.decision_counters(&c.name),
            })
            .collect();
        // Stable sort: longest prefix first; the default (no prefix) sorts last.
        ordered.sort_by_key(|p| std::cmp::Reverse(p.prefix.as_ref().map(|s| s.len() + 1)));
        Self { ordered }
    }

    /// The policy governing `path` (no query string), if any.
    pub fn select(&self, path: &str) -> Option<&Policy> {
        self.ordered.iter().find(|p| p.matches(path))
    }

    /// Every policy, in matching order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.ordered.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(specs: &[(&str, Option<&str>)]) -> PolicyTable {
        let configs: Vec<PolicyConfig> = specs
            .iter()
            .map(|(name, prefix)| PolicyConfig {
                name: (*name).to_owned(),
                path_prefix: prefix.map(str::to_owned),
                quota: Quota::new(10, 1.0).unwrap(),
                shadow: false,
            })
            .collect();
        PolicyTable::new(&configs, &Metrics::new())
    }

    fn pick<'a>(t: &'a PolicyTable, path: &str) -> Option<&'a str> {
        t.select(path).map(Policy::name)
    }

    #[test]
    fn longest_prefix_wins_and_default_takes_the_rest() {
        let t = table(&[
            ("default", None),
            ("api", Some("/api")),
            ("data", Some("/api/data")),
            ("tree", Some("/static/")),
        ]);
        assert_eq!(pick(&t, "/api/data"), Some("data"));
        assert_eq!(pick(&t, "/api/data/7"), Some("data"));
        assert_eq!(pick(&t, "/api/database"), Some("api"));
        assert_eq!(pick(&t, "/api"), Some("api"));
        assert_eq!(pick(&t, "/api/users"), Some("api"));
        assert_eq!(pick(&t, "/apix"), Some("default"));
        assert_eq!(pick(&t, "/static/a.css"), Some("tree"));
        assert_eq!(pick(&t, "/static"), Some("default"));
        assert_eq!(pick(&t, "/"), Some("default"));
    }

    #[test]
    fn without_a_default_unmatched_paths_have_no_policy() {
        let t = table(&[("data", Some("/api/data"))]);
        assert_eq!(pick(&t, "/api/data/1"), Some("data"));
        assert_eq!(pick(&t, "/other"), None);
    }

    #[test]
    fn file_order_does_not_matter() {
        let t = table(&[("data", Some("/a/b")), ("a", Some("/a")), ("d", None)]);
        assert_eq!(pick(&t, "/a/b/c"), Some("data"));
        let t = table(&[("d", None), ("a", Some("/a")), ("data", Some("/a/b"))]);
        assert_eq!(pick(&t, "/a/b/c"), Some("data"));
    }
}
