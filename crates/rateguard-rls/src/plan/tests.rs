//! Golden cases after the examples in envoyproxy/ratelimit's README,
//! restated as RateGuard's own files and requests.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
    Entry, RateLimitOverride,
};
use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
use envoy_types::pb::google::protobuf::UInt64Value;

use super::*;

fn limits(yaml: &str) -> Limits {
    Limits::load_sources(&[("golden.yaml", yaml)]).unwrap()
}

fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        ..Default::default()
    }
}

fn request(domain: &str, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.into(),
        descriptors: descriptors.iter().map(|d| descriptor(d)).collect(),
        hits_addend: 0,
    }
}

/// Each step as a short word: the rule's label and limit, or what happened.
fn summary(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::NoLimit => "none".to_owned(),
            Step::Replaced(r) => format!("replaced {}", r.label),
            Step::Unlimited(r) => format!("unlimited {}", r.label),
            Step::Bucket(spend) => format!(
                "{} {}/{}{} x{}",
                spend.rule.as_ref().map_or("override", |r| r.label.as_str()),
                spend.limit.requests_per_unit,
                spend.limit.unit,
                if spend.shadow { " shadow" } else { "" },
                spend.cost
            ),
        })
        .collect()
}

fn check(limits: &Limits, domain: &str, descriptors: &[&[(&str, &str)]]) -> Vec<String> {
    summary(&plan(limits, &request(domain, descriptors)).unwrap())
}

fn key_of(limits: &Limits, domain: &str, entries: &[(&str, &str)]) -> BucketKey {
    match &plan(limits, &request(domain, &[entries])).unwrap()[0] {
        Step::Bucket(spend) => spend.key.clone(),
        other => panic!("no bucket: {other:?}"),
    }
}

#[test]
fn exact_values_pick_their_own_rule_and_others_match_nothing() {
    let l = limits(
        "
domain: db_calls
descriptors:
  - key: table
    value: accounts
    rate_limit: { unit: second, requests_per_unit: 300 }
  - key: table
    value: fallback
    rate_limit: { unit: second, requests_per_unit: 40 }
",
    );
    assert_eq!(
        check(
            &l,
            "db_calls",
            &[
                &[("table", "accounts")],
                &[("table", "fallback")],
                &[("table", "orders")]
            ]
        ),
        [
            "table_accounts 300/second x1",
            "table_fallback 40/second x1",
            "none"
        ]
    );
    assert_eq!(
        check(&l, "other_domain", &[&[("table", "accounts")]]),
        ["none"]
    );
}

#[test]
fn nested_keys_match_by_position_and_bare_keys_bucket_each_value() {
    let l = limits(
        "
domain: sms
descriptors:
  - key: campaign
    value: promo
    descriptors:
      - key: phone
        rate_limit: { unit: day, requests_per_unit: 3 }
  - key: phone
    rate_limit: { unit: day, requests_per_unit: 50 }
",
    );
    assert_eq!(
        check(
            &l,
            "sms",
            &[
                &[("campaign", "promo"), ("phone", "555-0101")],
                &[("phone", "555-0101")]
            ]
        ),
        ["campaign_promo.phone 3/day x1", "phone 50/day x1"]
    );
    // The nested rule needs its parent's exact value.
    assert_eq!(
        check(&l, "sms", &[&[("campaign", "news"), ("phone", "555-0101")]]),
        ["none"]
    );
    // A key without a value: one bucket per runtime value.
    assert_ne!(
        key_of(&l, "sms", &[("phone", "555-0101")]),
        key_of(&l, "sms", &[("phone", "555-0102")])
    );
    assert_eq!(
        key_of(&l, "sms", &[("phone", "555-0101")]),
        key_of(&l, "sms", &[("phone", "555-0101")])
    );
}

#[test]
fn the_most_specific_match_wins_and_zero_blocks() {
    let l = limits(
        "
domain: per_ip
descriptors:
  - key: client_ip
    rate_limit: { unit: second, requests_per_unit: 8 }
  - key: client_ip
    value: 203.0.113.9
    rate_limit: { unit: second, requests_per_unit: 0 }
",
    );
    assert_eq!(
        check(
            &l,
            "per_ip",
            &[
                &[("client_ip", "198.51.100.1")],
                &[("client_ip", "203.0.113.9")]
            ]
        ),
        ["client_ip 8/second x1", "client_ip_203.0.113.9 0/second x1"]
    );
}

#[test]
fn a_request_deeper_than_the_rule_does_not_match() {
    let flat = limits(
        "
domain: depth
descriptors:
  - key: tenant
    value: acme
    rate_limit: { unit: second, requests_per_unit: 9 }
",
    );
    assert_eq!(
        check(&flat, "depth", &[&[("tenant", "acme"), ("user", "u1")]]),
        ["none"]
    );
    let nested = limits(
        "
domain: depth
descriptors:
  - key: tenant
    value: acme
    descriptors:
      - key: user
        rate_limit: { unit: second, requests_per_unit: 9 }
",
    );
    assert_eq!(
        check(
            &nested,
            "depth",
            &[&[("tenant", "acme"), ("user", "u1")], &[("tenant", "acme")]]
        ),
        ["tenant_acme.user 9/second x1", "none"]
    );
}

#[test]
fn unlimited_rules_answer_without_a_bucket() {
    let l = limits(
        "
domain: backends
descriptors:
  - key: directory
    rate_limit: { unlimited: true }
  - key: blob
    rate_limit: { unit: minute, requests_per_unit: 60 }
",
    );
    assert_eq!(
        check(&l, "backends", &[&[("directory", "x")], &[("blob", "y")]]),
        ["unlimited directory", "blob 60/minute x1"]
    );
}

#[test]
fn shadow_mode_is_carried_to_the_spend() {
    let l = limits(
        "
domain: login
descriptors:
  - key: app
    descriptors:
      - key: account
        value: trial
        shadow_mode: true
        rate_limit: { unit: second, requests_per_unit: 4 }
      - key: account
        value: paid
        rate_limit: { unit: second, requests_per_unit: 12 }
",
    );
    assert_eq!(
        check(
            &l,
            "login",
            &[
                &[("app", "web"), ("account", "trial")],
                &[("app", "web"), ("account", "paid")]
            ]
        ),
        [
            "app.account_trial 4/second shadow x1",
            "app.account_paid 12/second x1"
        ]
    );
}

#[test]
fn replaces_drops_the_named_rule_when_both_match() {
    let l = limits(
        "
domain: tiers
descriptors:
  - key: plan
    value: basic
    descriptors:
      - key: member
        value: ann
        rate_limit: { name: basic_ann, unit: second, requests_per_unit: 2 }
  - key: plan
    value: boost
    descriptors:
      - key: member
        value: ann
        rate_limit:
          replaces: [{ name: basic_ann }]
          unit: second
          requests_per_unit: 7
",
    );
    let basic: &[(&str, &str)] = &[("plan", "basic"), ("member", "ann")];
    let boost: &[(&str, &str)] = &[("plan", "boost"), ("member", "ann")];
    assert_eq!(check(&l, "tiers", &[basic]), ["basic_ann 2/second x1"]);
    assert_eq!(
        check(&l, "tiers", &[basic, boost]),
        ["replaced basic_ann", "plan_boost.member_ann 7/second x1"]
    );
}

#[test]
fn wildcards_match_by_pattern_after_exact_values_and_before_bare_keys() {
    let l = limits(
        "
domain: paths
descriptors:
  - key: path
    value: /v1/*
    rate_limit: { unit: minute, requests_per_unit: 20 }
  - key: path
    value: /v1/health
    rate_limit: { unlimited: true }
  - key: path
    rate_limit: { unit: minute, requests_per_unit: 5 }
",
    );
    assert_eq!(
        check(
            &l,
            "paths",
            &[
                &[("path", "/v1/users")],
                &[("path", "/v1/health")],
                &[("path", "/v2/x")]
            ]
        ),
        [
            "path_/v1/* 20/minute x1",
            "unlimited path_/v1/health",
            "path 5/minute x1"
        ]
    );
    // Each value matched by a pattern has its own bucket.
    assert_ne!(
        key_of(&l, "paths", &[("path", "/v1/a")]),
        key_of(&l, "paths", &[("path", "/v1/b")])
    );
}

#[test]
fn hits_addend_comes_from_the_descriptor_then_the_request() {
    let l = limits(
        "
domain: bytes
descriptors:
  - key: bucket
    rate_limit: { unit: second, requests_per_unit: 1000 }
",
    );
    let mut req = request(
        "bytes",
        &[&[("bucket", "a")], &[("bucket", "b")], &[("bucket", "c")]],
    );
    req.hits_addend = 0;
    assert_eq!(
        summary(&plan(&l, &req).unwrap()),
        [
            "bucket 1000/second x1",
            "bucket 1000/second x1",
            "bucket 1000/second x1"
        ]
    );
    req.hits_addend = 5;
    req.descriptors[1].hits_addend = Some(UInt64Value { value: 40 });
    req.descriptors[2].hits_addend = Some(UInt64Value { value: 0 });
    assert_eq!(
        summary(&plan(&l, &req).unwrap()),
        [
            "bucket 1000/second x5",
            "bucket 1000/second x40",
            "bucket 1000/second x0"
        ]
    );
}

#[test]
fn descriptor_limit_overrides_the_file() {
    let l = limits(
        "
domain: o
descriptors:
  - key: k
    rate_limit: { unit: second, requests_per_unit: 10 }
",
    );
    let mut req = request("o", &[&[("k", "v")], &[("k", "v")]]);
    req.descriptors[0].limit = Some(RateLimitOverride {
        requests_per_unit: 3,
        unit: RateLimitUnit::Hour as i32,
    });
    assert_eq!(
        summary(&plan(&l, &req).unwrap()),
        ["override 3/hour x1", "k 10/second x1"]
    );
    req.descriptors[0].limit = Some(RateLimitOverride {
        requests_per_unit: 3,
        unit: 0,
    });
    assert_eq!(
        plan(&l, &req).unwrap_err().to_string(),
        "descriptors[0].limit: unknown unit 0"
    );
}

#[test]
fn empty_domain_or_descriptors_are_invalid() {
    let l = limits("domain: d\n");
    assert_eq!(
        plan(&l, &request("", &[&[("a", "b")]])),
        Err(PlanError::EmptyDomain)
    );
    assert_eq!(plan(&l, &request("d", &[])), Err(PlanError::NoDescriptors));
}

#[test]
fn keys_separate_domains_and_entry_boundaries() {
    let rule = "rate_limit: { unit: second, requests_per_unit: 1 }";
    let l = limits(&format!(
        "domain: a\ndescriptors: [{{ key: k, {rule} }}, {{ key: kk, {rule} }}]\n"
    ));
    let a = format!("domain: a\ndescriptors: [{{ key: k, {rule} }}]\n");
    let b = format!("domain: b\ndescriptors: [{{ key: k, {rule} }}]\n");
    let l2 = Limits::load_sources(&[("a", a), ("b", b)]).unwrap();
    assert_ne!(
        key_of(&l2, "a", &[("k", "v")]),
        key_of(&l2, "b", &[("k", "v")])
    );
    assert_ne!(
        key_of(&l, "a", &[("k", "kv")]),
        key_of(&l, "a", &[("kk", "v")])
    );
}
