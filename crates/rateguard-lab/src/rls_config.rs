//! The `rls` frontend's files: a limits file (envoyproxy/ratelimit's YAML)
//! equivalent to the lab's capacity policy, and the `rateguard rls` config
//! (the gateways' `[server]` and `[store]`, plus `[rls]`).

use std::path::Path;

use rateguard_contract::RawConfig;
use rateguard_loadtests::open_model::RlsTarget;
use rateguard_loadtests::scenarios::UNLIMITED;
use rateguard_loadtests::{path_prefix, ScenarioId};

/// The limits file's domain.
pub const DOMAIN: &str = "rateguard-lab";

/// The descriptor key of the capacity scenario's limit: its policy's name,
/// as the gateways' config names it. Each call's value is its API key, so
/// every key has its own bucket, as behind the gateways.
pub fn descriptor_key() -> &'static str {
    path_prefix(ScenarioId::Capacity).trim_start_matches('/')
}

/// The limits file: the capacity policy's limit per descriptor value, at
/// the lab's "unlimited" refill per second (the search measures the
/// decision path; nothing should be denied).
pub fn limits_yaml() -> String {
    let per_second = UNLIMITED.refill_per_sec.round() as u64;
    format!(
        "domain: {DOMAIN}\ndescriptors:\n  - key: {}\n    rate_limit: {{ unit: second, requests_per_unit: {per_second} }}\n",
        descriptor_key()
    )
}

/// `config` (store already placed) reading its limits from `limits_file`
/// (an absolute path).
pub fn config(config: &RawConfig, limits_file: &Path) -> RawConfig {
    let mut config = config.clone();
    config.rls.limits = vec![limits_file.display().to_string()];
    config
}

/// What the load client calls: `ShouldRateLimit` on every replica.
pub fn target(grpc_addrs: &[std::net::SocketAddr]) -> RlsTarget {
    RlsTarget {
        endpoints: grpc_addrs.iter().map(|a| format!("http://{a}")).collect(),
        domain: DOMAIN.to_owned(),
        descriptor_key: descriptor_key().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_file_names_the_capacity_policy() {
        assert_eq!(
            limits_yaml(),
            "domain: rateguard-lab\ndescriptors:\n  - key: capacity\n    rate_limit: { unit: second, requests_per_unit: 1000000 }\n"
        );
        let t = target(&["127.0.0.1:5000".parse().unwrap()]);
        assert_eq!(t.endpoints, ["http://127.0.0.1:5000"]);
    }
}
