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

#[tokio::test]
async fn a_denial_by_one_limit_spends_nothing_on_the_other() {
    let metrics = Arc::new(Metrics::new());
    let t = per_client_and_ip(&metrics, false);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    // Key A: 5 allowed (per-client has the fewest tokens left), the 6th
    // denied by per-client, spending nothing on per-ip.
    let a = send(&e, p, "A", 6).await;
    assert_eq!(a[..5], ["ok:per-client"; 5]);
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
    let metrics = Arc::new(Metrics::new());
    let t = per_client_and_ip(&metrics, true);
    let p = select(&t);
    let e = memory_enforcer(&metrics);
    let a = send(&e, p, "A", 9).await;
    // Forwarded every time; the 6th to 8th are over per-client only (per-ip
    // still spends: shadow limits spend whenever they fit), the 9th over both.
    assert_eq!(a[..5], ["ok:per-client"; 5]);
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
