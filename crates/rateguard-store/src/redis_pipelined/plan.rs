//! How one batch of requests becomes script calls: identical requests
//! (same keys, quotas, costs and enforced flags, in the same order) merge
//! into one call with a count, and no request is ever decided before an
//! earlier one that shares a key with it.

use std::collections::HashMap;

use crate::{AcquireRequest, BucketKey};

/// One script call: the requests it decides, in arrival order. The first
/// member's limits are the call's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) members: Vec<usize>,
}

impl Run {
    /// Index of the request whose limits the call uses.
    pub(super) fn first(&self) -> usize {
        self.members[0]
    }
}

/// Groups `requests` (each a list of limits) into runs, in pipeline order.
///
/// A request joins an earlier run only when it is identical to that run's
/// requests and that run is still the latest one touching each of its keys:
/// a run is executed at its position in the pipeline, so joining a run that
/// a later run on a shared key follows would decide this request before an
/// earlier one. Otherwise it starts a new run at the end. Requests with no
/// key in common are independent, so their relative order does not matter.
pub(super) fn plan(requests: &[Vec<AcquireRequest>]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut latest: HashMap<&BucketKey, usize> = HashMap::new();
    for (i, limits) in requests.iter().enumerate() {
        let joins = limits
            .first()
            .and_then(|l| latest.get(&l.key).copied())
            .filter(|&r| requests[runs[r].first()] == *limits)
            .filter(|&r| limits.iter().all(|l| latest.get(&l.key) == Some(&r)));
        match joins {
            Some(r) => runs[r].members.push(i),
            None => {
                for l in limits {
                    latest.insert(&l.key, runs.len());
                }
                runs.push(Run { members: vec![i] });
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    fn limit(key: &str, cost: u32) -> AcquireRequest {
        AcquireRequest::new(
            BucketKey::new("plan", key),
            Quota::new(10, 1.0).unwrap(),
            cost,
        )
    }

    fn req(key: &str, cost: u32) -> Vec<AcquireRequest> {
        vec![limit(key, cost)]
    }

    fn members(runs: &[Run]) -> Vec<Vec<usize>> {
        runs.iter().map(|r| r.members.clone()).collect()
    }

    #[test]
    fn same_key_requests_merge_and_keep_arrival_order() {
        let batch = [
            req("a", 1),
            req("b", 1),
            req("a", 1),
            req("a", 1),
            req("b", 1),
        ];
        assert_eq!(members(&plan(&batch)), [vec![0, 2, 3], vec![1, 4]]);
    }

    #[test]
    fn a_different_cost_starts_a_new_run_after_the_previous_one() {
        let batch = [req("a", 1), req("a", 2), req("a", 1), req("a", 1)];
        assert_eq!(members(&plan(&batch)), [vec![0], vec![1], vec![2, 3]]);
    }

    #[test]
    fn a_different_quota_on_the_same_key_is_not_merged() {
        let mut other = req("a", 1);
        other[0].quota = Quota::new(5, 1.0).unwrap();
        let batch = [req("a", 1), other, req("a", 1)];
        assert_eq!(members(&plan(&batch)), [vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn identical_multi_limit_requests_merge() {
        let both = vec![limit("client", 1), limit("ip", 1)];
        let batch = [both.clone(), req("x", 1), both.clone(), both];
        assert_eq!(members(&plan(&batch)), [vec![0, 2, 3], vec![1]]);
    }

    #[test]
    fn requests_sharing_only_some_keys_never_merge_nor_overtake() {
        let a_ip = vec![limit("a", 1), limit("ip", 1)];
        let b_ip = vec![limit("b", 1), limit("ip", 1)];
        // 2 equals 0, but 1 (sharing "ip") came between: 2 must run after 1.
        let batch = [a_ip.clone(), b_ip.clone(), a_ip.clone(), b_ip];
        assert_eq!(members(&plan(&batch)), [vec![0], vec![1], vec![2], vec![3]]);
        // A single-key request on "a" alone is not the same request as a_ip.
        let batch = [a_ip.clone(), req("a", 1), a_ip.clone()];
        assert_eq!(members(&plan(&batch)), [vec![0], vec![1], vec![2]]);
        // Nothing in between shares a key: 0 and 2 merge.
        let batch = [a_ip.clone(), req("z", 1), a_ip];
        assert_eq!(members(&plan(&batch)), [vec![0, 2], vec![1]]);
    }

    #[test]
    fn same_keys_in_another_order_or_enforcement_are_different_requests() {
        let ab = vec![limit("a", 1), limit("b", 1)];
        let ba = vec![limit("b", 1), limit("a", 1)];
        let mut ab_shadow = ab.clone();
        ab_shadow[1].enforced = false;
        let batch = [ab.clone(), ba, ab.clone(), ab_shadow, ab];
        assert_eq!(
            members(&plan(&batch)),
            [vec![0], vec![1], vec![2], vec![3], vec![4]]
        );
    }
}
