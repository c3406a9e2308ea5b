//! [`Case`]: what `just perf` measures, and the gateway config of each.

use rateguard_contract::{LimitKey, RawConfig, RawLimit, RawPolicy, StoreKind};
use serde::{Deserialize, Serialize};

rateguard_contract::vocabulary! {
    /// One configuration measured by `just perf`, by its id in flags and
    /// reports. Allow cases admit every request (a bucket far larger than a
    /// run); the deny-heavy case sends one hot key over its limit.
    pub enum Case ("case") {
        /// nginx `proxy_pass` to the backend, upstream keep-alive: the ceiling.
        NginxProxy = "nginx-proxy" => Target::Nginx,
        /// `rateguard serve` where no policy matches: proxying alone.
        NoPolicy = "no-policy" => Target::Gateway(StoreKind::Memory, Traffic::Unlimited),
        /// The in-process memory store.
        Memory = "memory" => Target::Gateway(StoreKind::Memory, Traffic::Allowed),
        /// One `EVALSHA` per decision.
        RedisLua = "redis-lua" => Target::Gateway(StoreKind::RedisLua, Traffic::Allowed),
        /// redis-lua with a policy of two limits (per client and per IP):
        /// still one `EVALSHA`, over two keys.
        RedisLuaTwoLimits = "redis-lua-two-limits" => Target::Gateway(StoreKind::RedisLua, Traffic::AllowedTwoLimits),
        /// Decisions coalesced into pipelines.
        RedisPipelined = "redis-pipelined" => Target::Gateway(StoreKind::RedisPipelined, Traffic::Allowed),
        /// fred on a 3-master Redis Cluster.
        FredCluster = "fred-cluster" => Target::Gateway(StoreKind::FredCluster, Traffic::Allowed),
        /// redis-lua, one hot key: nearly every request is over the limit.
        DenyHeavy = "deny-heavy" => Target::Gateway(StoreKind::RedisLua, Traffic::HotKey),
        /// Token leases of hot keys spent locally (`docs/leases.md`).
        RedisLeased = "redis-leased" => Target::Gateway(StoreKind::RedisLeased, Traffic::Allowed),
        /// redis-leased, one hot key over the limit (as `deny-heavy`).
        DenyHeavyLeased = "deny-heavy-leased" => Target::Gateway(StoreKind::RedisLeased, Traffic::HotKey),
    }
    /// The process this case measures.
    fn target -> Target;
}

/// One measured target: a case, of the current build or of the baseline
/// binary (`--baseline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The case.
    pub case: Case,
    /// Served by the baseline binary.
    #[serde(default)]
    pub baseline: bool,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.baseline {
            false => write!(f, "{}", self.case),
            true => write!(f, "{} (baseline)", self.case),
        }
    }
}

/// What serves a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The nginx `proxy_pass` ceiling.
    Nginx,
    /// A `rateguard serve` replica on this store, with this traffic.
    Gateway(StoreKind, Traffic),
}

/// The limit a gateway case runs under, and the requests `wrk` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// No policy matches the requests' path.
    Unlimited,
    /// A policy matches; its bucket never runs dry (every response is 2xx).
    Allowed,
    /// As `Allowed`, with a second limit (per IP) in the policy.
    AllowedTwoLimits,
    /// Capacity 1, refill 1/s, every request with the same API key.
    HotKey,
}

/// The API key the hot-key traffic sends (`wrk`'s Lua script knows it too).
pub const HOT_KEY: &str = "perf-hot";

/// The only path `wrk` requests.
pub const PATH: &str = "/api/data";

impl Case {
    /// Whether every response must be 2xx (all but the deny-heavy case).
    pub const fn must_allow(self) -> bool {
        !matches!(self.target(), Target::Gateway(_, Traffic::HotKey))
    }

    /// Whether `wrk` sends one hot key (else one key per `wrk` thread).
    pub const fn hot_key(self) -> bool {
        !self.must_allow()
    }

    /// The store this case needs, if it runs a gateway.
    pub const fn store(self) -> Option<StoreKind> {
        match self.target() {
            Target::Nginx => None,
            Target::Gateway(store, _) => Some(store),
        }
    }

    /// The gateway's config (listen addresses are the testkit's), or `None`
    /// for nginx.
    pub fn gateway_config(self, upstream_url: &str, store_urls: &[String]) -> Option<RawConfig> {
        let Target::Gateway(kind, traffic) = self.target() else {
            return None;
        };
        let mut config = RawConfig::new(upstream_url);
        config.server.replica_id = Some(format!("perf-{self}"));
        config.store.kind = kind;
        config.store.urls = store_urls.to_vec();
        config.policies.push(match traffic {
            Traffic::Unlimited => RawPolicy {
                path_prefix: Some("/not-requested".into()),
                ..RawPolicy::new("unmatched", 1, 1.0)
            },
            // A billion up front and a million a second: never runs dry here.
            Traffic::Allowed => RawPolicy::new("perf", 1_000_000_000, 1_000_000.0),
            Traffic::AllowedTwoLimits => RawPolicy::layered(
                "perf",
                vec![
                    RawLimit::new(LimitKey::Client, 1_000_000_000, 1_000_000.0),
                    RawLimit::new(LimitKey::Ip, 1_000_000_000, 1_000_000.0),
                ],
            ),
            Traffic::HotKey => RawPolicy::new("hot", 1, 1.0),
        });
        Some(config)
    }
}

/// `config` as TOML with only the keys that differ from the defaults, so
/// the file reads as what the case sets, and a `rateguard` built before a
/// key was added (`--rateguard` of an older commit) accepts it.
pub fn toml_without_defaults(config: &RawConfig) -> String {
    let table =
        |c: &RawConfig| toml::Table::try_from(c).expect("a RawConfig always serializes to a table");
    let defaults = table(&RawConfig::new(config.upstream.url.clone()));
    let mut file = table(config);
    for (section, value) in file.iter_mut() {
        if let (Some(keys), Some(toml::Value::Table(default))) =
            (value.as_table_mut(), defaults.get(section))
        {
            keys.retain(|k, v| default.get(k) != Some(v) || k == "url");
        }
    }
    file.retain(|_, v| !matches!(v, toml::Value::Table(t) if t.is_empty()));
    toml::to_string(&file).expect("a TOML table always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_case_renders_a_config_of_its_store() {
        for case in Case::ALL {
            let urls = ["redis://127.0.0.1:1".to_owned()];
            let config = case.gateway_config("http://127.0.0.1:2", &urls);
            assert_eq!(config.as_ref().map(|c| c.store.kind), case.store());
            if let Some(config) = config {
                let text = toml_without_defaults(&config);
                assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), config);
                assert!(!text.contains("shutdown_grace_ms"), "{text}");
            }
        }
        assert!(Case::Memory.must_allow() && !Case::DenyHeavy.must_allow());
    }
}
