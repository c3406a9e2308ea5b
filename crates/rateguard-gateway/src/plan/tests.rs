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

fn identifier() -> Identifier {
    Identifier::new(&IdentityConfig {
        api_key_header: HeaderName::from_static("x-api-key"),
        trusted_proxies: Vec::new(),
        known_api_keys: None,
    })
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
    fn quota(&self, _: &Policy, limit: &Limit, _: &Requester<'_>) -> Quota {
        Quota::new(u64::from(limit.quota().capacity()) * 2, 1.0).unwrap()
    }
}

#[test]
fn quotas_come_from_the_quota_source() {
    let t = table(Vec::new(), 1, false);
    let p = plan_for(&t, "k", &Doubled);
    assert_eq!(p.requests()[0].quota.capacity(), 6);
}
