//! `[[plans]]`: names, and each entry naming a limit that exists (in some
//! policy, or in the policy it names) with a valid quota or `unlimited =
//! true`, big enough for the cost of every policy it applies to.
//!
//! Checked against the raw policies, so a plan's problems are reported
//! even when a policy has its own.

use rateguard_contract::{RawPlan, RawPlanLimit, RawPolicy};
use rateguard_core::key;

use super::limits::quota;
use super::{plain_name_message, Check};
use crate::config::{PlanConfig, PlanLimitConfig};

/// Most plans a config may have: each is a value of the decision metrics'
/// `plan` label, for every policy and limit.
pub(super) const MAX_PLANS: usize = 64;

/// The limit names of policy `p` as the policy check names them.
fn limit_names(p: &RawPolicy) -> Vec<String> {
    p.limit_list()
        .iter()
        .map(|l| l.name.clone().unwrap_or_else(|| l.key.default_name()))
        .collect()
}

pub(super) fn plans(
    check: &mut Check,
    raw: &[RawPlan],
    policies: &[RawPolicy],
) -> Option<Vec<PlanConfig>> {
    if raw.len() > MAX_PLANS {
        check.fail(
            "plans",
            format!("at most {MAX_PLANS} plans, got {}", raw.len()),
        );
        return None;
    }
    let mut ok = true;
    let mut out = Vec::with_capacity(raw.len());
    for (i, plan) in raw.iter().enumerate() {
        let key = format!("plans[{i}]");
        if !key::is_plain(&plan.name) {
            ok = false;
            check.fail(format!("{key}.name"), plain_name_message(&plan.name));
        } else if let Some(j) = raw[..i].iter().position(|q| q.name == plan.name) {
            ok = false;
            check.fail(
                format!("{key}.name"),
                format!("duplicate plan name {:?}, also plans[{j}]", plan.name),
            );
        }
        let mut limits: Vec<PlanLimitConfig> = Vec::with_capacity(plan.limits.len());
        for (j, entry) in plan.limits.iter().enumerate() {
            let key = format!("{key}.limits[{j}]");
            if let Some(k) = plan.limits[..j]
                .iter()
                .position(|e| e.limit == entry.limit && e.policy == entry.policy)
            {
                ok = false;
                let scope = match &entry.policy {
                    Some(p) => format!("policy {p:?}"),
                    None => "every policy".to_owned(),
                };
                check.fail(
                    format!("{key}.limit"),
                    format!(
                        "duplicate entry for limit {:?} in {scope}, also limits[{k}]",
                        entry.limit
                    ),
                );
                continue;
            }
            match limit(check, &key, entry, policies) {
                Some(limit) => limits.push(limit),
                None => ok = false,
            }
        }
        out.push(PlanConfig {
            name: plan.name.clone(),
            limits,
        });
    }
    ok.then_some(out)
}

/// One `[[plans.limits]]` entry at `key`.
fn limit(
    check: &mut Check,
    key: &str,
    raw: &RawPlanLimit,
    policies: &[RawPolicy],
) -> Option<PlanLimitConfig> {
    // The policies the entry applies to, by index.
    let applies: Vec<usize> = match &raw.policy {
        Some(name) => {
            let Some(i) = policies.iter().position(|p| &p.name == name) else {
                let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
                check.fail(
                    format!("{key}.policy"),
                    format!("no policy named {name:?} (policies: {names:?})"),
                );
                return None;
            };
            let names = limit_names(&policies[i]);
            if !names.contains(&raw.limit) {
                check.fail(
                    format!("{key}.limit"),
                    format!(
                        "policy {name:?} has no limit named {:?} (its limits: {names:?})",
                        raw.limit
                    ),
                );
                return None;
            }
            vec![i]
        }
        None => {
            let found: Vec<usize> = (0..policies.len())
                .filter(|&i| limit_names(&policies[i]).contains(&raw.limit))
                .collect();
            if found.is_empty() {
                check.fail(
                    format!("{key}.limit"),
                    format!(
                        "no policy has a limit named {:?} (a single-limit policy's is \"client\")",
                        raw.limit
                    ),
                );
                return None;
            }
            found
        }
    };
    let quota = match (raw.unlimited, raw.capacity, raw.refill_per_sec) {
        (true, None, None) => None,
        (true, capacity, _) => {
            let field = if capacity.is_some() {
                "capacity"
            } else {
                "refill_per_sec"
            };
            check.fail(
                format!("{key}.{field}"),
                "cannot be combined with unlimited = true",
            );
            return None;
        }
        (false, Some(capacity), Some(rate)) => Some(quota(check, key, capacity, rate)?),
        (false, capacity, _) => {
            let field = if capacity.is_none() {
                "capacity"
            } else {
                "refill_per_sec"
            };
            check.fail(
                format!("{key}.{field}"),
                "required key is missing (or set unlimited = true)",
            );
            return None;
        }
    };
    if let Some(q) = quota {
        let too_costly = applies
            .iter()
            .map(|&i| (i, &policies[i]))
            .find(|(_, p)| p.cost > i64::from(q.capacity()));
        if let Some((i, p)) = too_costly {
            check.fail(
                format!("{key}.capacity"),
                format!(
                    "{} is less than the cost of policies[{i}] ({:?}), {}: no request of the plan could ever be allowed",
                    q.capacity(),
                    p.name,
                    p.cost
                ),
            );
            return None;
        }
    }
    Some(PlanLimitConfig {
        limit: raw.limit.clone(),
        policy: raw.policy.clone(),
        quota,
    })
}
