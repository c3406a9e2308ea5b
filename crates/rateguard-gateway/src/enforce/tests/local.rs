//! `on_error = "local"`: a failing store, decisions on this replica's share.

use super::*;

fn local_enforcer(metrics: &Arc<Metrics>, hint: u32) -> Enforcer<BrokenStore> {
    Enforcer::new(
        BrokenStore::default(),
        Duration::from_millis(50),
        OnError::Local,
        metrics.clone(),
    )
    .with_replicas_hint(hint)
}

#[tokio::test]
async fn a_failing_store_is_replaced_by_the_local_share_of_each_limit() {
    let metrics = Arc::new(Metrics::new());
    let t = table(&metrics, 6);
    let p = select(&t);
    for (hint, expected) in [(1, 6), (3, 2)] {
        let e = local_enforcer(&metrics, hint);
        let mut allowed = 0;
        for _ in 0..20 {
            match check(&e, p, "k").await {
                Verdict::Allowed(Some(r)) => {
                    allowed += 1;
                    assert_eq!(r.decision.limit, expected, "the local share is reported");
                }
                Verdict::Denied(r) => assert!(!r.decision.allowed),
                other => panic!("decided locally, got {other:?}"),
            }
        }
        assert_eq!(allowed, expected, "replicas_hint {hint}");
    }
    let limit = p.tier(None).limit_counters(0);
    assert_eq!(
        limit.local_fallback.get(),
        40,
        "every local decision counted"
    );
    assert_eq!(limit.allowed.get() + limit.denied.get(), 0);
    assert_eq!(p.tier(None).counters.failed_open.get(), 0);
    assert!(metrics
        .encode()
        .contains("rateguard_store_errors_total{error=\"unavailable\"} 40"));
}
