use super::*;
use crate::lease::{self, LeaseLimit};
use crate::Limit;
use proptest::prelude::*;

const MS: u64 = 1_000;
const T0: u64 = 1_000_000_000;

fn quota(capacity: u64, rate: f64) -> Quota {
    Quota::new(capacity, rate).unwrap()
}

fn req(holder: &str, demand: u32, fill: Fill) -> ShareRequest<'_> {
    ShareRequest {
        holder,
        demand,
        ttl_us: 100 * MS,
        margin_us: 5 * MS,
        fill,
    }
}

fn ledger(stored: &Stored) -> &Ledger {
    match stored {
        Stored::Shared(l) => l,
        Stored::Plain { .. } => panic!("expected a ledger, got {stored:?}"),
    }
}

#[test]
fn three_holders_converge_to_a_third_each_and_freed_rate_waits_for_expiry() {
    let q = quota(300, 1000.0);
    let mut s = Stored::default();
    let a = s.grant(T0, &q, &req("a", 700, Fill::Carry));
    assert_eq!((a.parts, a.burst, a.added, a.fresh), (700, 210, 210, false));
    let b = s.grant(T0 + MS, &q, &req("b", 700, Fill::Carry));
    assert_eq!(b.parts, 300, "only what a does not reserve");
    let c = s.grant(T0 + 2 * MS, &q, &req("c", 700, Fill::Carry));
    assert_eq!(
        c.parts, 0,
        "nothing left until a shrinks and its grant expires"
    );
    assert_eq!(
        ledger(&s).holders["c"].demand,
        700,
        "its demand is on record"
    );
    // a renews: the fair level of three demands of 700 is 333.
    let a2 = s.grant(T0 + 50 * MS, &q, &req("a", 700, Fill::Carry));
    assert_eq!(a2.parts, 333);
    assert_eq!(
        ledger(&s).holders["a"].rate(),
        700,
        "the old grant stays reserved"
    );
    let c2 = s.grant(T0 + 60 * MS, &q, &req("c", 700, Fill::Carry));
    assert_eq!(c2.parts, 0);
    // a's first grant expires at T0 + 100 ms, reserved 5 ms more.
    let c3 = s.grant(T0 + 105 * MS, &q, &req("c", 700, Fill::Carry));
    assert_eq!(c3.parts, 0, "still within the margin");
    // The rate is free now, but a's old burst came back as debt, not yet
    // drained: c's burst is pending, and ordinary decisions leave it free.
    let c4 = s.grant(T0 + 106 * MS, &q, &req("c", 700, Fill::Carry));
    assert_eq!(c4.parts, 0);
    assert_eq!(ledger(&s).holders["c"].pending, 99);
    assert_eq!(
        ledger(&s).debt(T0 + 106 * MS, &q).backlog_us,
        q.fill_time_us()
    );
    // 4 ms at the 367 parts a and b leave: one token of room. (b did not
    // renew: gone at T0 + 106 ms, so c's fair level is now half.)
    let c5 = s.grant(T0 + 110 * MS, &q, &req("c", 700, Fill::Carry));
    assert_eq!((c5.parts, c5.burst, c5.added), (500, 1, 1));
    assert!(!ledger(&s).holders.contains_key("b"));
    let l = ledger(&s);
    assert!(l.reserved_parts() <= SHARE_PARTS);
    assert!(l.reserved_burst() <= u64::from(q.capacity()));
}

#[test]
fn ordinary_decisions_see_the_bucket_minus_the_shares() {
    let q = quota(100, 1000.0); // T = 1 ms, C·T = 100 ms
    let mut stored = [Stored::default()];
    let g = stored[0].grant(T0, &q, &req("a", 500, Fill::Carry));
    assert_eq!((g.parts, g.burst), (500, 50));
    let ordinary = [LeaseLimit::ordinary(Limit::enforced(q, 1))];
    // The ordinary part holds C − 50 = 50 tokens.
    let admitted = (0..60)
        .filter(|_| lease::acquire_all(T0, &mut stored, &ordinary).allowed)
        .count();
    assert_eq!(admitted, 50);
    // It refills at half the rate: 10 ms give 5 tokens, not 10.
    let admitted = (0..10)
        .filter(|_| lease::acquire_all(T0 + 10 * MS, &mut stored, &ordinary).allowed)
        .count();
    assert_eq!(admitted, 5);
    // After the share's reservation ends, the whole rate is back, and the
    // ledger is plain again at the next write.
    let later = T0 + 200 * MS;
    assert!(lease::acquire_all(later, &mut stored, &ordinary).allowed);
    assert!(matches!(stored[0], Stored::Plain { .. }), "{:?}", stored[0]);
}

#[test]
fn a_full_holder_pays_for_each_new_bucket_and_not_for_a_renewal() {
    let q = quota(100, 1000.0);
    let mut s = Stored::default();
    let g = s.grant(T0, &q, &req("envoy", 400, Fill::Full));
    // A Full holder's burst is half its part of the capacity.
    assert_eq!((g.parts, g.burst, g.added, g.fresh), (400, 20, 20, true));
    assert_eq!(ledger(&s).debt_us, 20 * MS, "its burst inserted, paid for");
    let same = s.grant(T0 + 10 * MS, &q, &req("envoy", 400, Fill::Full));
    assert_eq!(
        (same.parts, same.burst, same.added, same.fresh),
        (400, 20, 0, false)
    );
    assert_eq!(ledger(&s).holders["envoy"].steps.len(), 1);
    // A changed share is a new bucket beside the old one until that
    // expires: 20 + 40 reserved, the 40 paid for.
    let changed = s.grant(T0 + 20 * MS, &q, &req("envoy", 800, Fill::Full));
    assert_eq!(
        (changed.parts, changed.burst, changed.added, changed.fresh),
        (800, 40, 40, true)
    );
    assert_eq!(ledger(&s).holders["envoy"].burst(), 60);
    assert_eq!(ledger(&s).debt_us, 60 * MS);
}

#[test]
fn a_full_holder_keeps_its_bucket_while_a_new_one_would_be_short() {
    let q = quota(100, 1000.0);
    let mut s = Stored::default();
    let a = s.grant(T0, &q, &req("a", 300, Fill::Full));
    assert_eq!((a.parts, a.burst), (300, 15));
    // Others take the rest of the capacity (as ordinary decisions).
    s.take(T0, &q, 85);
    // `a` now wants more: a new bucket would be empty, so it keeps its
    // bucket (extended), at its old share.
    let more = s.grant(T0 + 10 * MS, &q, &req("a", 600, Fill::Full));
    assert_eq!(
        (more.parts, more.burst, more.added, more.fresh),
        (300, 15, 0, false)
    );
    assert_eq!(ledger(&s).holders["a"].steps.len(), 1);
    // A smaller share is never kept: it gets what a new bucket can hold.
    let less = s.grant(T0 + 20 * MS, &q, &req("a", 100, Fill::Full));
    assert!(less.parts <= 100, "{less:?}");
}

#[test]
fn a_burst_the_bucket_cannot_pay_is_pending_until_it_can() {
    let q = quota(10, 1000.0);
    let mut stored = [Stored::default()];
    let all = [LeaseLimit::ordinary(Limit::enforced(q, 10))];
    assert!(lease::acquire_all(T0, &mut stored, &all).allowed);
    let g = stored[0].grant(T0, &q, &req("envoy", 1000, Fill::Full));
    assert_eq!((g.parts, g.burst, g.added, g.fresh), (0, 0, 0, false));
    // 10 ms later the bucket has refilled, but ordinary decisions must
    // leave the pending 4 free (a Full holder shares 950 parts, with half
    // their part of the capacity as its burst: 4).
    let seven = [LeaseLimit::ordinary(Limit::enforced(q, 7))];
    assert!(!lease::acquire_all(T0 + 10 * MS, &mut stored, &seven).allowed);
    let g = stored[0].grant(T0 + 10 * MS, &q, &req("envoy", 1000, Fill::Full));
    assert_eq!((g.parts, g.burst, g.added, g.fresh), (950, 4, 4, true));
}

#[test]
fn a_local_share_carries_tokens_only_while_valid() {
    let q = quota(100, 1000.0); // T = 1 ms
    let mut local = LocalShare::default();
    let grant = ShareGrant {
        parts: 500,
        burst: 4,
        added: 0,
        fresh: false,
    };
    local.apply(T0, T0 + MS, &q, 10 * MS, &grant);
    assert_eq!(local.tokens(T0 + MS), 0, "nothing paid in: it starts empty");
    assert_eq!(local.tokens(T0 + 5 * MS), 2, "one token per 2 ms");
    let r = local.try_spend(T0 + 5 * MS, 2).unwrap();
    assert_eq!(local.tokens(T0 + 5 * MS), 0);
    local.refund(r);
    assert_eq!(local.tokens(T0 + 5 * MS), 2);
    // Renewed while valid: the tokens carry over (capped by the new burst).
    let smaller = ShareGrant {
        parts: 250,
        burst: 1,
        ..grant
    };
    local.apply(T0 + 6 * MS, T0 + 7 * MS, &q, 10 * MS, &smaller);
    assert_eq!(local.tokens(T0 + 7 * MS), 1);
    // Lapsed at T0 + 16 ms: nothing to spend, and a renewal starts empty.
    assert!(local.try_spend(T0 + 16 * MS, 1).is_none());
    local.apply(T0 + 20 * MS, T0 + 21 * MS, &q, 10 * MS, &grant);
    assert_eq!(local.tokens(T0 + 21 * MS), 0);
    // A late reply to an older call changes nothing.
    let paid = ShareGrant { added: 3, ..grant };
    local.apply(T0 + 19 * MS, T0 + 22 * MS, &q, 10 * MS, &paid);
    assert_eq!(local.tokens(T0 + 22 * MS), 0);
    // Tokens paid in add to what is carried, up to the burst.
    local.apply(T0 + 22 * MS, T0 + 22 * MS, &q, 10 * MS, &paid);
    assert_eq!(local.tokens(T0 + 22 * MS), 3);
    local.apply(T0 + 23 * MS, T0 + 23 * MS, &q, 10 * MS, &paid);
    assert_eq!(local.tokens(T0 + 23 * MS), 4);
    // A fresh bucket holds just what was paid in.
    let fresh = ShareGrant {
        added: 2,
        fresh: true,
        ..grant
    };
    local.apply(T0 + 24 * MS, T0 + 24 * MS, &q, 10 * MS, &fresh);
    assert_eq!(local.tokens(T0 + 24 * MS), 2);
}

#[test]
fn ledger_fields_round_trip_and_name_a_bad_field() {
    let q = quota(50, 100.0);
    let mut s = Stored::default();
    s.grant(T0, &q, &req("gw-1:4242", 300, Fill::Carry));
    s.grant(T0 + MS, &q, &req("envoy 7", 200, Fill::Full));
    s.grant(T0 + 2 * MS, &q, &req("gw-1:4242", 100, Fill::Carry));
    let l = ledger(&s).clone();
    let fields = l.to_fields();
    let parsed =
        Ledger::from_fields(fields.iter().rev().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    assert_eq!(parsed, l);
    let err = Ledger::from_fields([("h:x", "1 0 2 3")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed share ledger field h:x = \"1 0 2 3\""
    );
}

#[test]
fn the_seal_makes_a_plain_reader_see_an_empty_bucket_while_the_ledger_lives() {
    let q = quota(10, 10.0); // C·T = 1 s
    let mut s = Stored::default();
    s.grant(T0, &q, &req("a", 500, Fill::Carry));
    let l = ledger(&s);
    let forget = l.forget_at_us(&q).unwrap();
    assert_eq!(forget, T0 + 105 * MS + 1_000 * MS);
    let ttl_ms = l.ttl_ms(T0, &q);
    assert_eq!(ttl_ms, 1_105 + 1_000);
    let seal = l.seal_us(T0, &q);
    let plain = Stored::Plain { tat_us: seal };
    let last_moment = T0 + ttl_ms * 1000;
    assert_eq!(plain.debt(last_moment, &q).backlog_us, q.fill_time_us());
}

proptest! {
    /// Whatever holders ask, in any order and at any time: Σ reserved rates
    /// ≤ R, Σ reserved bursts ≤ C, and the ordinary debt stays between the
    /// reserved bursts and the bucket's fill time.
    #[test]
    fn reservations_never_exceed_the_bucket(
        capacity in 1u64..40,
        ops in prop::collection::vec(
            (0u64..30_000, 0usize..4, 0u32..1200, 1u64..200_000, any::<bool>(), 0u32..3),
            1..40,
        ),
    ) {
        let q = quota(capacity, 1000.0);
        let ids = ["a", "b", "c", "d"];
        let mut stored = [Stored::default()];
        let mut now = T0;
        for (dt, who, demand, ttl, full, cost) in ops {
            now += dt;
            if cost == 0 {
                let r = ShareRequest {
                    holder: ids[who],
                    demand,
                    ttl_us: ttl,
                    margin_us: 1_000,
                    fill: if full { Fill::Full } else { Fill::Carry },
                };
                let g = stored[0].grant(now, &q, &r);
                prop_assert!(g.parts <= SHARE_PARTS && u64::from(g.burst) <= capacity);
                prop_assert_eq!(g.parts == 0, g.burst == 0);
            } else {
                let ordinary = [LeaseLimit::ordinary(Limit::enforced(q, cost))];
                lease::acquire_all(now, &mut stored, &ordinary);
            }
            if let Stored::Shared(l) = &stored[0] {
                prop_assert!(l.reserved_parts() <= SHARE_PARTS);
                prop_assert!(l.reserved_burst() <= capacity);
                prop_assert!(l.debt_us <= q.fill_time_us());
                prop_assert!(l.debt_us >= l.reserved_burst() * q.interval_us());
                for h in l.holders.values() {
                    prop_assert!(h.steps.len() <= MAX_STEPS);
                }
            }
        }
    }
}

#[test]
fn switching_to_full_counts_the_carried_grants_as_one_bucket() {
    // Found by `reservations_never_exceed_the_bucket`: three carry grants
    // (one bucket, reserved at their max) summed as if three buckets.
    let q = quota(14, 1000.0);
    let mut s = Stored::default();
    for demand in [445, 429, 215] {
        s.grant(T0, &q, &req("a", demand, Fill::Carry));
    }
    assert_eq!(ledger(&s).holders["a"].steps.len(), 3);
    s.grant(T0, &q, &req("a", 0, Fill::Full));
    let a = &ledger(&s).holders["a"];
    assert!(a.full);
    assert_eq!(a.burst(), 6, "the largest carried burst, once");
}

#[test]
fn a_refund_gives_back_no_more_than_a_world_without_the_reservation() {
    // Found by the simulation: a full bucket of 1 reserves its token; while
    // the request waits for the store the bucket refills (it would have
    // been full and wasted that refill) and another request spends it. The
    // denied request's refund must then give back nothing.
    let q = quota(1, 1000.0);
    let grant = ShareGrant {
        parts: 1000,
        burst: 1,
        added: 1,
        fresh: false,
    };
    let mut local = LocalShare::default();
    local.apply(T0, T0, &q, 100 * MS, &grant);
    let held = local.try_spend(T0, 1).expect("full");
    let spent = local.try_spend(T0 + MS, 1).expect("refilled");
    local.confirm(spent);
    local.refund(held);
    assert!(local.try_spend(T0 + MS, 1).is_none(), "one token, not two");
    // Without anything in between, a refund is exact.
    let held = local.try_spend(T0 + 2 * MS, 1).unwrap();
    local.refund(held);
    assert_eq!(local.tokens(T0 + 2 * MS), 1);
}
