//! [`Case`]: what `just perf` measures, named by an id in flags and reports
//! (`nginx-proxy`, `ref-proxy-evalsha`, `memory-zipf`,
//! `redis-lua-hot-over-limit`, ...), and the reference each gateway case is
//! read against.
//!
//! A case is a target (nginx, a reference proxy, or a gateway on a store
//! under a policy) and a [`KeyMix`]. The list ([`Case::all`]) is built from
//! the store lists below, so adding a store to the key-mix or hot-key cases
//! is one line.

use std::fmt;
use std::str::FromStr;

use rateguard_contract::StoreKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::keys::KeyMix;

/// Stores measured under the Zipf and uniform key mixes as well.
pub const KEY_MIX_STORES: &[StoreKind] = &[
    StoreKind::Memory,
    StoreKind::RedisLua,
    StoreKind::RedisPipelined,
];

/// Stores measured with one hot key, allowed and over its limit.
pub const HOT_KEY_STORES: &[StoreKind] = &[
    StoreKind::RedisLua,
    StoreKind::RedisPipelined,
    StoreKind::RedisLeased,
];

/// What serves a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// nginx `proxy_pass` to the backend, upstream keep-alive: the ceiling.
    Nginx,
    /// A minimal reference proxy (`rateguard-refproxy`).
    Reference(Reference),
    /// A `rateguard serve` replica on this store, under this policy.
    Gateway(StoreKind, Policy),
}

/// The two minimal reference proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reference {
    /// hyper, per-core runtimes, a pool per runtime: proxying alone.
    Proxy,
    /// The same plus one `EVALSHA` of a GCRA script per request (Redis).
    ProxyEvalsha,
}

/// The policy a gateway case runs (see [`super::limits`] for the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// No policy matches the requests' path: proxying alone.
    Unmatched,
    /// A policy matches; its bucket never runs dry (every response is 2xx).
    Allow,
    /// As `Allow`, with a second limit (per IP) in the policy.
    AllowTwoLimits,
    /// Capacity 1, refill 1/s: nearly every request is a 429.
    OverLimit,
}

/// One configuration measured by `just perf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    /// What serves it.
    pub target: Target,
    /// How `wrk` spreads its requests over API keys.
    pub keys: KeyMix,
}

impl Case {
    const fn new(target: Target, keys: KeyMix) -> Self {
        Self { target, keys }
    }

    /// nginx `proxy_pass`.
    pub const NGINX_PROXY: Case = Case::new(Target::Nginx, KeyMix::PerThread);
    /// The minimal proxy.
    pub const REF_PROXY: Case = Case::new(Target::Reference(Reference::Proxy), KeyMix::PerThread);
    /// The minimal proxy + one `EVALSHA` per request.
    pub const REF_PROXY_EVALSHA: Case = Case::new(
        Target::Reference(Reference::ProxyEvalsha),
        KeyMix::PerThread,
    );
    /// The gateway with no matching policy.
    pub const NO_POLICY: Case = Case::new(
        Target::Gateway(StoreKind::Memory, Policy::Unmatched),
        KeyMix::PerThread,
    );

    /// A gateway on `store` under `policy`.
    pub const fn gateway(store: StoreKind, policy: Policy, keys: KeyMix) -> Self {
        Self::new(Target::Gateway(store, policy), keys)
    }

    /// Every case, in the order a round runs them: the floors, the
    /// single-key cases (every store), the key mixes, the hot keys.
    pub fn all() -> Vec<Case> {
        let mut all = vec![
            Self::NGINX_PROXY,
            Self::REF_PROXY,
            Self::REF_PROXY_EVALSHA,
            Self::NO_POLICY,
        ];
        for store in StoreKind::ALL {
            all.push(Self::gateway(store, Policy::Allow, KeyMix::PerThread));
            if store == StoreKind::RedisLua {
                let two = Self::gateway(store, Policy::AllowTwoLimits, KeyMix::PerThread);
                all.push(two);
            }
        }
        for keys in KeyMix::MIXES {
            all.push(Self::new(Target::Reference(Reference::ProxyEvalsha), keys));
            for &store in KEY_MIX_STORES {
                all.push(Self::gateway(store, Policy::Allow, keys));
            }
        }
        for policy in [Policy::Allow, Policy::OverLimit] {
            for &store in HOT_KEY_STORES {
                all.push(Self::gateway(store, policy, KeyMix::Hot));
            }
        }
        all
    }

    /// The cases a `--cases` word names: an id, a group (`all`, `floors`,
    /// `single`, `mixes`, `hot`) or the old `deny-heavy`.
    pub fn select(word: &str) -> Result<Vec<Case>, String> {
        let all = Self::all();
        let pick = |f: &dyn Fn(&Case) -> bool| all.iter().copied().filter(|c| f(c)).collect();
        Ok(match word {
            "all" => all,
            "floors" => pick(&|c| !c.is_gateway()),
            "single" => pick(&|c| c.is_gateway() && c.keys == KeyMix::PerThread),
            "mixes" => pick(&|c| KeyMix::MIXES.contains(&c.keys)),
            "hot" => pick(&|c| c.keys == KeyMix::Hot),
            // Before the hot-key cases: redis-lua, one key, over its limit.
            "deny-heavy" => vec![Self::gateway(
                StoreKind::RedisLua,
                Policy::OverLimit,
                KeyMix::Hot,
            )],
            id => vec![id.parse()?],
        })
    }

    /// The floor this case is read against: the minimal proxy for the
    /// gateway without a store round trip (no policy, memory), the minimal
    /// proxy + `EVALSHA` (under the same key mix, when that case exists) for
    /// the Redis stores; `None` for nginx and the references themselves.
    pub fn reference(self) -> Option<Case> {
        let Target::Gateway(store, policy) = self.target else {
            return None;
        };
        if policy == Policy::Unmatched || store == StoreKind::Memory {
            return Some(Self::REF_PROXY);
        }
        let same_mix = Self::new(Target::Reference(Reference::ProxyEvalsha), self.keys);
        Some(match Self::all().contains(&same_mix) {
            true => same_mix,
            false => Self::REF_PROXY_EVALSHA,
        })
    }

    /// Whether a `rateguard serve` replica serves it (and so a `--baseline`
    /// binary serves it too).
    pub const fn is_gateway(self) -> bool {
        matches!(self.target, Target::Gateway(..))
    }

    /// Whether every response must be 2xx (all but the over-limit cases).
    pub const fn must_allow(self) -> bool {
        !matches!(self.target, Target::Gateway(_, Policy::OverLimit))
    }

    /// The store a gateway case runs on.
    pub const fn store(self) -> Option<StoreKind> {
        match self.target {
            Target::Gateway(store, _) => Some(store),
            _ => None,
        }
    }

    /// Whether it needs the standalone Redis (a Redis store or the EVALSHA reference).
    pub fn needs_redis(self) -> bool {
        match self.target {
            Target::Reference(Reference::ProxyEvalsha) => true,
            Target::Gateway(store, _) => store.needs_redis(),
            _ => false,
        }
    }

    /// Whether it needs the Redis Cluster.
    pub fn needs_cluster(self) -> bool {
        self.store().is_some_and(|s| s.needs_cluster())
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target {
            Target::Nginx => f.write_str("nginx-proxy")?,
            Target::Reference(Reference::Proxy) => f.write_str("ref-proxy")?,
            Target::Reference(Reference::ProxyEvalsha) => f.write_str("ref-proxy-evalsha")?,
            Target::Gateway(_, Policy::Unmatched) => f.write_str("no-policy")?,
            Target::Gateway(store, _) => f.write_str(store.as_str())?,
        }
        f.write_str(self.keys.id_suffix())?;
        match self.target {
            Target::Gateway(_, Policy::AllowTwoLimits) => f.write_str("-two-limits"),
            Target::Gateway(_, Policy::OverLimit) => f.write_str("-over-limit"),
            _ => Ok(()),
        }
    }
}

impl FromStr for Case {
    type Err = String;

    fn from_str(id: &str) -> Result<Self, String> {
        let all = Self::all();
        all.iter()
            .copied()
            .find(|c| c.to_string() == id)
            .ok_or_else(|| {
                let ids: Vec<String> = all.iter().map(Case::to_string).collect();
                format!(
                    "unknown case {id:?}; expected a group (all, floors, single, mixes, hot) or one of: {}",
                    ids.join(", ")
                )
            })
    }
}

impl Serialize for Case {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Case {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        id.parse().map_err(serde::de::Error::custom)
    }
}

/// One measured target: a case, of the current build or of the baseline
/// binary (`--baseline`; gateway cases only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The case.
    pub case: Case,
    /// Served by the baseline binary.
    #[serde(default)]
    pub baseline: bool,
}

impl Subject {
    /// `case` of the current build.
    pub const fn current(case: Case) -> Self {
        Self {
            case,
            baseline: false,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.baseline {
            false => write!(f, "{}", self.case),
            true => write!(f, "{} (baseline)", self.case),
        }
    }
}

/// `selected` with the floors every figure is read against added (nginx and
/// each gateway case's reference), in [`Case::all`]'s order, once each.
pub fn with_floors(selected: &[Case]) -> Vec<Case> {
    let mut wanted: Vec<Case> = selected.to_vec();
    if !wanted.is_empty() {
        wanted.push(Case::NGINX_PROXY);
    }
    wanted.extend(selected.iter().filter_map(|c| c.reference()));
    Case::all()
        .into_iter()
        .filter(|c| wanted.contains(c))
        .collect()
}

#[cfg(test)]
mod tests;
