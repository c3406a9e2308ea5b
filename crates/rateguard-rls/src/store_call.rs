//! The one store call of a request, all or nothing.
//!
//! Written against the agreed `BucketStore::acquire_all` (branch
//! `multilimit`). Until that lands, this stand-in looks at every bucket
//! (cost 0 spends nothing), then spends on all of them only if every
//! enforced one fits; buckets that do not fit are asked with their real
//! cost, which a store answers with a denial that writes nothing. It is
//! all-or-nothing for one caller but not atomic across concurrent callers.

use rateguard_core::{BucketKey, MultiDecision, Quota};
use rateguard_store::{BucketStore, StoreError};

/// One bucket of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) key: BucketKey,
    pub(crate) quota: Quota,
    pub(crate) cost: u32,
    pub(crate) enforced: bool,
}

/// Decides every `want` of one request.
pub(crate) async fn acquire_all<S: BucketStore>(
    store: &S,
    wants: &[Want],
) -> Result<MultiDecision, StoreError> {
    let mut peeks = Vec::with_capacity(wants.len());
    for want in wants {
        peeks.push(store.acquire(&want.key, &want.quota, 0).await?);
    }
    let fits = |i: usize| wants[i].cost <= peeks[i].remaining;
    let allowed = (0..wants.len()).all(|i| !wants[i].enforced || fits(i));
    let mut limits = Vec::with_capacity(wants.len());
    for (i, want) in wants.iter().enumerate() {
        let decision = if allowed || !fits(i) {
            store.acquire(&want.key, &want.quota, want.cost).await?
        } else {
            peeks[i]
        };
        limits.push(Some(decision));
    }
    let enforced: Vec<bool> = wants.iter().map(|w| w.enforced).collect();
    Ok(MultiDecision::new(limits, &enforced))
}
