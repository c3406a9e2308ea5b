use super::*;
use proptest::prelude::*;

const SEC: u64 = 1_000_000;
const T0: u64 = 1_000 * SEC;

fn quota(capacity: u64, rate: f64) -> Quota {
    Quota::new(capacity, rate).unwrap()
}

/// Runs one request (count 1) and returns its decision and the new tats.
fn one(now: u64, tats: &[u64], limits: &[Limit]) -> (MultiDecision, Vec<u64>) {
    let buckets: Vec<_> = tats.iter().copied().zip(limits.iter().copied()).collect();
    let batch = acquire_all(now, &buckets, 1);
    let tats = batch.buckets.iter().map(|b| b.tat).collect();
    (batch.decision(0), tats)
}

fn decision(d: &MultiDecision, i: usize) -> Decision {
    d.limits()[i].expect("evaluated")
}

#[test]
fn per_client_denial_spends_nothing_on_the_per_ip_bucket() {
    // Issue 9's case: per-client 5, per-ip 8; A sends 6, then B sends 6.
    let client = Limit::enforced(quota(5, 0.001), 1);
    let ip = Limit::enforced(quota(8, 0.001), 1);
    let (mut a, mut b, mut ip_tat) = (0, 0, 0);
    let mut allowed = [0, 0];
    for (who, client_tat) in [(0, &mut a), (1, &mut b)] {
        for _ in 0..6 {
            let (d, tats) = one(T0, &[*client_tat, ip_tat], &[client, ip]);
            allowed[who] += u32::from(d.allowed());
            (*client_tat, ip_tat) = (tats[0], tats[1]);
        }
    }
    assert_eq!(
        allowed,
        [5, 3],
        "A's 6th denial must not drain the per-ip bucket"
    );
}

#[test]
fn denied_request_reports_the_longest_wait_and_sees_unspent_buckets() {
    // Two enforced limits, both empty after one request; a third, looser one.
    let fast = Limit::enforced(quota(1, 10.0), 1); // back in 100 ms
    let slow = Limit::enforced(quota(1, 1.0), 1); // back in 1 s
    let loose = Limit::enforced(quota(10, 1.0), 1);
    let limits = [fast, slow, loose];
    let (first, tats) = one(T0, &[0, 0, 0], &limits);
    assert!(first.allowed());
    // Allowed: the fewest tokens left is reported (the first of the two zeros).
    assert_eq!(first.reported().map(|(i, _)| i), Some(0));
    assert_eq!(first.retry_after(), Duration::ZERO);

    let (denied, after) = one(T0, &tats, &limits);
    assert!(!denied.allowed());
    assert_eq!(after, tats, "a denial writes nothing");
    let (i, d) = denied.reported().unwrap();
    assert_eq!((i, d.retry_after), (1, Duration::from_secs(1)));
    assert_eq!(denied.retry_after(), Duration::from_secs(1));
    // The loose limit would admit it, and reports its unspent state.
    let loose_view = decision(&denied, 2);
    assert!(loose_view.allowed);
    assert_eq!(loose_view.remaining, 9);
    assert_eq!(loose_view.reset_after, Duration::from_secs(1));
    assert_eq!(loose_view.retry_after, Duration::ZERO);
    assert!(!decision(&denied, 0).allowed);
}

#[test]
fn shadow_limits_spend_when_they_fit_and_never_deny() {
    let enforced = Limit::enforced(quota(4, 0.001), 1);
    let shadow = Limit::shadow(quota(2, 0.001), 1);
    let mut tats = vec![0, 0];
    let mut shadow_views = Vec::new();
    for _ in 0..5 {
        let (d, next) = one(T0, &tats, &[enforced, shadow]);
        shadow_views.push((d.allowed(), decision(&d, 1).allowed));
        if d.allowed() && !decision(&d, 1).allowed {
            assert_eq!(
                next[1], tats[1],
                "a shadow limit that does not fit spends nothing"
            );
            // Allowed: the headers show a limit with 0 left (the shadow
            // one while the enforced one still has tokens).
            let (i, reported) = d.reported().unwrap();
            assert_eq!(reported.remaining, 0);
            assert!(i == 1 || decision(&d, 0).remaining == 0);
        }
        tats = next;
    }
    assert_eq!(
        shadow_views,
        [
            (true, true),
            (true, true),
            (true, false),
            (true, false),
            (false, false)
        ]
    );
}

#[test]
fn a_batch_allows_the_first_min_fit_requests() {
    let a = Limit::enforced(quota(5, 0.001), 1);
    let b = Limit::enforced(quota(9, 0.001), 2); // 4 requests of cost 2
    let s = Limit::shadow(quota(2, 0.001), 1);
    let batch = acquire_all(T0, &[(0, a), (0, b), (0, s)], 7);
    assert_eq!(batch.allowed, 4);
    let spent: Vec<u32> = batch.buckets.iter().map(|b| b.allowed).collect();
    assert_eq!(spent, [4, 4, 2]);
    let verdicts: Vec<bool> = batch.decisions().map(|d| d.allowed()).collect();
    assert_eq!(verdicts, [true, true, true, true, false, false, false]);
    // The fifth request is denied by `b` (1 token left, cost 2).
    assert_eq!(batch.decision(4).reported().map(|(i, _)| i), Some(1));
}

#[test]
fn no_limits_and_no_enforced_limits_always_allow() {
    let empty = acquire_all(T0, &[], 3);
    assert_eq!(empty.allowed, 3);
    assert!(empty.decision(0).allowed());
    assert_eq!(empty.decision(0).reported(), None);
    let shadow = Limit::shadow(quota(1, 0.001), 1);
    let batch = acquire_all(T0, &[(0, shadow)], 3);
    assert_eq!((batch.allowed, batch.buckets[0].allowed), (3, 1));
}

#[test]
fn cost_above_capacity_never_succeeds_and_reports_never() {
    let small = Limit::enforced(quota(2, 1.0), 3);
    let other = Limit::enforced(quota(10, 1.0), 3);
    let (d, tats) = one(T0, &[0, 0], &[small, other]);
    assert!(!d.allowed());
    assert_eq!(tats, [0, 0]);
    assert_eq!(d.retry_after(), Decision::NEVER);
    // A huge cost on the longest interval must not overflow.
    let longest = Quota::new(1, 1.0 / (366.0 * 24.0 * 3600.0)).unwrap();
    let (d, _) = one(T0, &[0], &[Limit::enforced(longest, u32::MAX)]);
    assert_eq!(d.retry_after(), Decision::NEVER);
}

#[test]
fn single_and_cache_marks() {
    let d = bucket::acquire(0, T0, &quota(3, 1.0), 1).decision;
    let m = MultiDecision::single(d);
    assert!(m.allowed() && !m.from_cache());
    assert_eq!(m.reported(), Some((0, &d)));
    assert!(m.with_from_cache().from_cache());
}

#[test]
fn unevaluated_limits_neither_deny_nor_report() {
    let denial = bucket::acquire_batch(0, T0, &quota(1, 1.0), 1, 2).decision(1);
    let m = MultiDecision::new(vec![None, Some(denial), None], &[true, true, true]);
    assert!(!m.allowed());
    assert_eq!(m.reported(), Some((1, &denial)));
    let m = MultiDecision::new(vec![None, Some(denial)], &[true, false]);
    assert!(m.allowed(), "a shadow denial never denies");
    assert_eq!(m.retry_after(), Duration::ZERO);
}

#[test]
#[should_panic(expected = "one enforced flag per limit")]
fn mismatched_flags_panic() {
    MultiDecision::new(vec![None], &[]);
}

#[test]
#[should_panic(expected = "request 2 of a batch of 2")]
fn decision_index_past_the_batch_panics() {
    acquire_all(T0, &[], 2).decision(2);
}

/// N naive token buckets (the reference model of `bucket/tests.rs`, one per
/// limit), combined the obvious way: check every enforced one, then spend
/// on every one that has the tokens, or on none.
struct Reference {
    buckets: Vec<(u64, u64, u64)>, // (full level, interval, level) in token-µs
    limits: Vec<Limit>,
    last: u64,
}

impl Reference {
    fn new(limits: &[Limit], now: u64) -> Self {
        let buckets = limits
            .iter()
            .map(|l| {
                (
                    l.quota.fill_time_us(),
                    l.quota.interval_us(),
                    l.quota.fill_time_us(),
                )
            })
            .collect();
        Self {
            buckets,
            limits: limits.to_vec(),
            last: now,
        }
    }

    /// Returns (allowed, tokens left per bucket).
    fn acquire(&mut self, now: u64) -> (bool, Vec<u32>) {
        for (full, _, level) in &mut self.buckets {
            *level = (*level + (now - self.last)).min(*full);
        }
        self.last = now;
        let fits: Vec<bool> = self
            .buckets
            .iter()
            .zip(&self.limits)
            .map(|((_, t, level), l)| *level >= u64::from(l.cost) * t)
            .collect();
        let allowed = fits
            .iter()
            .zip(&self.limits)
            .all(|(f, l)| *f || !l.enforced);
        if allowed {
            for ((b, l), fit) in self.buckets.iter_mut().zip(&self.limits).zip(&fits) {
                if *fit {
                    b.2 -= u64::from(l.cost) * b.1;
                }
            }
        }
        let left = self
            .buckets
            .iter()
            .map(|(_, t, level)| (level / t) as u32)
            .collect();
        (allowed, left)
    }
}

fn limits() -> impl Strategy<Value = Vec<Limit>> {
    let limit = (
        1u64..20,
        prop::sample::select(vec![0.01, 0.5, 1.0, 3.0, 10.0, 250.0]),
        0u32..4,
        prop::bool::weighted(0.75),
    )
        .prop_map(|(capacity, rate, cost, enforced)| Limit {
            quota: quota(capacity, rate),
            cost,
            enforced,
        });
    prop::collection::vec(limit, 1..4)
}

fn gaps() -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec((0u64..2 * SEC, 1u32..5), 1..80)
}

proptest! {
    /// Request by request, the verdict and every bucket's tokens left equal
    /// the reference model's; a denial changes no stored state.
    #[test]
    fn agrees_with_n_reference_buckets(limits in limits(), gaps in gaps()) {
        let mut model = Reference::new(&limits, T0);
        let (mut tats, mut now) = (vec![0; limits.len()], T0);
        for (gap, _) in gaps {
            now += gap;
            let (d, next) = one(now, &tats, &limits);
            let (allowed, left) = model.acquire(now);
            prop_assert_eq!(d.allowed(), allowed);
            let remaining: Vec<u32> = (0..limits.len()).map(|i| decision(&d, i).remaining).collect();
            prop_assert_eq!(remaining, left);
            if !allowed {
                prop_assert_eq!(&next, &tats);
            }
            tats = next;
        }
    }

    /// A batch of `count` identical requests equals `count` requests in a
    /// row: same decisions, same stored state.
    #[test]
    fn batch_equals_sequential_requests(limits in limits(), gaps in gaps()) {
        let (mut batch_tats, mut seq_tats, mut now) =
            (vec![0; limits.len()], vec![0; limits.len()], T0);
        for (gap, count) in gaps {
            now += gap;
            let buckets: Vec<_> = batch_tats.iter().copied().zip(limits.iter().copied()).collect();
            let batch = acquire_all(now, &buckets, count);
            for (j, from_batch) in batch.decisions().enumerate() {
                let (single, next) = one(now, &seq_tats, &limits);
                prop_assert_eq!(&from_batch, &single, "request {} of {}", j, count);
                seq_tats = next;
            }
            batch_tats = batch.buckets.iter().map(|b| b.tat).collect();
            prop_assert_eq!(&batch_tats, &seq_tats);
        }
    }

    /// The reported limit is the one the headers need: fewest tokens left
    /// when allowed; on a denial an enforced, denying limit whose wait is
    /// the longest of the denying ones.
    #[test]
    fn reports_the_tightest_or_the_longest_denial(limits in limits(), gaps in gaps()) {
        let (mut tats, mut now) = (vec![0; limits.len()], T0);
        for (gap, _) in gaps {
            now += gap;
            let (d, next) = one(now, &tats, &limits);
            let (i, reported) = d.reported().unwrap();
            let all: Vec<Decision> = (0..limits.len()).map(|k| decision(&d, k)).collect();
            if d.allowed() {
                prop_assert_eq!(reported.remaining, all.iter().map(|x| x.remaining).min().unwrap());
                prop_assert!(all[..i].iter().all(|x| x.remaining > reported.remaining));
            } else {
                prop_assert!(limits[i].enforced && !reported.allowed);
                let denying = (0..limits.len()).filter(|&k| limits[k].enforced && !all[k].allowed);
                let longest = denying.map(|k| all[k].retry_after).max().unwrap();
                prop_assert_eq!(d.retry_after(), longest);
            }
            tats = next;
        }
    }

    /// With one enforced limit, the multi-limit decision is the plain one.
    #[test]
    fn one_limit_equals_the_single_bucket(limits in limits(), gaps in gaps()) {
        let limit = Limit { enforced: true, ..limits[0] };
        let (mut tat, mut now) = (0, T0);
        for (gap, count) in gaps {
            now += gap;
            let multi = acquire_all(now, &[(tat, limit)], count);
            let single = bucket::acquire_batch(tat, now, &limit.quota, limit.cost, count);
            prop_assert_eq!(multi.allowed, single.allowed);
            for (m, s) in multi.decisions().zip(single.decisions()) {
                prop_assert_eq!(m, MultiDecision::single(s));
            }
            tat = single.tat;
        }
    }
}
