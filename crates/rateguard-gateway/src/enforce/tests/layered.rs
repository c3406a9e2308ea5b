//! Layered limits through the enforcer (memory store): all or nothing,
//! the reported limit, limits that do not apply, cost, the deny cache.

use rateguard_contract::LimitKey;

use super::*;
use crate::config::LimitConfig;

fn limit(name: &str, key: LimitKey, capacity: u64) -> LimitConfig {
    LimitConfig {
        name: name.into(),
        key,
        quota: Quota::new(capacity, 0.001).unwrap(),
    }
}

/// A default policy `p` with `limits`, spending `cost` per request.
fn layered(metrics: &Metrics, cost: u32, shadow: bool, limits: Vec<LimitConfig>) -> PolicyTable {
    let config = PolicyConfig {
        cost,
        shadow,
        limits,
        ..PolicyConfig::single("p", Quota::new(1, 1.0).unwrap())
    };
    PolicyTable::new(&[config], metrics)
}

fn per_client_and_ip(metrics: &Metrics, shadow: bool) -> PolicyTable {
    layered(
        metrics,
        1,
        shadow,
        vec![
            limit("per-client", LimitKey::Client, 5),
            limit("per-ip", LimitKey::Ip, 8),
        ],
    )
}

/// Which limit reported each verdict ("ok:<limit>", "429:<limit>", ...).
fn outcome(p: &Policy, v: &Verdict) -> String {
    let name = |r: &Reported| p.limits()[r.limit].name().to_owned();
    match v {
        Verdict::Allowed(Some(r)) => format!("ok:{}", name(r)),
        Verdict::Allowed(None) => "ok:-".into(),
        Verdict::Denied(r) => format!("429:{}", name(r)),
        Verdict::ShadowDenied(r) => format!("shadow:{}", name(r)),
        Verdict::FailedOpen => "failed_open".into(),
        Verdict::FailedClosed => "failed_closed".into(),
    }
}

async fn send<S: BucketStore>(e: &Enforcer<S>, p: &Policy, key: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(outcome(p, &check(e, p, key).await));
    }
    out
}

/// Key A's `n` requests under a per-client 5 / per-ip 8 policy (shadow or
/// not): their outcomes, the table (for its counters) and the enforcer.
async fn key_a_sends(n: usize, shadow: bool) -> (Vec<String>, PolicyTable, Enforcer<MemoryStore>) {
    let metrics = Arc::new(Metrics::new());
    let t = per_client_and_ip(&metrics, shadow);
    let e = memory_enforcer(&metrics);
    let a = send(&e, select(&t), "A", n).await;
    // per-client has the fewest tokens left in each of the first 5.
    assert_eq!(a[..5], ["ok:per-client"; 5]);
    (a, t, e)
}

#[tokio::test]
async fn a_denial_by_one_limit_spends_nothing_on_the_other() {
    // Key A: 5 allowed, the 6th denied by per-client, spending nothing on per-ip.
    let (a, t, e) = key_a_sends(6, false).await;
    let p = select(&t);
    assert_eq!(a[5], "429:per-client");
    // Key B from the same IP: per-ip has 8 - 5 = 3 left.
    let b = send(&e, p, "B", 6).await;
    assert_eq!(
        b,
        [
            "ok:per-ip",
            "ok:per-ip",
            "ok:per-ip",
            "429:per-ip",
            "429:per-ip",
            "429:per-ip"
        ]
    );
    let [client, ip] = p.limits() else {
        unreachable!()
    };
    assert_eq!(client.counters.allowed.get(), 5);
    assert_eq!(client.counters.denied.get(), 1);
    assert_eq!(ip.counters.allowed.get(), 3);
    assert_eq!(ip.counters.denied.get(), 3);
}

#[tokio::test]
async fn invented_keys_from_one_ip_share_its_per_ip_limit() {
    let metrics = Arc::new(Metrics::new());
    let t = per_client_and_ip(&metrics, false);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let mut allowed = 0;
    for i in 0..30 {
        if matches!(
            check(&e, p, &format!("invented-{i}")).await,
            Verdict::Allowed(_)
        ) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 8);
}

#[tokio::test]
async fn a_cost_of_five_fits_twice_in_twelve() {
    let metrics = Arc::new(Metrics::new());
    let t = layered(&metrics, 5, false, vec![limit("per-ip", LimitKey::Ip, 12)]);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let verdicts: Vec<Verdict> = [
        check(&e, p, "").await,
        check(&e, p, "").await,
        check(&e, p, "").await,
    ]
    .into();
    let Verdict::Allowed(Some(second)) = verdicts[1] else {
        panic!("{verdicts:?}")
    };
    assert_eq!(second.decision.remaining, 2);
    assert!(matches!(verdicts[2], Verdict::Denied(_)), "{verdicts:?}");
}

#[tokio::test]
async fn limits_that_do_not_apply_are_left_out_and_none_means_no_store_call() {
    let metrics = Arc::new(Metrics::new());
    let t = layered(
        &metrics,
        1,
        false,
        vec![
            limit("per-key", LimitKey::ApiKey, 1),
            limit("per-tenant", LimitKey::Header("x-tenant".into()), 1),
        ],
    );
    let p = select(&t);
    let store = BrokenStore::default();
    let e = Enforcer::new(
        store,
        Duration::from_millis(50),
        OnError::Deny,
        metrics.clone(),
    );
    // Neither a key nor the header: nothing to ask the (broken) store.
    assert_eq!(check(&e, p, "").await, Verdict::Allowed(None));
    assert_eq!(e.store().calls.load(Ordering::SeqCst), 0);
    assert_eq!(p.counters.unlimited.get(), 1);
    // With a key, the per-key limit applies (and the broken store fails closed).
    assert_eq!(check(&e, p, "k").await, Verdict::FailedClosed);
    assert_eq!(e.store().calls.load(Ordering::SeqCst), 1);
    // Only the applicable limit was spent: one per-key token per key.
    let e = memory_enforcer(&metrics);
    assert_eq!(send(&e, p, "k", 2).await, ["ok:per-key", "429:per-key"]);
}

#[tokio::test]
async fn a_shadow_policy_reports_the_denying_limit_with_the_longest_wait() {
    let (a, t, _) = key_a_sends(9, true).await;
    let p = select(&t);
    // Forwarded every time; the 6th to 8th are over per-client only (per-ip
    // still spends: shadow limits spend whenever they fit), the 9th over both.
    assert_eq!(a[5..8], ["shadow:per-client"; 3]);
    assert_eq!(
        a[8], "shadow:per-client",
        "both deny; per-client waits longest"
    );
    let [client, ip] = p.limits() else {
        unreachable!()
    };
    assert_eq!(client.counters.shadow_denied.get(), 4);
    assert_eq!(ip.counters.shadow_denied.get(), 0);
    assert_eq!(client.counters.denied.get() + ip.counters.denied.get(), 0);
}

#[tokio::test]
async fn repeated_denials_come_from_the_deny_cache_and_are_counted() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 2);
    let p = select(&t);
    let e = memory_enforcer(&metrics).with_deny_cache(100);
    assert!(e.has_deny_cache());
    let verdicts = send(&e, p, "k", 5).await;
    assert_eq!(
        verdicts,
        [
            "ok:client",
            "ok:client",
            "429:client",
            "429:client",
            "429:client"
        ]
    );
    // The first denial asked the store; the next two were answered locally.
    assert_eq!(p.counters.deny_cache_hits.get(), 2);
    assert_eq!(p.limits()[0].counters.denied.get(), 3);
    assert!(!memory_enforcer(&metrics).has_deny_cache());
}

/// A store of any kind that denies every limit (each bucket empty: its
/// backlog is the whole fill time), counting its calls.
#[derive(Debug)]
struct Denying {
    kind: rateguard_store::StoreKind,
    calls: AtomicUsize,
}

impl BucketStore for Denying {
    fn kind(&self) -> rateguard_store::StoreKind {
        self.kind
    }

    /// fred-cluster refunds; the others do not.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            shared: true,
            refunds: self.kind == rateguard_store::StoreKind::FredCluster,
        }
    }

    async fn acquire_all(&self, limits: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let denial = |r: &AcquireRequest| {
            Some(Decision {
                allowed: false,
                limit: r.quota.capacity(),
                remaining: 0,
                retry_after: r.quota.fill_time() / r.quota.capacity(),
                reset_after: r.quota.fill_time(),
            })
        };
        let enforced: Vec<bool> = limits.iter().map(|r| r.enforced).collect();
        Ok(MultiDecision::new(
            limits.iter().map(denial).collect(),
            &enforced,
        ))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Store calls for 4 requests of one key under `t`'s policy, through the
/// deny cache, on a store of `kind`.
async fn calls_through_the_cache(kind: rateguard_store::StoreKind, t: &PolicyTable) -> usize {
    let metrics = Arc::new(Metrics::new());
    let store = Denying {
        kind,
        calls: AtomicUsize::new(0),
    };
    let e =
        Enforcer::new(store, Duration::from_secs(1), OnError::Deny, metrics).with_deny_cache(10);
    for _ in 0..4 {
        assert!(matches!(
            check(&e, select(t), "k").await,
            Verdict::Denied(_)
        ));
    }
    e.store().calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn on_fred_cluster_only_single_limit_policies_use_the_deny_cache() {
    use rateguard_store::StoreKind;
    let metrics = Metrics::new();
    let single = table(&metrics, 3);
    let two = per_client_and_ip(&metrics, false);
    // Elsewhere the cache answers after the first denial, layered or not.
    assert_eq!(
        calls_through_the_cache(StoreKind::RedisLua, &single).await,
        1
    );
    assert_eq!(calls_through_the_cache(StoreKind::RedisLua, &two).await, 1);
    // fred-cluster refunds layered buckets after a later slot denies: a
    // cached denial of one could outlive the refund, so those go to the store.
    assert_eq!(
        calls_through_the_cache(StoreKind::FredCluster, &single).await,
        1
    );
    assert_eq!(
        calls_through_the_cache(StoreKind::FredCluster, &two).await,
        4
    );
}
