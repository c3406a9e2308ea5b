//! The gateway replicas' config file (the `rateguard serve --config` TOML
//! contract), generated per store.

use rateguard_loadtests::Policy;
use serde::Serialize;

#[derive(Serialize)]
struct File<'a> {
    server: Server<'a>,
    upstream: Upstream<'a>,
    store: Store<'a>,
    identity: Identity<'a>,
    policies: Vec<PolicyEntry<'a>>,
}

#[derive(Serialize)]
struct Server<'a> {
    listen: &'a str,
    admin_listen: &'a str,
    replica_id: &'a str,
}

#[derive(Serialize)]
struct Upstream<'a> {
    url: &'a str,
    timeout_ms: u64,
}

#[derive(Serialize)]
struct Store<'a> {
    kind: &'a str,
    urls: &'a [String],
    timeout_ms: u64,
    on_error: &'a str,
}

#[derive(Serialize)]
struct Identity<'a> {
    api_key_header: &'a str,
    trusted_proxies: [&'a str; 1],
}

#[derive(Serialize)]
struct PolicyEntry<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefix: Option<&'a str>,
    capacity: u32,
    refill_per_sec: f64,
}

/// The config of replica `replica_id`: `store` over `store_urls` with a
/// `store_timeout_ms` budget, fail-open, the lab's policies, proxying to
/// `upstream_url`. The listen addresses are placeholders: the testkit passes
/// free ports on the command line.
pub fn render(
    replica_id: &str,
    store: &str,
    store_urls: &[String],
    store_timeout_ms: u64,
    upstream_url: &str,
    policies: &[Policy],
) -> String {
    let file = File {
        server: Server {
            listen: "127.0.0.1:0",
            admin_listen: "127.0.0.1:0",
            replica_id,
        },
        upstream: Upstream {
            url: upstream_url,
            timeout_ms: 10_000,
        },
        store: Store {
            kind: store,
            urls: store_urls,
            timeout_ms: store_timeout_ms,
            on_error: "allow",
        },
        identity: Identity {
            api_key_header: rateguard_loadtests::record::API_KEY_HEADER,
            trusted_proxies: ["127.0.0.1/32"],
        },
        policies: policies
            .iter()
            .map(|p| PolicyEntry {
                name: &p.name,
                path_prefix: p.path_prefix.as_deref(),
                capacity: p.shape.capacity,
                refill_per_sec: p.shape.refill_per_sec,
            })
            .collect(),
    };
    toml::to_string(&file).expect("the config structs always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rateguard_loadtests::Params;

    #[test]
    fn renders_the_contract_keys() {
        let text = render(
            "gw-1",
            "redis-lua",
            &["redis://127.0.0.1:6379".into()],
            50,
            "http://127.0.0.1:9000",
            &Params::default().policies(),
        );
        let v: toml::Table = text.parse().unwrap();
        assert_eq!(v["server"]["replica_id"].as_str(), Some("gw-1"));
        assert_eq!(v["store"]["kind"].as_str(), Some("redis-lua"));
        assert_eq!(v["store"]["on_error"].as_str(), Some("allow"));
        let policies = v["policies"].as_array().unwrap();
        assert_eq!(policies.len(), 6);
        assert!(policies[0].get("path_prefix").is_none());
        assert_eq!(policies[1]["path_prefix"].as_str(), Some("/burst"));
        assert_eq!(policies[1]["capacity"].as_integer(), Some(50));
    }
}
