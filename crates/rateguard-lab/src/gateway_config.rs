//! The gateway replicas' config file (the `rateguard serve --config` TOML
//! contract), generated per store.

use rateguard_loadtests::{BucketShape, Policy};
use serde::Serialize;

use crate::LabError;

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
/// `store_timeout_ms` budget, `on_error` (`allow`: fail open, `deny`: fail
/// closed), the lab's policies, proxying to
/// `upstream_url`. The listen addresses are placeholders: the testkit passes
/// free ports on the command line.
pub fn render(
    replica_id: &str,
    store: &str,
    store_urls: &[String],
    store_timeout_ms: u64,
    upstream_url: &str,
    policies: &[Policy],
    on_error: &str,
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
            on_error,
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

/// A user's config file (`up --config FILE`) with what the lab owns filled
/// in: `server.replica_id`, placeholder listen addresses (the testkit passes
/// free ports), `upstream.url`, `store.kind` and `store.urls`, and
/// `store.on_error` when given. Everything else (policies, timeouts,
/// identity) is the file's.
pub fn overlay(
    base: &str,
    replica_id: &str,
    store: &str,
    store_urls: &[String],
    upstream_url: &str,
    on_error: Option<&str>,
) -> Result<String, LabError> {
    let mut file: toml::Table = base
        .parse()
        .map_err(|e: toml::de::Error| LabError::Config(e.to_string()))?;
    let server = table(&mut file, "server")?;
    server.insert("replica_id".into(), replica_id.into());
    server.insert("listen".into(), "127.0.0.1:0".into());
    server.insert("admin_listen".into(), "127.0.0.1:0".into());
    table(&mut file, "upstream")?.insert("url".into(), upstream_url.into());
    let st = table(&mut file, "store")?;
    st.insert("kind".into(), store.into());
    st.insert(
        "urls".into(),
        toml::Value::Array(store_urls.iter().map(|u| u.as_str().into()).collect()),
    );
    if let Some(on_error) = on_error {
        st.insert("on_error".into(), on_error.into());
    }
    toml::to_string(&file).map_err(|e| LabError::Config(e.to_string()))
}

fn table<'a>(file: &'a mut toml::Table, key: &str) -> Result<&'a mut toml::Table, LabError> {
    file.entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| LabError::Config(format!("`{key}` must be a table")))
}

/// The policies of a rendered config, and `store.on_error` (default `allow`).
pub fn policies_of(config: &str) -> Result<(Vec<Policy>, String), LabError> {
    let file: toml::Table = config
        .parse()
        .map_err(|e: toml::de::Error| LabError::Config(e.to_string()))?;
    let on_error = file
        .get("store")
        .and_then(|s| s.get("on_error"))
        .and_then(toml::Value::as_str)
        .unwrap_or("allow")
        .to_owned();
    let policies = file
        .get("policies")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let num = |k: &str| {
                p.get(k)
                    .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
            };
            Policy {
                name: p
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                path_prefix: p
                    .get("path_prefix")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                shape: BucketShape {
                    capacity: num("capacity").unwrap_or(0.0) as u32,
                    refill_per_sec: num("refill_per_sec").unwrap_or(0.0),
                },
            }
        })
        .collect();
    Ok((policies, on_error))
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
            "allow",
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

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn overlay_keeps_the_files_policies_and_sets_what_the_lab_owns() {
        let base = "[server]\nreplica_id = \"mine\"\n[store]\nkind = \"memory\"\ntimeout_ms = 7\n\
            [[policies]]\nname = \"default\"\ncapacity = 5\nrefill_per_sec = 1\n";
        let out = overlay(
            base,
            "gw-2",
            "redis-lua",
            &["redis://127.0.0.1:1".into()],
            "http://127.0.0.1:2",
            Some("deny"),
        )
        .unwrap();
        let v: toml::Table = out.parse().unwrap();
        assert_eq!(v["server"]["replica_id"].as_str(), Some("gw-2"));
        assert_eq!(v["upstream"]["url"].as_str(), Some("http://127.0.0.1:2"));
        assert_eq!(v["store"]["kind"].as_str(), Some("redis-lua"));
        assert_eq!(v["store"]["timeout_ms"].as_integer(), Some(7));
        assert_eq!(v["store"]["urls"][0].as_str(), Some("redis://127.0.0.1:1"));
        let (policies, on_error) = policies_of(&out).unwrap();
        assert_eq!(on_error, "deny");
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].shape.capacity, 5);
        assert_eq!(policies[0].shape.refill_per_sec, 1.0);
        assert!(overlay("server = 1", "g", "memory", &[], "u", None).is_err());
    }
}
