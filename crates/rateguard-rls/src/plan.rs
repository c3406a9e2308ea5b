//! One `RateLimitRequest` → what to ask the store: a pure function of the
//! request and the [`Limits`].
//!
//! Per request descriptor, in order: its rule (or the request's
//! `descriptor.limit` override), its cost (`hits_addend`), its bucket key.
//! Then the rules named in any matched rule's `replaces` drop out, and
//! unlimited rules answer without the store, as in envoyproxy/ratelimit.

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use rateguard_core::BucketKey;

use crate::limits::{Limit, Limits, Rule, RuleKind};
use crate::unit::Unit;

/// What one request descriptor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No rule matches: `OK` without `current_limit`.
    NoLimit,
    /// The matched rule is named in another matched rule's `replaces`:
    /// `OK` without `current_limit`, and its bucket is left alone.
    Replaced(Arc<Rule>),
    /// `unlimited: true`: `OK` with `limit_remaining` = `u32::MAX`.
    Unlimited(Arc<Rule>),
    /// A bucket to spend from.
    Bucket(Spend),
}

/// `cost` tokens from the bucket `key` shaped by `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    /// The configured rule; `None` for a request's `descriptor.limit` override.
    pub rule: Option<Arc<Rule>>,
    /// The limit to apply.
    pub limit: Limit,
    /// Counted and spent, never denies.
    pub shadow: bool,
    /// Domain + the descriptor's entries, values hashed.
    pub key: BucketKey,
    /// `hits_addend`: the descriptor's own if set (0 only looks), else the
    /// request's, where 0 means 1.
    pub cost: u32,
}

/// Why a request cannot be decided (gRPC `INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `domain` was empty.
    #[error("rate limit domain must not be empty")]
    EmptyDomain,
    /// `descriptors` was empty.
    #[error("rate limit descriptor list must not be empty")]
    NoDescriptors,
    /// A `descriptor.limit` override cannot be a bucket.
    #[error("descriptors[{index}].limit: {message}")]
    BadOverride {
        /// The descriptor's position.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// The steps of `request`, one per descriptor, in order.
pub fn plan(limits: &Limits, request: &RateLimitRequest) -> Result<Vec<Step>, PlanError> {
    if request.domain.is_empty() {
        return Err(PlanError::EmptyDomain);
    }
    if request.descriptors.is_empty() {
        return Err(PlanError::NoDescriptors);
    }
    let domain = request.domain.as_str();
    let request_cost = request.hits_addend.max(1);
    let mut steps = Vec::with_capacity(request.descriptors.len());
    for (index, descriptor) in request.descriptors.iter().enumerate() {
        let cost = descriptor
            .hits_addend
            .as_ref()
            .map_or(u64::from(request_cost), |h| h.value);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        steps.push(step(limits, domain, index, descriptor, cost)?);
    }
    let replaced: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Bucket(Spend { rule: Some(r), .. }) | Step::Unlimited(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| r.replaces.iter().cloned())
        .collect();
    if !replaced.is_empty() {
        for step in &mut steps {
            if let Step::Bucket(Spend {
                rule: Some(rule), ..
            }) = step
            {
                if rule.name.as_ref().is_some_and(|n| replaced.contains(n)) {
                    *step = Step::Replaced(rule.clone());
                }
            }
        }
    }
    Ok(steps)
}

fn step(
    limits: &Limits,
    domain: &str,
    index: usize,
    descriptor: &RateLimitDescriptor,
    cost: u32,
) -> Result<Step, PlanError> {
    if !limits.has_domain(domain) {
        return Ok(Step::NoLimit);
    }
    if let Some(over) = &descriptor.limit {
        let bad = |message: String| PlanError::BadOverride { index, message };
        let unit = Unit::from_override(over.unit)
            .ok_or_else(|| bad(format!("unknown unit {}", over.unit)))?;
        let limit = Limit::new(over.requests_per_unit, unit).map_err(bad)?;
        return Ok(Step::Bucket(Spend {
            rule: None,
            limit,
            shadow: false,
            key: bucket_key(domain, descriptor),
            cost,
        }));
    }
    let entries = descriptor
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()));
    let Some(rule) = limits.find(domain, entries) else {
        return Ok(Step::NoLimit);
    };
    Ok(match &rule.kind {
        RuleKind::Unlimited => Step::Unlimited(rule.clone()),
        RuleKind::Limited(limit) => Step::Bucket(Spend {
            rule: Some(rule.clone()),
            limit: *limit,
            shadow: rule.shadow,
            key: bucket_key(domain, descriptor),
            cost,
        }),
    })
}

/// The bucket of `descriptor`'s entries in `domain`: every runtime value
/// its own bucket, as envoyproxy/ratelimit keys its counters.
pub fn bucket_key(domain: &str, descriptor: &RateLimitDescriptor) -> BucketKey {
    let entries = descriptor
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()));
    entries_key("rls", domain, entries)
}

/// The bucket of `(key, value)` entries in `domain`, under `prefix`
/// (`rls` for `ShouldRateLimit`, `rlqs` for quota streams).
///
/// The entries are length-prefixed before hashing, so no choice of keys and
/// values can make two different descriptors share a bucket; the prefix
/// keeps these buckets apart from the gateway's policies (and RLS buckets
/// from RLQS ones) in a shared store.
pub fn entries_key<'a>(
    prefix: &str,
    domain: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BucketKey {
    let mut encoded = String::new();
    for (key, value) in entries {
        for part in [key, value] {
            encoded.push_str(&part.len().to_string());
            encoded.push(':');
            encoded.push_str(part);
        }
    }
    BucketKey::new(&format!("{prefix}.{domain}"), &encoded)
}

#[cfg(test)]
mod tests;
