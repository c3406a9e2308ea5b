use super::*;
use crate::multi;
use proptest::prelude::*;

const MS: u64 = 1_000;
const T0: u64 = 1_000_000_000;

fn quota(capacity: u64, rate: f64) -> Quota {
    Quota::new(capacity, rate).unwrap()
}

fn leasing(quota: Quota, cost: u32, want: u32) -> LeaseLimit {
    LeaseLimit {
        limit: Limit::enforced(quota, cost),
        want,
    }
}

#[test]
fn a_grant_is_an_acquire_of_its_size_and_fewer_when_fewer_fit() {
    let q = quota(10, 1000.0); // T = 1 ms, C·T = 10 ms
    let mut stored = [Stored::default()];
    let batch = acquire_all(T0, &mut stored, &[leasing(q, 1, 4)]);
    assert!(batch.allowed);
    assert_eq!(batch.buckets[0].granted, 4);
    assert_eq!(
        stored[0],
        Stored::Plain {
            tat_us: T0 + 5 * MS
        }
    );
    // 5 tokens left: cost 1, then only 4 of the 6 wanted fit.
    let batch = acquire_all(T0, &mut stored, &[leasing(q, 1, 6)]);
    assert_eq!(batch.buckets[0].granted, 4);
    assert_eq!(
        stored[0],
        Stored::Plain {
            tat_us: T0 + 10 * MS
        }
    );
    // Empty: the request is denied and nothing is granted or written.
    let batch = acquire_all(T0, &mut stored, &[leasing(q, 1, 6)]);
    assert!(!batch.allowed);
    assert_eq!(batch.buckets[0].granted, 0);
    assert_eq!(
        stored[0],
        Stored::Plain {
            tat_us: T0 + 10 * MS
        }
    );
    // A pure top-up (cost 0) after 2.5 ms: 2 whole tokens.
    let batch = acquire_all(T0 + 2_500, &mut stored, &[leasing(q, 0, 6)]);
    assert!(batch.allowed);
    assert_eq!(batch.buckets[0].granted, 2);
    assert_eq!(batch.buckets[0].backlog_after_us(), 7_500 + 2 * MS);
    assert_eq!(
        batch.buckets[0].queued_us(),
        7_500,
        "the debt below the grant"
    );
}

#[test]
fn a_request_denied_by_one_limit_is_granted_nothing_on_the_others() {
    let per_client = quota(1, 1.0);
    let global = quota(100, 1000.0);
    let limits = [leasing(per_client, 1, 0), leasing(global, 1, 20)];
    let mut stored = [Stored::default(), Stored::default()];
    let first = acquire_all(T0, &mut stored, &limits);
    assert!(first.allowed);
    assert_eq!(first.buckets[1].granted, 20);
    let before = stored.clone();
    let second = acquire_all(T0, &mut stored, &limits);
    assert!(!second.allowed);
    assert_eq!(second.buckets[1].granted, 0);
    assert!(!second.buckets[1].spent);
    assert_eq!(stored, before, "a denial writes nothing");
    let d = second.request();
    assert_eq!(d.reported().map(|(i, _)| i), Some(0));
}

#[test]
fn credit_lasts_until_its_slice_of_the_debt_can_have_drained() {
    let q = quota(100, 1000.0); // T = 1 ms
    let mut lease = Lease::default();
    // Sent at T0 onto an empty debt, granted 10 tokens, reply after 2.5 ms:
    // the slice may have drained 2.5 ms already.
    lease.add_grant(T0, T0 + 2_500, &q, 10, 0);
    assert_eq!(lease.credit_us(T0 + 2_500), 7_500);
    assert_eq!(lease.tokens(T0 + 2_500, &q), 7);
    let r = lease.try_spend(T0 + 2_500, &q, 3).expect("3 tokens fit");
    assert_eq!(lease.credit_us(T0 + 2_500), 4_500);
    lease.refund(r);
    assert_eq!(lease.credit_us(T0 + 2_500), 7_500, "a refund is exact");
    // Spending does not speed up the end: 4 spent, 4 ms later 3.5 left.
    let _spent = lease.try_spend(T0 + 2_500, &q, 4).unwrap();
    assert_eq!(lease.credit_us(T0 + 6_500), 3_500);
    assert_eq!(lease.credit_us(T0 + 9_500), 500);
    assert!(lease.try_spend(T0 + 9_500, &q, 1).is_none());
    // Onto 20 ms of queued debt, a grant keeps its full credit until that
    // has drained, then shrinks with its slice.
    let mut queued = Lease::default();
    queued.add_grant(T0, T0 + 2_500, &q, 10, 20 * MS);
    assert_eq!(queued.credit_us(T0 + 2_500), 10 * MS);
    assert_eq!(queued.credit_us(T0 + 25 * MS), 5 * MS);
    // Spent from the grant that ends first.
    queued.add_grant(T0, T0 + 2_500, &q, 10, 0);
    let _r = queued.try_spend(T0 + 2_500, &q, 7).unwrap();
    assert_eq!(queued.credit_us(T0 + 2_500), 500 + 10 * MS);
    // A grant whose slice may be gone by the time the reply arrives adds nothing.
    let mut late = Lease::default();
    late.add_grant(T0, T0 + 20 * MS, &q, 5, 0);
    assert_eq!(late.credit_us(T0 + 20 * MS), 0);
}

#[test]
fn a_refund_to_a_grant_that_is_gone_is_dropped() {
    let q = quota(100, 1000.0);
    let mut lease = Lease::default();
    lease.add_grant(T0, T0, &q, 2, 0);
    let r = lease.try_spend(T0, &q, 2).unwrap();
    // The spent grant is dropped when the next one arrives.
    lease.add_grant(T0 + 5 * MS, T0 + 5 * MS, &q, 1, 0);
    lease.refund(r);
    assert_eq!(lease.credit_us(T0 + 5 * MS), MS, "the refund added nothing");
}

#[test]
fn a_short_grant_holds_calls_off_until_a_full_lease_fits() {
    let q = quota(10, 1000.0); // C·T = 10 ms
    let mut stored = [Stored::Plain {
        tat_us: T0 + 8 * MS,
    }];
    let want = 5;
    let batch = acquire_all(T0, &mut stored, &[leasing(q, 1, want)]);
    assert_eq!(batch.buckets[0].granted, 1);
    let mut lease = Lease::default();
    let sent = T0 - 300;
    lease.apply(sent, T0 + 200, &batch.buckets[0], want);
    // Debt after: 10 ms; 5 more tokens fit 5 ms after the store decided,
    // so at the latest 5 ms after the call was sent.
    assert_eq!(lease.short_until_us(), sent + 5 * MS);
    assert!(lease.is_short(sent + 5 * MS - 1));
    assert!(!lease.is_short(sent + 5 * MS));
}

#[test]
fn want_for_is_the_refill_of_one_period_within_the_capacity() {
    assert_eq!(want_for(50 * MS, &quota(1000, 1000.0)), 50);
    assert_eq!(want_for(50 * MS, &quota(20, 1000.0)), 20);
    assert_eq!(want_for(50 * MS, &quota(20, 1.0)), 1);
}

fn arb_limit() -> impl Strategy<Value = LeaseLimit> {
    (
        1u64..20,
        prop::sample::select(vec![1.0, 7.0, 100.0, 1000.0]),
        0u32..4,
        any::<bool>(),
        0u32..25,
    )
        .prop_map(|(c, r, cost, enforced, want)| LeaseLimit {
            limit: Limit {
                quota: quota(c, r),
                cost,
                enforced,
            },
            want,
        })
}

proptest! {
    /// With nothing wanted, a lease call is exactly an ordinary decision:
    /// same verdict, same decisions, same stored `tat`s as
    /// `multi::acquire_all` (what `token_bucket.lua` does).
    #[test]
    fn without_wants_it_decides_like_multi_acquire_all(
        limits in prop::collection::vec(arb_limit(), 1..4),
        tats in prop::collection::vec(prop::option::of(0u64..30_000_000), 4),
        dt in 0u64..5_000_000,
    ) {
        let now = T0 + dt;
        let ordinary: Vec<LeaseLimit> =
            limits.iter().map(|l| LeaseLimit::ordinary(l.limit)).collect();
        let tats: Vec<u64> = tats.iter().take(limits.len()).map(|t| t.map_or(0, |t| T0 + t)).collect();
        let mut stored: Vec<Stored> = tats.iter().map(|&t| Stored::Plain { tat_us: t }).collect();
        let lease = acquire_all(now, &mut stored, &ordinary);
        let buckets: Vec<(u64, Limit)> = tats.iter().copied().zip(limits.iter().map(|l| l.limit)).collect();
        let multi = multi::acquire_all(now, &buckets, 1);
        prop_assert_eq!(lease.allowed, multi.allowed == 1);
        prop_assert_eq!(lease.request(), multi.decision(0));
        for (i, (s, b)) in stored.iter().zip(&multi.buckets).enumerate() {
            let Stored::Plain { tat_us } = s else { unreachable!() };
            if b.allowed > 0 && limits[i].limit.cost > 0 {
                prop_assert_eq!(*tat_us, b.tat, "limit {}", i);
            } else {
                prop_assert_eq!(*tat_us, tats[i], "limit {} unchanged", i);
            }
        }
    }

    /// A top-up never overfills a bucket and never changes the verdict.
    #[test]
    fn grants_fit_in_the_bucket_and_leave_the_verdict_alone(
        limits in prop::collection::vec(arb_limit(), 1..4),
        backlogs in prop::collection::vec(0u64..30_000_000, 4),
    ) {
        let buckets: Vec<(Debt, LeaseLimit)> = backlogs
            .iter()
            .zip(&limits)
            .map(|(&b, l)| {
                let b = b.min(l.limit.quota.fill_time_us());
                (Debt { backlog_us: b, queued_us: b }, *l)
            })
            .collect();
        let leased = decide(&buckets);
        let plain: Vec<(Debt, LeaseLimit)> =
            buckets.iter().map(|&(b, l)| (b, LeaseLimit::ordinary(l.limit))).collect();
        prop_assert_eq!(leased.allowed, decide(&plain).allowed);
        for (b, (_, l)) in leased.buckets.iter().zip(&buckets) {
            prop_assert!(b.backlog_after_us() <= l.limit.quota.fill_time_us());
            prop_assert!(b.granted <= l.want);
            if !leased.allowed {
                prop_assert_eq!(b.taken(), 0);
            }
        }
    }
}

#[test]
fn a_refund_gives_back_no_more_than_the_slice_allows() {
    // 10 tokens whose slice ends at T0 + 10 ms. A reservation of 1 at T0,
    // then at T0 + 7 ms the slice caps the credit at 3 and 1 is spent: 2
    // left with or without the reservation, so its refund adds nothing.
    let q = quota(100, 1000.0);
    let mut lease = Lease::default();
    lease.add_grant(T0, T0, &q, 10, 0);
    let held = lease.try_spend(T0, &q, 1).unwrap();
    let spent = lease.try_spend(T0 + 7 * MS, &q, 1).unwrap();
    lease.confirm(spent);
    lease.refund(held);
    assert_eq!(lease.credit_us(T0 + 7 * MS), 2 * MS);
}
