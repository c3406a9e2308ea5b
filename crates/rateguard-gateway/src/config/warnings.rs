//! [`warnings`]: what a valid config allows that a user most likely did not
//! mean, for `check-config` and the start-up log (never an error: the
//! config runs as written).
//!
//! - A policy whose limits are all keyed by `client` or `api_key`, without
//!   `identity.api_keys_file`: every invented API key is a fresh bucket, so
//!   one client sends as much as it likes by changing its key. A limit keyed
//!   by `ip` (or `global`) bounds it, as does a file of known keys (an
//!   unknown key is then limited as its IP).
//! - `[[plans]]` without `identity.api_keys_file` (or `identity.keys =
//!   "redis"`): no key can be on a plan, so the plans never apply.

use rateguard_contract::LimitKey;

use super::ValidConfig;

/// One line per thing worth a warning in `config`, in policy order.
pub fn warnings(config: &ValidConfig) -> Vec<String> {
    if config.identity.known_api_keys.is_some() || config.key_registry.is_some() {
        return Vec::new();
    }
    let plans = (!config.plans.is_empty()).then(|| {
        "plans: no key is on a plan without identity.api_keys_file (`<sha256 hex> <plan>` lines); the plans never apply".to_owned()
    });
    config
        .policies
        .iter()
        .filter(|p| {
            p.limits
                .iter()
                .all(|l| matches!(l.key, LimitKey::Client | LimitKey::ApiKey))
        })
        .map(|p| {
            format!(
                "policy {}: a client can mint buckets by inventing API keys; \
                 add a limit keyed by ip, or identity.api_keys_file",
                p.name
            )
        })
        .chain(plans)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn warned(policies: &str, identity: &str) -> Vec<String> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:1\"\n{identity}\n{policies}");
        warnings(&load_str(&text).unwrap())
    }

    const LIMIT: &str = "capacity = 5\nrefill_per_sec = 1.0\n";

    #[test]
    fn a_policy_keyed_only_by_client_or_key_is_named() {
        let single = format!("[[policies]]\nname = \"data\"\n{LIMIT}");
        assert_eq!(
            warned(&single, ""),
            ["policy data: a client can mint buckets by inventing API keys; add a limit keyed by ip, or identity.api_keys_file"]
        );
        let two = format!(
            "[[policies]]\nname = \"a\"\n[[policies.limits]]\nkey = \"client\"\n{LIMIT}\
             [[policies.limits]]\nkey = \"api_key\"\n{LIMIT}"
        );
        assert_eq!(warned(&two, "").len(), 1);
    }

    #[test]
    fn an_ip_or_global_limit_or_a_keys_file_bounds_it() {
        for other in ["ip", "global"] {
            let policy = format!(
                "[[policies]]\nname = \"a\"\n[[policies.limits]]\nkey = \"client\"\n{LIMIT}\
                 [[policies.limits]]\nkey = \"{other}\"\n{LIMIT}"
            );
            assert_eq!(warned(&policy, ""), Vec::<String>::new(), "{other}");
        }
        let keys = tempfile::NamedTempFile::new().unwrap();
        let identity = format!("[identity]\napi_keys_file = {:?}\n", keys.path());
        let single = format!("[[policies]]\nname = \"data\"\n{LIMIT}");
        assert_eq!(warned(&single, &identity), Vec::<String>::new());
    }

    #[test]
    fn plans_without_a_keys_file_never_apply() {
        let policy =
            format!("[[policies]]\nname = \"a\"\n[[policies.limits]]\nkey = \"ip\"\n{LIMIT}");
        let with_plan = format!("{policy}[[plans]]\nname = \"pro\"\n");
        assert_eq!(
            warned(&with_plan, ""),
            ["plans: no key is on a plan without identity.api_keys_file (`<sha256 hex> <plan>` lines); the plans never apply"]
        );
    }
}
