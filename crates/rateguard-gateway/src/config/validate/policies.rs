//! `[[policies]]`: names, path prefixes, methods, cost, and which policies
//! would match the same requests. Each policy's limits are checked in
//! [`super::limits`].
//!
//! Policy names are checked by [`rateguard_core::key::is_plain`], once;
//! this module only says which key each problem belongs to.

use http::Method;
use rateguard_core::key;

use super::limits::limits;
use super::{plain_name_message, Check};
use crate::config::{PolicyConfig, RawPolicy};

pub(super) fn policies(check: &mut Check, raw: &[RawPolicy]) -> Option<Vec<PolicyConfig>> {
    if raw.is_empty() {
        check.fail("policies", "at least one [[policies]] entry is required");
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let key = format!("policies[{i}]");
        if !key::is_plain(&p.name) {
            check.fail(format!("{key}.name"), plain_name_message(&p.name));
        } else if raw[..i].iter().any(|q| q.name == p.name) {
            check.fail(
                format!("{key}.name"),
                format!("duplicate policy name {:?}", p.name),
            );
        }
        if let Some(prefix) = p.path_prefix.as_ref().filter(|p| !p.starts_with('/')) {
            check.fail(
                format!("{key}.path_prefix"),
                format!("must start with '/', got {prefix:?}"),
            );
        }
        let methods = methods(check, &key, p.methods.as_deref());
        let cost = cost(check, &key, p.cost);
        let limits = limits(check, &key, p, cost);
        if let (Some(methods), Some(cost), Some(limits)) = (methods, cost, limits) {
            out.push(PolicyConfig {
                name: p.name.clone(),
                path_prefix: p.path_prefix.clone(),
                methods,
                cost,
                limits,
                shadow: p.shadow,
            });
        }
    }
    overlaps(check, raw);
    Some(out)
}

/// `methods`: at least one, each an uppercase method token, no repeats.
fn methods(check: &mut Check, key: &str, raw: Option<&[String]>) -> Option<Option<Vec<Method>>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    if raw.is_empty() {
        check.fail(
            format!("{key}.methods"),
            "must list at least one method; leave it out for every method",
        );
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, text) in raw.iter().enumerate() {
        let method = Method::from_bytes(text.as_bytes())
            .ok()
            .filter(|_| !text.bytes().any(|b| b.is_ascii_lowercase()));
        let problem = match &method {
            None => Some(format!(
                "expected an uppercase HTTP method (e.g. GET, POST), got {text:?}"
            )),
            Some(m) if out.contains(m) => Some(format!("duplicate method {text:?}")),
            Some(_) => None,
        };
        match (problem, method) {
            (Some(problem), _) => {
                ok = false;
                check.fail(format!("{key}.methods[{i}]"), problem);
            }
            (None, Some(m)) => out.push(m),
            (None, None) => {}
        }
    }
    ok.then_some(Some(out))
}

/// `cost`: a positive number of tokens (whether every limit can hold it
/// is checked with the limits).
fn cost(check: &mut Check, key: &str, raw: i64) -> Option<u32> {
    match u32::try_from(raw) {
        Ok(cost) if cost > 0 => Some(cost),
        _ => {
            check.fail(
                format!("{key}.cost"),
                format!("must be between 1 and {}, got {raw}", u32::MAX),
            );
            None
        }
    }
}

/// Reports every pair of policies that would match the same requests: the
/// same path prefix (or both default) and either no method list on both or
/// a method in both lists. A method list beats none, so a policy with
/// `methods` and one without may share a prefix.
fn overlaps(check: &mut Check, raw: &[RawPolicy]) {
    for (j, p) in raw.iter().enumerate() {
        let key = format!("policies[{j}]");
        let earlier = raw[..j].iter().enumerate();
        let same_prefix = earlier.filter(|(_, q)| q.path_prefix == p.path_prefix);
        for (i, q) in same_prefix {
            match (&q.methods, &p.methods, &p.path_prefix) {
                (None, None, None) => check.fail(
                    format!("{key}.path_prefix"),
                    "missing; only one policy may be the default (without path_prefix) for the same methods",
                ),
                (None, None, Some(prefix)) => check.fail(
                    format!("{key}.path_prefix"),
                    format!("duplicate path_prefix {prefix:?} for the same methods"),
                ),
                (Some(theirs), Some(ours), prefix) => {
                    let shared = ours.iter().find(|m| theirs.contains(m));
                    if let Some(method) = shared {
                        let prefix = match prefix {
                            Some(prefix) => format!("path_prefix {prefix:?}"),
                            None => "default policy (no path_prefix)".to_owned(),
                        };
                        check.fail(
                            format!("{key}.methods"),
                            format!(
                                "method {method:?} is also in policies[{i}].methods for the same {prefix}: both would match the same requests"
                            ),
                        );
                    }
                }
                _ => {} // a method list beats none
            }
            if q.methods.is_none() && p.methods.is_none() {
                break; // one report per policy
            }
        }
    }
}
