//! One `BucketId` → what its Envoys get: a pure function of the id, the
//! filter's domain and the [`Limits`].
//!
//! A `BucketId`'s entries, taken in key order, are matched exactly like one
//! `ShouldRateLimit` descriptor's entries ([`Limits::find`]: nested `key` /
//! `value`, `*` patterns, bare keys), so `{name: api}` against
//! `descriptors: [{key: name, value: api, rate_limit: ...}]` gets that
//! rule's limit.

use std::sync::Arc;

use envoy_types::pb::envoy::service::rate_limit_quota::v3::BucketId;
use rateguard_core::{BucketKey, Quota};

use crate::limits::{Limits, Rule, RuleKind};
use crate::plan::entries_key;

/// A `BucketId`'s entries in key order (`BucketId`s are unordered maps).
pub fn entries(id: &BucketId) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = id
        .bucket
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.sort_unstable();
    entries
}

/// What a bucket's Envoys are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketPlan {
    /// No rule matches (or the domain is unknown): allow all, as
    /// `ShouldRateLimit` answers `OK` without a limit.
    NoLimit,
    /// `unlimited: true`, or a `shadow_mode` rule (which never denies):
    /// allow all.
    AllowAll(Arc<Rule>),
    /// `requests_per_unit: 0`: deny all.
    DenyAll(Arc<Rule>),
    /// A rate shared by every Envoy reporting the bucket.
    Share {
        /// The matched rule.
        rule: Arc<Rule>,
        /// Its bucket: capacity `B` (one unit's worth) and rate `R`.
        quota: Quota,
        /// The shared bucket in the store (`rlqs.<domain>` + entries).
        key: BucketKey,
    },
}

/// The plan of the bucket with `entries` (key order) in `domain`.
pub fn plan_bucket(limits: &Limits, domain: &str, entries: &[(String, String)]) -> BucketPlan {
    let pairs = entries.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let Some(rule) = limits.find(domain, pairs.clone()) else {
        return BucketPlan::NoLimit;
    };
    match &rule.kind {
        RuleKind::Unlimited => BucketPlan::AllowAll(rule.clone()),
        RuleKind::Limited(_) if rule.shadow => BucketPlan::AllowAll(rule.clone()),
        RuleKind::Limited(limit) => match limit.quota {
            None => BucketPlan::DenyAll(rule.clone()),
            Some(quota) => BucketPlan::Share {
                rule: rule.clone(),
                quota,
                key: entries_key("rlqs", domain, pairs),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const LIMITS: &str = "domain: edge
descriptors:
  - key: name
    value: api
    rate_limit: { unit: second, requests_per_unit: 50 }
  - key: name
    value: blocked
    rate_limit: { unit: second, requests_per_unit: 0 }
  - key: name
    value: free
    rate_limit: { unlimited: true }
  - key: name
    value: quiet
    shadow_mode: true
    rate_limit: { unit: second, requests_per_unit: 5 }
  - key: env
    descriptors:
      - key: name
        value: 'ap*'
        rate_limit: { unit: minute, requests_per_unit: 600 }
";

    fn limits() -> Limits {
        Limits::load_sources(&[("edge.yaml", LIMITS)]).unwrap()
    }

    fn id(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let bucket: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        entries(&BucketId { bucket })
    }

    fn share(plan: BucketPlan) -> (Quota, BucketKey) {
        match plan {
            BucketPlan::Share { quota, key, .. } => (quota, key),
            other => panic!("expected a share, got {other:?}"),
        }
    }

    #[test]
    fn a_single_entry_gets_its_rule_with_one_units_burst() {
        let (quota, key) = share(plan_bucket(&limits(), "edge", &id(&[("name", "api")])));
        assert_eq!(quota.capacity(), 50);
        assert_eq!(quota.interval_us(), 20_000);
        assert!(key.as_str().contains("rlqs.edge"), "{key}");
    }

    #[test]
    fn entries_are_taken_in_key_order_and_match_nested_patterns() {
        // `env` < `name`: env first, then name under it, `ap*` matching.
        let plan = plan_bucket(&limits(), "edge", &id(&[("name", "apx"), ("env", "prod")]));
        let (quota, key) = share(plan);
        assert_eq!(quota.capacity(), 600);
        assert_eq!(quota.interval_us(), 100_000);
        let (_, other) = share(plan_bucket(
            &limits(),
            "edge",
            &id(&[("env", "dev"), ("name", "apx")]),
        ));
        assert_ne!(key, other, "every value its own bucket");
    }

    #[test]
    fn blanket_rules_and_no_limit() {
        let l = limits();
        assert!(matches!(
            plan_bucket(&l, "edge", &id(&[("name", "blocked")])),
            BucketPlan::DenyAll(_)
        ));
        assert!(matches!(
            plan_bucket(&l, "edge", &id(&[("name", "free")])),
            BucketPlan::AllowAll(_)
        ));
        assert!(matches!(
            plan_bucket(&l, "edge", &id(&[("name", "quiet")])),
            BucketPlan::AllowAll(_)
        ));
        assert_eq!(
            plan_bucket(&l, "edge", &id(&[("name", "other")])),
            BucketPlan::NoLimit
        );
        assert_eq!(
            plan_bucket(&l, "nope", &id(&[("name", "api")])),
            BucketPlan::NoLimit
        );
        assert_eq!(plan_bucket(&l, "edge", &id(&[])), BucketPlan::NoLimit);
        // Too deep: `name` has no children.
        assert_eq!(
            plan_bucket(&l, "edge", &id(&[("name", "api"), ("zone", "a")])),
            BucketPlan::NoLimit
        );
    }

    #[test]
    fn rlqs_buckets_are_apart_from_rls_ones() {
        use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
        use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
        let (_, key) = share(plan_bucket(&limits(), "edge", &id(&[("name", "api")])));
        let descriptor = RateLimitDescriptor {
            entries: vec![Entry {
                key: "name".into(),
                value: "api".into(),
            }],
            ..Default::default()
        };
        assert_ne!(key, crate::plan::bucket_key("edge", &descriptor));
    }
}
