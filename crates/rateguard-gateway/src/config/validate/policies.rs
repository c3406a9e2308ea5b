//! `[[policies]]`: names, path prefixes and quotas.
//!
//! Quota shapes are checked by [`Quota::new`] and policy names by
//! [`rateguard_core::key::is_plain`], once; this module only says which key
//! each problem belongs to.

use rateguard_core::key::{self, MAX_POLICY_LEN};
use rateguard_core::quota::QuotaError;
use rateguard_core::Quota;

use super::Check;
use crate::config::{PolicyConfig, RawPolicy};
use crate::error::ConfigError;

pub(super) fn policies(check: &mut Check, raw: &[RawPolicy]) -> Option<Vec<PolicyConfig>> {
    if raw.is_empty() {
        check.fail("policies", "at least one [[policies]] entry is required");
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut defaults = 0;
    for (i, p) in raw.iter().enumerate() {
        let key = format!("policies[{i}]");
        let earlier = &raw[..i];
        if !key::is_plain(&p.name) {
            check.fail(
                format!("{key}.name"),
                format!(
                    "must be 1-{MAX_POLICY_LEN} characters of A-Z a-z 0-9 _ . -, got {:?}",
                    p.name
                ),
            );
        } else if earlier.iter().any(|q| q.name == p.name) {
            check.fail(
                format!("{key}.name"),
                format!("duplicate policy name {:?}", p.name),
            );
        }
        match &p.path_prefix {
            None => {
                defaults += 1;
                if defaults > 1 {
                    check.fail(
                        format!("{key}.path_prefix"),
                        "missing; only one policy may be the default (without path_prefix)",
                    );
                }
            }
            Some(prefix) if !prefix.starts_with('/') => check.fail(
                format!("{key}.path_prefix"),
                format!("must start with '/', got {prefix:?}"),
            ),
            Some(prefix)
                if earlier
                    .iter()
                    .any(|q| q.path_prefix.as_ref() == Some(prefix)) =>
            {
                check.fail(
                    format!("{key}.path_prefix"),
                    format!("duplicate path_prefix {prefix:?}"),
                )
            }
            Some(_) => {}
        }
        if let Some(quota) = quota(check, &key, p) {
            out.push(PolicyConfig {
                name: p.name.clone(),
                path_prefix: p.path_prefix.clone(),
                quota,
                shadow: p.shadow,
            });
        }
    }
    Some(out)
}

/// The policy's [`Quota`], or its problem under the key it belongs to.
fn quota(check: &mut Check, key: &str, p: &RawPolicy) -> Option<Quota> {
    // A negative capacity is out of `Quota::new`'s (unsigned) domain.
    let Ok(capacity) = u64::try_from(p.capacity) else {
        check.fail(
            format!("{key}.capacity"),
            format!("must be > 0, got {}", p.capacity),
        );
        return None;
    };
    Quota::new(capacity, p.refill_per_sec)
        .map_err(|e| check.0.push(quota_error(key, &e)))
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
