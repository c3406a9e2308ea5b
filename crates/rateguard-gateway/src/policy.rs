//! Policy matching: which policy governs a request, and its limits.
//!
//! The longest matching `path_prefix` wins; among policies with the same
//! prefix, one whose `methods` list names the request's method beats one
//! without a list (every method); the policy without a prefix (if any)
//! takes everything else, with the same rule for methods. The config
//! refuses two policies that would match the same requests. Prefixes match
//! whole path segments: `/api/data` matches `/api/data` and `/api/data/7`,
//! not `/api/database` (a prefix ending in `/` matches anything below it).
//! Methods match exactly (`HEAD` is not `GET`).
//!
//! Everything a request needs from its policy (the precomputed
//! `RateLimit-Policy` header value listing every limit, each limit's
//! header name and bucket-key parts, the decision counters per limit) is
//! built here once at start-up, so the hot path allocates none of it.
//!
//! The same goes for plans: each policy holds one [`Tier`] per plan of the
//! config (and one for keys without a plan): every limit's quota for the
//! plan's keys (`None` where the plan makes it unlimited), the
//! `RateLimit-Policy` value they give and the decision counters labelled
//! with the plan.

use http::{HeaderValue, Method};
use rateguard_contract::LimitKey;
use rateguard_core::Quota;

use crate::config::{PlanConfig, PolicyConfig};
use crate::metrics::{DecisionCounters, LimitCounters, Metrics};
use crate::response;

/// One limit of a policy, ready for the hot path.
#[derive(Debug)]
pub struct Limit {
    name: String,
    label: String,
    key: LimitKey,
    quota: Quota,
}

impl Limit {
    /// The limit's own name (`per-ip`; `client` for a single-limit
    /// policy), as in bucket keys and the `limit` metric label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name the headers and the 429 body use: `<policy>.<limit>`, or
    /// the policy's name alone when it has a single limit.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What the limit counts requests by.
    pub fn key(&self) -> &LimitKey {
        &self.key
    }

    /// Bucket shape.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }
}

/// A policy as the keys of one plan (or of none) see it.
#[derive(Debug)]
pub struct Tier {
    plan: Option<String>,
    quotas: Vec<Option<Quota>>,
    policy_header: HeaderValue,
    pub(crate) counters: DecisionCounters,
}

impl Tier {
    /// The plan's name; `None` for keys without a plan.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// The quota of `policy.limits()[i]` for this tier; `None`: unlimited
    /// (the limit does not apply).
    pub fn quota(&self, i: usize) -> Option<&Quota> {
        self.quotas[i].as_ref()
    }

    /// The `RateLimit-Policy` value: the limits that apply, at this tier's
    /// quotas.
    pub fn policy_header(&self) -> &HeaderValue {
        &self.policy_header
    }

    /// Counters of `policy.limits()[i]` for this tier.
    pub(crate) fn limit_counters(&self, i: usize) -> &LimitCounters {
        &self.counters.limits[i]
    }
}

/// One policy, ready for the hot path.
#[derive(Debug)]
pub struct Policy {
    name: String,
    prefix: Option<String>,
    methods: Option<Vec<Method>>,
    cost: u32,
    shadow: bool,
    limits: Vec<Limit>,
    policy_header: HeaderValue,
    /// `[0]`: keys without a plan; `[1 + i]`: plan `i` of the config.
    tiers: Vec<Tier>,
}

impl Policy {
    /// Builds the policy of `config`, its counters from `metrics`.
    pub fn new(config: &PolicyConfig, metrics: &Metrics) -> Self {
        Self::with_plans(config, &[], metrics)
    }

    /// Builds the policy of `config` with a tier per plan of `plans`, its
    /// counters from `metrics`.
    pub fn with_plans(config: &PolicyConfig, plans: &[PlanConfig], metrics: &Metrics) -> Self {
        let names: Vec<&str> = config.limits.iter().map(|l| l.name.as_str()).collect();
        let single = config.limits.len() == 1;
        let limits: Vec<Limit> = config
            .limits
            .iter()
            .map(|l| Limit {
                name: l.name.clone(),
                label: if single {
                    config.name.clone()
                } else {
                    format!("{}.{}", config.name, l.name)
                },
                key: l.key.clone(),
                quota: l.quota,
            })
            .collect();
        let policy_header = response::policy_header(limits.iter().map(|l| (l.label(), l.quota())));
        let mut tiers = vec![Tier {
            plan: None,
            quotas: limits.iter().map(|l| Some(l.quota)).collect(),
            policy_header: policy_header.clone(),
            counters: metrics.decision_counters(&config.name, "", &names),
        }];
        for plan in plans {
            let quotas: Vec<Option<Quota>> = limits
                .iter()
                .map(|l| {
                    plan.quota_for(&config.name, &l.name)
                        .unwrap_or(Some(l.quota))
                })
                .collect();
            let header = response::policy_header(
                limits
                    .iter()
                    .zip(&quotas)
                    .filter_map(|(l, q)| Some((l.label(), q.as_ref()?))),
            );
            tiers.push(Tier {
                plan: Some(plan.name.clone()),
                quotas,
                policy_header: header,
                counters: metrics.decision_counters(&config.name, &plan.name, &names),
            });
        }
        Self {
            name: config.name.clone(),
            prefix: config.path_prefix.clone(),
            methods: config.methods.clone(),
            cost: config.cost,
            shadow: config.shadow,
            limits,
            policy_header,
            tiers,
        }
    }

    /// The policy as keys of plan `plan` (an index into the config's
    /// plans) see it; `None`: keys without a plan. An index the policy
    /// does not know (none is ever made) reads as no plan.
    pub fn tier(&self, plan: Option<usize>) -> &Tier {
        plan.and_then(|i| self.tiers.get(i + 1))
            .unwrap_or(&self.tiers[0])
    }

    /// Policy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path prefix, `None` for the default policy.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The methods it applies to; `None`: every method.
    pub fn methods(&self) -> Option<&[Method]> {
        self.methods.as_deref()
    }

    /// Tokens one request spends from each limit.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Its limits, in config order.
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Shadow mode: denials are counted and forwarded, never answered 429.
    pub fn shadow(&self) -> bool {
        self.shadow
    }

    /// The `RateLimit-Policy` header value, e.g. `"data";q=20;w=40` or
    /// `"login.per-client";q=5;w=50, "login.per-ip";q=20;w=20`.
    pub fn policy_header(&self) -> &HeaderValue {
        &self.policy_header
    }

    fn matches(&self, path: &str, method: &Method) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.contains(method) {
                return false;
            }
        }
        let Some(prefix) = &self.prefix else {
            return true;
        };
        path.starts_with(prefix.as_str())
            && (prefix.ends_with('/')
                || path.len() == prefix.len()
                || path.as_bytes()[prefix.len()] == b'/')
    }
}

/// All policies, ordered for matching.
#[derive(Debug)]
pub struct PolicyTable {
    /// Longest prefix first (the default, without one, last); for the
    /// same prefix, policies with a method list before one without.
    ordered: Vec<Policy>,
}

impl PolicyTable {
    /// Builds the table; `metrics` provides each policy's counters.
    pub fn new(configs: &[PolicyConfig], metrics: &Metrics) -> Self {
        Self::with_plans(configs, &[], metrics)
    }

    /// Builds the table with a tier per plan of `plans` in every policy.
    pub fn with_plans(configs: &[PolicyConfig], plans: &[PlanConfig], metrics: &Metrics) -> Self {
        let mut ordered: Vec<Policy> = configs
            .iter()
            .map(|c| Policy::with_plans(c, plans, metrics))
            .collect();
        // Stable sort: longest prefix first, the default (no prefix) last;
        // then a method list before none.
        ordered.sort_by_key(|p| {
            (
                std::cmp::Reverse(p.prefix.as_ref().map(|s| s.len() + 1)),
                p.methods.is_none(),
            )
        });
        Self { ordered }
    }

    /// The policy governing a `method` request for `path` (no query
    /// string), if any.
    pub fn select(&self, path: &str, method: &Method) -> Option<&Policy> {
        self.ordered.iter().find(|p| p.matches(path, method))
    }

    /// Every policy, in matching order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.ordered.iter()
    }
}

#[cfg(test)]
mod tests;
