//! Multi-limit checks: a request denied by one limit spends nothing on the
//! others, shadow limits never deny, and layered limits hold under
//! concurrency across instances.

use std::collections::HashMap;

use super::unique_key;
use crate::{AcquireRequest, BucketKey, BucketStore, Quota};

/// Limits that do not refill during a check.
fn quota(capacity: u64) -> Quota {
    Quota::new(capacity, 0.001).unwrap()
}

/// Issue 9's case: per-client 5, per-ip 8. Client A sends 6 (5 allowed),
/// then client B from the same IP sends 6: exactly 3 allowed, because A's
/// sixth request, denied by A's own limit, spent nothing on the IP's bucket.
pub async fn denied_limit_spends_nothing_elsewhere<S: BucketStore>(store: &S) {
    let ip = unique_key("ml-ip");
    let mut allowed = Vec::new();
    for client in [unique_key("ml-a"), unique_key("ml-b")] {
        let limits = [
            AcquireRequest::new(client, quota(5), 1),
            AcquireRequest::new(ip.clone(), quota(8), 1),
        ];
        let mut n = 0;
        for i in 0..6 {
            let d = store.acquire_all(&limits).await.expect("acquire_all");
            n += u32::from(d.allowed());
            if !d.allowed() {
                let (denier, reported) = d.reported().expect("a denying limit");
                assert!(!reported.allowed && reported.retry_after > std::time::Duration::ZERO);
                // A is denied by its own limit; B's last ones by the IP's.
                assert_eq!(
                    denier,
                    usize::from(n == 3),
                    "{}: request {i}: {d:?}",
                    store.name()
                );
            }
        }
        allowed.push(n);
    }
    assert_eq!(allowed, [5, 3], "{}: per-client, then per-ip", store.name());
}

/// A shadow limit is spent while it fits and never denies; an enforced
/// limit beside it decides alone.
pub async fn shadow_limits_never_deny<S: BucketStore>(store: &S) {
    let limits = [
        AcquireRequest::new(unique_key("ml-enforced"), quota(3), 1),
        AcquireRequest::shadow(unique_key("ml-shadow"), quota(1), 1),
    ];
    let mut seen = Vec::new();
    for _ in 0..4 {
        let d = store.acquire_all(&limits).await.expect("acquire_all");
        // fred-cluster may not ask a later slot once a limit denied.
        let shadow = d.limits()[1].is_some_and(|s| s.allowed);
        seen.push((d.allowed(), shadow));
    }
    let expected = [(true, true), (true, false), (true, false), (false, false)];
    assert_eq!(seen, expected, "{}", store.name());
    let shadow = store
        .acquire(&limits[1].key, &limits[1].quota, 0)
        .await
        .unwrap();
    assert_eq!(shadow.remaining, 0, "{}: shadow spent once", store.name());
}

/// A request naming one bucket twice is an error; one with no limits is
/// allowed.
pub async fn duplicate_keys_are_refused<S: BucketStore>(store: &S) {
    let key = unique_key("ml-dup");
    let twice = [
        AcquireRequest::new(key.clone(), quota(5), 1),
        AcquireRequest::new(key, quota(9), 1),
    ];
    let err = store.acquire_all(&twice).await.unwrap_err();
    assert!(
        err.to_string().contains("appears twice"),
        "{}: {err}",
        store.name()
    );
    assert!(store.acquire_all(&[]).await.unwrap().allowed());
}

/// `clients` clients behind one IP, each sending `per_client` requests at
/// once, spread over `stores` (independent instances, as replicas hold):
/// per-client limit 5, per-ip limit 30. Asserts what every store promises,
/// never over-admission: at most 5 per client and 30 in all, and the IP's
/// bucket left holding exactly `30 − allowed` (nothing spent by denied
/// requests, every refund complete). Returns the number allowed; exact
/// stores must admit exactly `min(30, 5 · clients)`.
pub async fn layered_limits_under_concurrency<S: BucketStore + Clone>(
    stores: &[S],
    clients: usize,
    per_client: usize,
) -> usize {
    let ip = unique_key("ml-shared-ip");
    let client_keys: Vec<BucketKey> = (0..clients).map(|_| unique_key("ml-client")).collect();
    let mut tasks = Vec::new();
    for round in 0..per_client {
        for (c, client) in client_keys.iter().enumerate() {
            let store = stores[(round + c) % stores.len()].clone();
            let limits = [
                AcquireRequest::new(client.clone(), quota(5), 1),
                AcquireRequest::new(ip.clone(), quota(30), 1),
            ];
            tasks.push(tokio::spawn(async move {
                (c, store.acquire_all(&limits).await.expect("store error"))
            }));
        }
    }
    let mut per: HashMap<usize, usize> = HashMap::new();
    for task in tasks {
        let (c, d) = task.await.expect("task");
        *per.entry(c).or_default() += usize::from(d.allowed());
    }
    let allowed: usize = per.values().sum();
    let name = stores[0].name();
    assert!(
        per.values().all(|&n| n <= 5),
        "{name}: a client got more than 5: {per:?}"
    );
    assert!(
        allowed <= 30,
        "{name}: {allowed} allowed through a per-ip limit of 30"
    );
    let left = stores[0].acquire(&ip, &quota(30), 0).await.unwrap();
    assert_eq!(
        left.remaining as usize,
        30 - allowed,
        "{name}: the IP's bucket must hold exactly what was not admitted"
    );
    allowed
}

/// Concurrent requests whose limits share some keys but not others
/// (`[a, ip]`, `[b, ip]`, `[ip]`, `[a]`, `[a, b, ip]`, with a shadow limit
/// in one kind): however they are batched, merged or ordered, every bucket
/// ends up holding exactly its capacity minus what the allowed requests
/// that name it spent, and no bucket admits more than its capacity.
pub async fn overlapping_requests_account_exactly<S: BucketStore + Clone>(stores: &[S]) {
    overlapping_requests(stores, true).await;
}

/// [`overlapping_requests_account_exactly`] for a store that leases
/// tokens (`redis-leased`): no bucket admits more than its capacity, and
/// each holds at most what its allowed requests did not spend (tokens
/// leased and not spent are missing from it: under-admission only).
pub async fn overlapping_requests_never_over_admit<S: BucketStore + Clone>(stores: &[S]) {
    overlapping_requests(stores, false).await;
}

async fn overlapping_requests<S: BucketStore + Clone>(stores: &[S], exact: bool) {
    let (a, b, ip) = (unique_key("ov-a"), unique_key("ov-b"), unique_key("ov-ip"));
    let caps = [(&a, 12u64), (&b, 9), (&ip, 25)];
    let limit = |key: &BucketKey| {
        let cap = caps.iter().find(|(k, _)| *k == key).unwrap().1;
        AcquireRequest::new(key.clone(), quota(cap), 1)
    };
    let mut shadow_b = limit(&b);
    shadow_b.enforced = false;
    let kinds: Vec<Vec<AcquireRequest>> = vec![
        vec![limit(&a), limit(&ip)],
        vec![limit(&b), limit(&ip)],
        vec![limit(&ip)],
        vec![limit(&a)],
        vec![limit(&a), limit(&b), limit(&ip)],
        vec![shadow_b, limit(&a)],
    ];
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = stores[i % stores.len()].clone();
        let limits = kinds[(i * 7) % kinds.len()].clone();
        tasks.push(tokio::spawn(async move {
            let d = store.acquire_all(&limits).await.expect("store error");
            // What this request spent on each key.
            let spent: Vec<(BucketKey, bool)> = limits
                .iter()
                .zip(d.limits())
                .map(|(l, v)| {
                    let fits = v.is_some_and(|v| v.allowed);
                    (l.key.clone(), d.allowed() && (l.enforced || fits))
                })
                .collect();
            spent
        }));
    }
    let mut spent: HashMap<BucketKey, u64> = HashMap::new();
    for task in tasks {
        for (key, did) in task.await.expect("task") {
            *spent.entry(key).or_default() += u64::from(did);
        }
    }
    let name = stores[0].name();
    for (key, cap) in caps {
        let used = spent.get(key).copied().unwrap_or(0);
        assert!(used <= cap, "{name}: {key} admitted {used} > {cap}");
        let left = u64::from(
            stores[0]
                .acquire(key, &quota(cap), 0)
                .await
                .unwrap()
                .remaining,
        );
        if exact {
            assert_eq!(
                left,
                cap - used,
                "{name}: {key} holds what its allowed requests did not spend"
            );
        } else {
            assert!(
                left <= cap - used,
                "{name}: {key} holds {left}, more than the {} its allowed requests did not spend",
                cap - used
            );
        }
    }
}
