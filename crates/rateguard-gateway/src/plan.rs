//! One request's plan: the matched policy's limits × the requester's
//! identities → the store requests, a pure function (the same shape as
//! `rateguard_rls::plan`).
//!
//! Every limit of the policy that applies to the request is spent `cost`
//! tokens, all in one store call; limits that do not apply (an `api_key`
//! limit without a key, a `header:` limit without the header) are left
//! out, and none at all means no store call. A shadow policy sends its
//! limits as shadow limits (spent when they fit, never denying). Each
//! limit's quota comes from a [`QuotaSource`]: the static config today
//! ([`StaticQuotas`]), per-consumer plans later.

use rateguard_core::{BucketKey, Quota};
use rateguard_store::{AcquireRequest, Grouping};

use crate::identity::Requester;
use crate::policy::{Limit, Policy};

/// Where a limit's quota comes from, for one requester.
pub trait QuotaSource {
    /// The quota of `limit` (of `policy`) for `requester`.
    fn quota(&self, policy: &Policy, limit: &Limit, requester: &Requester<'_>) -> Quota;
}

/// The quotas of the config file: every requester gets the limit's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticQuotas;

impl QuotaSource for StaticQuotas {
    fn quota(&self, _policy: &Policy, limit: &Limit, _requester: &Requester<'_>) -> Quota {
        *limit.quota()
    }
}

/// The store requests of one request under its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Which limit of the policy each request is (`policy.limits()[i]`).
    indices: Vec<usize>,
    requests: Vec<AcquireRequest>,
    grouping: Grouping,
}

impl Plan {
    /// The store requests, one per limit that applies.
    pub fn requests(&self) -> &[AcquireRequest] {
        &self.requests
    }

    /// The index in `policy.limits()` of request `i`'s limit.
    pub fn limit_index(&self, i: usize) -> usize {
        self.indices[i]
    }

    /// Whether no limit applies (no store call).
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// [`Grouping::Alone`] for a single-limit policy: its buckets (keyed
    /// by the policy's name) are never decided with others; a layered
    /// policy's are.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }
}

/// Plans one request of `requester` under `policy`, quotas from `quotas`.
pub fn plan(policy: &Policy, requester: &Requester<'_>, quotas: &impl QuotaSource) -> Plan {
    let mut indices = Vec::with_capacity(policy.limits().len());
    let mut requests = Vec::with_capacity(policy.limits().len());
    let make = if policy.shadow() {
        AcquireRequest::shadow
    } else {
        AcquireRequest::new
    };
    for (i, limit) in policy.limits().iter().enumerate() {
        let Some(identity) = requester.identity(limit.key()) else {
            continue;
        };
        let key = BucketKey::for_limit(policy.name(), limit.name(), &identity);
        let quota = quotas.quota(policy, limit, requester);
        indices.push(i);
        requests.push(make(key, quota, policy.cost()));
    }
    let grouping = if policy.limits().len() > 1 {
        Grouping::Grouped
    } else {
        Grouping::Alone
    };
    Plan {
        indices,
        requests,
        grouping,
    }
}

#[cfg(test)]
mod tests;
