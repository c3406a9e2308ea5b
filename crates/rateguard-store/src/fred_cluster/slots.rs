//! `fred-cluster`'s multi-limit decision: one script call per cluster slot,
//! slots in key order, and a refund of the earlier slots' spends when a
//! later slot denies (the guarantee is in the parent module's docs).

use fred::util::redis_keyslot;
use rateguard_core::bucket;
use rateguard_core::multi::MultiBatch;
use rateguard_core::{Decision, MultiDecision};

use super::{FredClusterStore, FRED_SCRIPT, REFUND_SCRIPT};
use crate::script;
use crate::{AcquireRequest, StoreError};

/// Decides `limits` (distinct keys) slot by slot; see the module docs.
pub(super) async fn acquire_all(
    store: &FredClusterStore,
    limits: &[AcquireRequest],
) -> Result<MultiDecision, StoreError> {
    let enforced: Vec<bool> = limits.iter().map(|l| l.enforced).collect();
    let mut decisions: Vec<Option<Decision>> = vec![None; limits.len()];
    let mut spent: Vec<(Vec<usize>, MultiBatch)> = Vec::new();
    for group in slot_groups(limits) {
        let spec: Vec<_> = group.iter().map(|&i| limits[i].limit()).collect();
        let keys = group.iter().map(|&i| limits[i].key.as_str()).collect();
        let args = script::multi_args(&spec, 1, store.test_now.get());
        let batch = match store.eval(&FRED_SCRIPT, keys, args).await {
            Ok(reply) => script::multi_batch_from_reply(&reply, &spec, 1),
            Err(e) => Err(e),
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                refund(store, limits, &spent).await;
                return Err(e);
            }
        };
        let decision = batch.decision(0);
        for (k, &i) in group.iter().enumerate() {
            decisions[i] = decision.limits()[k];
        }
        if !decision.allowed() {
            refund(store, limits, &spent).await;
            // The earlier slots now hold what they held before this request.
            for (group, batch) in &spent {
                for (k, &i) in group.iter().enumerate() {
                    let b = &batch.buckets[k];
                    let l = &limits[i];
                    let before = bucket::acquire_batch(b.backlog_us, 0, &l.quota, l.cost, 0);
                    decisions[i] = Some(before.after());
                }
            }
            return Ok(MultiDecision::new(decisions, &enforced));
        }
        spent.push((group, batch));
    }
    Ok(MultiDecision::new(decisions, &enforced))
}

/// Indices of `limits` grouped by cluster slot: keys sorted, and the
/// groups in the order of their smallest key.
fn slot_groups(limits: &[AcquireRequest]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..limits.len()).collect();
    order.sort_by(|&a, &b| limits[a].key.cmp(&limits[b].key));
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for i in order {
        let slot = redis_keyslot(limits[i].key.as_str().as_bytes());
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// Gives back what `spent` took, one script call per slot. A refund that
/// fails leaves the tokens spent: the strict side, never over-admission.
async fn refund(
    store: &FredClusterStore,
    limits: &[AcquireRequest],
    spent: &[(Vec<usize>, MultiBatch)],
) {
    for (group, batch) in spent {
        let (keys, mut amounts): (Vec<_>, Vec<_>) = group
            .iter()
            .zip(&batch.buckets)
            .filter(|(_, b)| b.allowed > 0)
            .map(|(&i, b)| {
                let l = &limits[i];
                let amount = u64::from(b.allowed) * u64::from(l.cost) * l.quota.interval_us();
                (l.key.as_str(), amount)
            })
            .unzip();
        if keys.is_empty() {
            continue;
        }
        amounts.extend(store.test_now.get());
        if let Err(e) = store.eval(&REFUND_SCRIPT, keys, amounts).await {
            tracing::warn!(error = %e, "Refund after a denial failed; the tokens stay spent until refill.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BucketKey, Quota};

    #[test]
    fn groups_follow_key_order_and_share_a_slot_only_by_hash_tag() {
        let q = Quota::new(1, 1.0).unwrap();
        let req = |k: &str| AcquireRequest::new(BucketKey::new("p", k), q, 1);
        let limits = [req("b"), req("a"), req("c")];
        let mut sorted: Vec<usize> = (0..3).collect();
        sorted.sort_by(|&x, &y| limits[x].key.cmp(&limits[y].key));
        let groups = slot_groups(&limits);
        let flat: Vec<usize> = groups.iter().flatten().copied().collect();
        assert_eq!(
            groups.len(),
            3,
            "three hash tags, three slots (no collision here)"
        );
        assert_eq!(flat, sorted);
    }
}
