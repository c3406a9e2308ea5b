//! The limits each case runs under: the gateway's config (a policy per
//! case, named after it, so no two cases share a bucket in one Redis) and
//! the EVALSHA reference's bucket, the same numbers for both.

use rateguard_contract::{LimitKey, RawConfig, RawLimit, RawPolicy};

use super::case::{Case, Policy, Reference, Target};
use super::keys::KeyMix;

/// The only path `wrk` requests.
pub const PATH: &str = "/api/data";

/// A bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfQuota {
    /// Tokens a full bucket holds.
    pub capacity: u64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

impl PerfQuota {
    /// Microseconds to refill one token.
    pub fn interval_us(self) -> u64 {
        (1e6 / self.refill_per_sec).round() as u64
    }
}

/// Never runs dry at any rate this machine reaches: a billion up front and
/// a million a second. A bucket is full again a microsecond after a
/// request, so idle ones are evicted as soon as the store sweeps.
pub const NEVER_DRY: PerfQuota = PerfQuota {
    capacity: 1_000_000_000,
    refill_per_sec: 1_000_000.0,
};

/// The key mixes': never runs dry in a run either (three million up front,
/// more than the top Zipf key gets), and every request keeps its bucket for
/// 10 s (one token per 10 s), so at the end of a run (≤ 10 s) the store
/// holds a bucket for every key the run sent: what the RSS per live key is
/// read against. Capacity × interval stays under the core's longest fill
/// time (366 days).
pub const KEEPS_KEYS_LIVE: PerfQuota = PerfQuota {
    capacity: 3_000_000,
    refill_per_sec: 0.1,
};

/// The over-limit cases': one request a second.
pub const ONE_PER_SECOND: PerfQuota = PerfQuota {
    capacity: 1,
    refill_per_sec: 1.0,
};

impl Case {
    /// The bucket every key of this case gets, if it has one.
    pub fn quota(self) -> Option<PerfQuota> {
        let mix = KeyMix::MIXES.contains(&self.keys);
        match self.target {
            Target::Gateway(_, Policy::Unmatched)
            | Target::Nginx
            | Target::Reference(Reference::Proxy) => None,
            Target::Gateway(_, Policy::OverLimit) => Some(ONE_PER_SECOND),
            _ if mix => Some(KEEPS_KEYS_LIVE),
            _ => Some(NEVER_DRY),
        }
    }

    /// The gateway's config (listen addresses are the testkit's), or `None`
    /// when no gateway serves this case.
    pub fn gateway_config(self, upstream_url: &str, store_urls: &[String]) -> Option<RawConfig> {
        let Target::Gateway(kind, policy) = self.target else {
            return None;
        };
        let mut config = RawConfig::new(upstream_url);
        config.server.replica_id = Some(format!("perf-{self}"));
        config.store.kind = kind;
        config.store.urls = store_urls.to_vec();
        let name = self.to_string();
        let q = self.quota().unwrap_or(NEVER_DRY);
        let limit = |key| RawLimit::new(key, q.capacity as i64, q.refill_per_sec);
        config.policies.push(match policy {
            Policy::Unmatched => RawPolicy {
                path_prefix: Some("/not-requested".into()),
                ..RawPolicy::new(name, 1, 1.0)
            },
            Policy::Allow | Policy::OverLimit => {
                RawPolicy::new(name, q.capacity as i64, q.refill_per_sec)
            }
            Policy::AllowTwoLimits => {
                RawPolicy::layered(name, vec![limit(LimitKey::Client), limit(LimitKey::Ip)])
            }
        });
        Some(config)
    }
}

/// `config` as TOML with only the keys that differ from the defaults, so
/// the file reads as what the case sets, and a `rateguard` built before a
/// key was added (`--baseline` of an older commit) accepts it.
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
