use std::net::{IpAddr, Ipv4Addr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;
use rateguard_contract::LimitKey;

use super::*;
use crate::config::{IdentityConfig, LimitConfig, PolicyConfig};
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::policy::PolicyTable;

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn identifier_config() -> IdentityConfig {
    IdentityConfig {
        api_key_header: HeaderName::from_static("x-api-key"),
        trusted_proxies: Vec::new(),
        known_api_keys: None,
        ip_prefixes: crate::config::IpPrefixes::default(),
    }
}

fn identifier() -> Identifier {
    Identifier::new(&identifier_config())
}

fn limit(name: &str, key: LimitKey, capacity: u64) -> LimitConfig {
    LimitConfig {
        name: name.into(),
        key,
        quota: Quota::new(capacity, 1.0).unwrap(),
    }
}

/// The default policy `p` with `limits` (none: the single-limit form of
/// capacity 3), `cost` and `shadow`.
fn table(limits: Vec<LimitConfig>, cost: u32, shadow: bool) -> PolicyTable {
    let single = PolicyConfig::single("p", Quota::new(3, 1.0).unwrap());
    let config = PolicyConfig {
        cost,
        shadow,
        limits: if limits.is_empty() {
            single.limits.clone()
        } else {
            limits
        },
        ..single
    };
    PolicyTable::new(&[config], &Metrics::new())
}

fn headers(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if !key.is_empty() {
        h.insert("x-api-key", HeaderValue::from_str(key).unwrap());
    }
    h
}

/// The plan of a request with API key `key` (none for `""`).
fn plan_for(t: &PolicyTable, key: &str, quotas: &impl QuotaSource) -> Plan {
    let id = identifier();
    let headers = headers(key);
    let policy = t.select("/", &Method::GET).unwrap();
    plan(policy, &id.requester(&headers, PEER), quotas)
}

#[test]
fn a_single_limit_policy_plans_one_bucket_decided_alone() {
    let t = table(Vec::new(), 2, false);
    let p = plan_for(&t, "k", &StaticQuotas);
    assert_eq!(p.requests().len(), 1);
    let r = &p.requests()[0];
    assert_eq!(r.key, BucketKey::for_limit("p", "client", "key:k"));
    assert_eq!((r.quota.capacity(), r.cost, r.enforced), (3, 2, true));
    assert_eq!(p.grouping(), Grouping::Alone);
    assert_eq!(p.limit_index(0), 0);
}

#[test]
fn limits_that_do_not_apply_are_left_out_of_a_grouped_plan() {
    let limits = vec![
        limit("per-key", LimitKey::ApiKey, 5),
        limit("per-ip", LimitKey::Ip, 8),
    ];
    let t = table(limits, 1, true);
    let without_key = plan_for(&t, "", &StaticQuotas);
    assert_eq!(without_key.requests().len(), 1);
    assert_eq!(without_key.limit_index(0), 1, "per-ip");
    assert!(!without_key.requests()[0].enforced, "shadow");
    assert_eq!(without_key.grouping(), Grouping::Grouped);
    let with_key = plan_for(&t, "k", &StaticQuotas);
    let capacities: Vec<u32> = with_key
        .requests()
        .iter()
        .map(|r| r.quota.capacity())
        .collect();
    assert_eq!(capacities, [5, 8]);

    let only_key = table(vec![limit("per-key", LimitKey::ApiKey, 5)], 1, false);
    assert!(plan_for(&only_key, "", &StaticQuotas).is_empty());
}

/// Twice every limit's capacity: a quota source other than the config.
struct Doubled;

impl QuotaSource for Doubled {
    fn quota(&self, policy: &Policy, limit: usize, _: &Requester<'_>) -> Option<Quota> {
        let capacity = policy.limits()[limit].quota().capacity();
        Some(Quota::new(u64::from(capacity) * 2, 1.0).unwrap())
    }
}

#[test]
fn quotas_come_from_the_quota_source() {
    let t = table(Vec::new(), 1, false);
    let p = plan_for(&t, "k", &Doubled);
    assert_eq!(p.requests()[0].quota.capacity(), 6);
}

mod plans {
    use std::sync::Arc;

    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::config::{KnownKeys, PlanConfig, PlanLimitConfig};

    /// Keys `free-key` (plan 0), `pro-key` (plan 1) and `plain-key` (no plan).
    fn identifier() -> Identifier {
        let digest = |k: &str| <[u8; 32]>::from(Sha256::digest(k));
        let known: KnownKeys = [
            (digest("free-key"), Some(0)),
            (digest("pro-key"), Some(1)),
            (digest("plain-key"), None),
        ]
        .into_iter()
        .collect();
        Identifier::new(&IdentityConfig {
            known_api_keys: Some(Arc::new(known)),
            ..super::identifier_config()
        })
    }

    fn entry(limit: &str, quota: Option<Quota>) -> PlanLimitConfig {
        PlanLimitConfig {
            limit: limit.into(),
            policy: None,
            quota,
        }
    }

    /// `free`: names nothing; `pro`: `per-key` 50, `per-ip` unlimited.
    fn plans() -> Vec<PlanConfig> {
        vec![
            PlanConfig {
                name: "free".into(),
                limits: Vec::new(),
            },
            PlanConfig {
                name: "pro".into(),
                limits: vec![
                    entry("per-key", Some(Quota::new(50, 10.0).unwrap())),
                    entry("per-ip", None),
                ],
            },
        ]
    }

    fn layered() -> PolicyTable {
        let base = PolicyConfig::single("p", Quota::new(3, 1.0).unwrap());
        let config = PolicyConfig {
            limits: vec![
                limit("per-key", LimitKey::ApiKey, 5),
                limit("per-ip", LimitKey::Ip, 8),
            ],
            ..base
        };
        PolicyTable::with_plans(&[config], &plans(), &Metrics::new())
    }

    fn capacities(t: &PolicyTable, key: &str) -> Vec<(usize, u32)> {
        let id = identifier();
        let headers = headers(key);
        let policy = t.select("/", &Method::GET).unwrap();
        let p = plan(policy, &id.requester(&headers, PEER), &PlanQuotas);
        (0..p.requests().len())
            .map(|i| (p.limit_index(i), p.requests()[i].quota.capacity()))
            .collect()
    }

    #[test]
    fn a_key_on_a_plan_gets_its_quotas_and_unlimited_limits_are_left_out() {
        let t = layered();
        assert_eq!(capacities(&t, "pro-key"), [(0, 50)], "per-ip unlimited");
        assert_eq!(capacities(&t, "free-key"), [(0, 5), (1, 8)]);
        assert_eq!(capacities(&t, "plain-key"), [(0, 5), (1, 8)]);
        // An unknown key is limited as its IP, at the policy's quotas.
        assert_eq!(capacities(&t, "invented"), [(0, 5), (1, 8)]);
        let policy = t.select("/", &Method::GET).unwrap();
        assert_eq!(policy.tier(Some(1)).plan(), Some("pro"));
        assert_eq!(
            policy.tier(Some(1)).policy_header(),
            "\"p.per-key\";q=50;w=5"
        );
        assert_eq!(policy.tier(None).policy_header(), policy.policy_header());
        assert_eq!(policy.tier(None).plan(), None);
    }

    proptest! {
        /// Nothing changes for a key without a plan: whatever the plans,
        /// its requests are the policy's own (the static quotas).
        #[test]
        fn a_key_without_a_plan_gets_exactly_the_policy_quotas(
            capacities in proptest::collection::vec(1u64..1000, 1..4),
            plan_capacity in 1u64..1000,
            unlimited in any::<bool>(),
            key in prop_oneof![Just(""), Just("plain-key"), Just("invented")],
        ) {
            let limits: Vec<LimitConfig> = capacities
                .iter()
                .enumerate()
                .map(|(i, c)| limit(&format!("l{i}"), LimitKey::Client, *c))
                .collect();
            let quota = (!unlimited).then(|| Quota::new(plan_capacity, 1.0).unwrap());
            let plans = vec![PlanConfig {
                name: "pro".into(),
                limits: vec![entry("l0", quota)],
            }];
            let config = PolicyConfig {
                limits,
                ..PolicyConfig::single("p", Quota::new(3, 1.0).unwrap())
            };
            let with = PolicyTable::with_plans(std::slice::from_ref(&config), &plans, &Metrics::new());
            let without = PolicyTable::new(&[config], &Metrics::new());
            let id = identifier();
            let headers = headers(key);
            let requester = id.requester(&headers, PEER);
            let planned = plan(with.select("/", &Method::GET).unwrap(), &requester, &PlanQuotas);
            let own = plan(without.select("/", &Method::GET).unwrap(), &requester, &StaticQuotas);
            prop_assert_eq!(planned, own);
        }
    }
}
