use super::*;
use proptest::prelude::*;

const SEC: u64 = 1_000_000;
const T0: u64 = 1_000 * SEC;

/// One step of a table: at `at_us` after T0, spend `cost`; expect the rest.
struct Case {
    at_us: u64,
    cost: u32,
    allowed: bool,
    remaining: u32,
    retry_after_us: u64,
    reset_after_us: u64,
}

const fn case(
    at_us: u64,
    cost: u32,
    allowed: bool,
    remaining: u32,
    retry: u64,
    reset: u64,
) -> Case {
    Case {
        at_us,
        cost,
        allowed,
        remaining,
        retry_after_us: retry,
        reset_after_us: reset,
    }
}

/// Capacity 5, one token per second (T = 1 s). Cases run in order against
/// one bucket, like redis-cell's `it_rate_limits` table.
#[test]
fn table_capacity_5_one_per_second() {
    let quota = Quota::new(5, 1.0).unwrap();
    let cases = [
        case(0, 1, true, 4, 0, SEC),                          // 0: fresh bucket
        case(0, 1, true, 3, 0, 2 * SEC),                      // 1
        case(0, 3, true, 0, 0, 5 * SEC),                      // 2: empties it
        case(0, 1, false, 0, SEC, 5 * SEC),                   // 3: denied, wait 1 s
        case(SEC / 2, 1, false, 0, SEC / 2, 9 * SEC / 2),     // 4: half a token back
        case(SEC, 1, true, 0, 0, 5 * SEC),                    // 5: exactly one token back
        case(SEC + 1, 2, false, 0, 2 * SEC - 1, 5 * SEC - 1), // 6: cost 2 needs 2 s
        case(4 * SEC, 2, true, 1, 0, 4 * SEC),                // 7: 3 tokens back, spend 2
        case(100 * SEC, 1, true, 4, 0, SEC),                  // 8: long idle: full again
        case(100 * SEC, 6, false, 4, u64::MAX, SEC),          // 9: cost > capacity: never
        case(100 * SEC, 0, true, 4, 0, SEC),                  // 10: cost 0 peeks
    ];
    let mut tat = 0;
    for (i, c) in cases.iter().enumerate() {
        let out = acquire(tat, T0 + c.at_us, &quota, c.cost);
        let d = out.decision;
        assert_eq!(d.allowed, c.allowed, "case {i}: allowed");
        assert_eq!(d.limit, 5, "case {i}: limit");
        assert_eq!(d.remaining, c.remaining, "case {i}: remaining");
        assert_eq!(
            d.retry_after.as_micros() as u64,
            c.retry_after_us,
            "case {i}: retry_after"
        );
        assert_eq!(
            d.reset_after.as_micros() as u64,
            c.reset_after_us,
            "case {i}: reset_after"
        );
        if !d.allowed {
            assert_eq!(out.tat, tat, "case {i}: a denial must not change the state");
        }
        tat = out.tat;
    }
}

#[test]
fn batch_equals_repeated_single_acquires() {
    let quota = Quota::new(7, 2.5).unwrap();
    let now = T0;
    let batch = acquire_batch(0, now, &quota, 2, 5);
    assert_eq!(batch.allowed, 3);
    let mut tat = 0;
    for (i, from_batch) in batch.decisions().enumerate() {
        let single = acquire(tat, now, &quota, 2);
        assert_eq!(from_batch, single.decision, "request {i}");
        tat = single.tat;
    }
    assert_eq!(batch.tat, tat);
}

#[test]
fn after_a_batch_says_whether_one_more_would_fit_without_spending() {
    let quota = Quota::new(3, 1.0).unwrap();
    let batch = acquire_batch(0, T0, &quota, 1, 2);
    let next = batch.after();
    // Exactly one token left: it fits, and nothing was spent for it.
    assert!(next.allowed);
    assert_eq!((next.remaining, next.retry_after), (1, Duration::ZERO));
    assert_eq!(next.reset_after, Duration::from_secs(2));
    let full = acquire_batch(0, T0, &quota, 1, 3).after();
    assert!(!full.allowed);
    assert_eq!(full.retry_after, Duration::from_secs(1));
    assert_eq!(
        acquire_batch(0, T0, &quota, 0, 3).after(),
        acquire(0, T0, &quota, 0).decision
    );
    assert_eq!(
        acquire_batch(0, T0, &quota, 4, 1).after().retry_after,
        Decision::NEVER
    );
    // A cost equal to the capacity is not "never": it waits for a full bucket.
    let whole = acquire_batch(batch.tat, T0, &quota, 3, 1).decision(0);
    assert_eq!(whole.retry_after, Duration::from_secs(2));
}

#[test]
#[should_panic(expected = "request 3 of a batch of 3")]
fn decision_index_past_the_batch_panics() {
    acquire_batch(0, T0, &Quota::new(3, 1.0).unwrap(), 1, 3).decision(3);
}

#[test]
fn a_stale_tat_is_a_full_bucket() {
    let quota = Quota::new(3, 1.0).unwrap();
    let fresh = acquire(0, T0, &quota, 1);
    let stale = acquire(T0 - 5 * SEC, T0, &quota, 1);
    assert_eq!(fresh, stale);
}

/// A straightforward floating-point token bucket, refilled continuously,
/// used as the reference model. Tokens are counted in units of 1/T so the
/// model is exact for the integer interval the quota uses.
struct Reference {
    capacity: u64,
    interval: u64,
    /// tokens × interval (exact integer "token-microseconds")
    level: u64,
    last: u64,
}

impl Reference {
    fn new(quota: &Quota, now: u64) -> Self {
        Self {
            capacity: quota.capacity().into(),
            interval: quota.interval_us(),
            level: quota.fill_time_us(),
            last: now,
        }
    }

    fn acquire(&mut self, now: u64, cost: u32) -> bool {
        let full = self.capacity * self.interval;
        self.level = (self.level + (now - self.last)).min(full);
        self.last = now;
        let need = u64::from(cost) * self.interval;
        if self.level >= need {
            self.level -= need;
            true
        } else {
            false
        }
    }
}

fn arrivals() -> impl Strategy<Value = (u32, f64, Vec<(u64, u32)>)> {
    (
        1u32..50,
        prop::sample::select(vec![0.01, 0.5, 1.0, 3.0, 10.0, 250.0, 100_000.0]),
        prop::collection::vec((0u64..3 * SEC, 1u32..4), 1..200),
    )
}

proptest! {
    /// Over any arrival sequence GCRA decides exactly like the reference
    /// bucket: never denies when the model has the tokens, never allows when
    /// it has not.
    #[test]
    fn agrees_with_reference_token_bucket((capacity, rate, gaps) in arrivals()) {
        let quota = Quota::new(capacity.into(), rate).unwrap();
        let mut model = Reference::new(&quota, T0);
        let (mut tat, mut now) = (0, T0);
        for (gap, cost) in gaps {
            now += gap;
            let out = acquire(tat, now, &quota, cost);
            prop_assert_eq!(out.decision.allowed, model.acquire(now, cost));
            tat = out.tat;
        }
    }

    /// In every window [a, b] of a run, the tokens allowed never exceed
    /// `capacity + refill × (b − a)`.
    #[test]
    fn allowed_in_any_window_is_bounded((capacity, rate, gaps) in arrivals()) {
        let quota = Quota::new(capacity.into(), rate).unwrap();
        let (mut tat, mut now) = (0, T0);
        let mut granted: Vec<(u64, u64)> = Vec::new();
        for (gap, cost) in gaps {
            now += gap;
            let out = acquire(tat, now, &quota, cost);
            if out.decision.allowed {
                granted.push((now, cost.into()));
            }
            tat = out.tat;
        }
        for (i, &(start, _)) in granted.iter().enumerate() {
            let mut tokens = 0u64;
            for &(at, cost) in &granted[i..] {
                tokens += cost;
                let bound = u64::from(capacity) + (at - start) / quota.interval_us();
                prop_assert!(tokens <= bound, "{} tokens in {} us > {}", tokens, at - start, bound);
            }
        }
    }

    /// After a denial, nothing is allowed before `retry_after`, and the same
    /// request is allowed exactly at `retry_after`.
    #[test]
    fn retry_after_is_exact((capacity, rate, gaps) in arrivals()) {
        let quota = Quota::new(capacity.into(), rate).unwrap();
        let (mut tat, mut now) = (0, T0);
        for (gap, cost) in gaps {
            now += gap;
            let out = acquire(tat, now, &quota, cost);
            if !out.decision.allowed && cost <= capacity {
                let wait = out.decision.retry_after.as_micros() as u64;
                prop_assert!(wait > 0);
                prop_assert!(!acquire(tat, now + wait - 1, &quota, cost).decision.allowed);
                prop_assert!(acquire(tat, now + wait, &quota, cost).decision.allowed);
            }
            tat = out.tat;
        }
    }
}
