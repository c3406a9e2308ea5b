//! How one batch of requests becomes script calls: requests for the same
//! key (with the same quota and cost) merge into one call with a count,
//! while each key's requests stay in arrival order.

use std::collections::HashMap;

use crate::{AcquireRequest, BucketKey};

/// One script call: the requests it decides, in arrival order. The first
/// member's key, quota and cost are the call's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) members: Vec<usize>,
}

impl Run {
    /// Index of the request whose key, quota and cost the call uses.
    pub(super) fn first(&self) -> usize {
        self.members[0]
    }
}

/// Groups `requests` into runs. A request joins its key's latest run when it
/// has the same quota and cost; otherwise it starts a new run after it, so a
/// key's runs (and their members) keep arrival order. Different keys are
/// independent, so their relative order does not matter.
pub(super) fn plan(requests: &[AcquireRequest]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut latest: HashMap<&BucketKey, usize> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let joins = latest.get(&request.key).copied().filter(|&r| {
            let head = &requests[runs[r].first()];
            head.quota == request.quota && head.cost == request.cost
        });
        match joins {
            Some(r) => runs[r].members.push(i),
            None => {
                latest.insert(&request.key, runs.len());
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

    fn req(key: &str, cost: u32) -> AcquireRequest {
        AcquireRequest {
            key: BucketKey::new("plan", key),
            quota: Quota::new(10, 1.0).unwrap(),
            cost,
        }
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
        other.quota = Quota::new(5, 1.0).unwrap();
        let batch = [req("a", 1), other, req("a", 1)];
        assert_eq!(members(&plan(&batch)), [vec![0], vec![1], vec![2]]);
    }
}
