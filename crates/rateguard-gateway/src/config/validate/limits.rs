//! A policy's limits: the single-limit form (`capacity` and
//! `refill_per_sec` on the policy: one limit named `client`, keyed by
//! client) or `[[policies.limits]]`, never both.
//!
//! Quota shapes are checked by [`Quota::new`], limit names by
//! [`rateguard_core::key::is_plain`]; this module says which key each
//! problem belongs to.

use http::header::HeaderName;
use rateguard_contract::{LimitKey, RawLimit};
use rateguard_core::key::{self, DEFAULT_LIMIT};
use rateguard_core::quota::QuotaError;
use rateguard_core::Quota;

use super::{plain_name_message, Check};
use crate::config::{LimitConfig, RawPolicy};
use crate::error::ConfigError;

/// Most limits one policy may have (each is a bucket read and written by
/// one store call, and a label value of the decision metrics).
pub(super) const MAX_LIMITS: usize = 16;

/// The limits of policy `p` (at `key`, e.g. `policies[0]`), each able to
/// hold `cost` tokens (when the cost itself was valid).
pub(super) fn limits(
    check: &mut Check,
    key: &str,
    p: &RawPolicy,
    cost: Option<u32>,
) -> Option<Vec<LimitConfig>> {
    let limits = if p.limits.is_empty() {
        vec![single(check, key, p)?]
    } else {
        layered(check, key, p)?
    };
    let cost = cost?;
    let too_small = limits
        .iter()
        .enumerate()
        .find(|(_, l)| l.quota.capacity() < cost);
    if let Some((i, limit)) = too_small {
        let which = if p.limits.is_empty() {
            "the capacity".to_owned()
        } else {
            format!("the capacity of limits[{i}] ({:?})", limit.name)
        };
        check.fail(
            format!("{key}.cost"),
            format!(
                "{cost} is more than {which}, {}: no request could ever be allowed",
                limit.quota.capacity()
            ),
        );
        return None;
    }
    Some(limits)
}

/// `capacity` and `refill_per_sec` on the policy itself.
fn single(check: &mut Check, key: &str, p: &RawPolicy) -> Option<LimitConfig> {
    match (p.capacity, p.refill_per_sec) {
        (Some(capacity), Some(rate)) => Some(LimitConfig {
            name: DEFAULT_LIMIT.to_owned(),
            key: LimitKey::Client,
            quota: quota(check, key, capacity, rate)?,
        }),
        (None, None) => {
            check.fail(
                key,
                "no limit: give capacity and refill_per_sec, or one or more [[policies.limits]]",
            );
            None
        }
        (None, Some(_)) => missing(check, key, "capacity"),
        (Some(_), None) => missing(check, key, "refill_per_sec"),
    }
}

fn missing(check: &mut Check, key: &str, field: &str) -> Option<LimitConfig> {
    check.fail(format!("{key}.{field}"), "required key is missing");
    None
}

/// `[[policies.limits]]`: each named (by default after its key), distinct
/// names, valid keys and quotas.
fn layered(check: &mut Check, key: &str, p: &RawPolicy) -> Option<Vec<LimitConfig>> {
    let mut ok = true;
    for (field, given) in [
        ("capacity", p.capacity.is_some()),
        ("refill_per_sec", p.refill_per_sec.is_some()),
    ] {
        if given {
            ok = false;
            check.fail(
                format!("{key}.{field}"),
                "cannot be combined with [[policies.limits]]; give it as a limit (key = \"client\")",
            );
        }
    }
    if p.limits.len() > MAX_LIMITS {
        check.fail(
            format!("{key}.limits"),
            format!(
                "at most {MAX_LIMITS} limits per policy, got {}",
                p.limits.len()
            ),
        );
        return None;
    }
    let mut out: Vec<LimitConfig> = Vec::with_capacity(p.limits.len());
    for (i, raw) in p.limits.iter().enumerate() {
        match limit(check, &format!("{key}.limits[{i}]"), raw, &out) {
            Some(limit) => out.push(limit),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `[[policies.limits]]` entry at `key`; `earlier`: the policy's
/// limits before it that were valid.
fn limit(
    check: &mut Check,
    key: &str,
    raw: &RawLimit,
    earlier: &[LimitConfig],
) -> Option<LimitConfig> {
    if let LimitKey::Header(name) = &raw.key {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            check.fail(
                format!("{key}.key"),
                format!("not a valid header name in {:?}", raw.key.to_string()),
            );
            return None;
        }
    }
    let name = match &raw.name {
        Some(name) if !key::is_plain(name) => {
            check.fail(format!("{key}.name"), plain_name_message(name));
            return None;
        }
        Some(name) => name.clone(),
        None => {
            let name = raw.key.default_name();
            if !key::is_plain(&name) {
                check.fail(
                    format!("{key}.name"),
                    format!(
                        "required: the default {name:?} (after key {:?}) is not 1-64 characters of A-Z a-z 0-9 _ . -",
                        raw.key.to_string()
                    ),
                );
                return None;
            }
            name
        }
    };
    if let Some(j) = earlier.iter().position(|l| l.name == name) {
        let hint = if raw.name.is_none() {
            format!(
                " (the default for key {:?}); give each limit a name",
                raw.key.to_string()
            )
        } else {
            String::new()
        };
        check.fail(
            format!("{key}.name"),
            format!("duplicate limit name {name:?}, also limits[{j}]{hint}"),
        );
        return None;
    }
    Some(LimitConfig {
        name,
        key: raw.key.clone(),
        quota: quota(check, key, raw.capacity, raw.refill_per_sec)?,
    })
}

/// The [`Quota`] of `capacity` and `rate` at `key`, or its problem under
/// the field it belongs to.
fn quota(check: &mut Check, key: &str, capacity: i64, rate: f64) -> Option<Quota> {
    // A negative capacity is out of `Quota::new`'s (unsigned) domain.
    let Ok(capacity) = u64::try_from(capacity) else {
        check.fail(
            format!("{key}.capacity"),
            format!("must be > 0, got {capacity}"),
        );
        return None;
    };
    Quota::new(capacity, rate)
        .map_err(|e| check.push(quota_error(key, &e)))
        .ok()
}

/// `e` under the key it is about: `policies[1].capacity: must be > 0, got 0`.
fn quota_error(key: &str, e: &QuotaError) -> ConfigError {
    let field = match e {
        QuotaError::ZeroCapacity(_) | QuotaError::CapacityTooLarge { .. } => Some("capacity"),
        QuotaError::BadRate(_) | QuotaError::RateTooHigh(_) => Some("refill_per_sec"),
        _ => None,
    };
    let message = e.to_string();
    // Quota's messages start with the field they are about; the key says it.
    match field.and_then(|f| Some((f, message.strip_prefix(f)?.trim_start()))) {
        Some((field, rest)) => ConfigError::invalid(format!("{key}.{field}"), rest),
        None => ConfigError::invalid(key, message),
    }
}
