use super::*;

fn sample(at_ms: u64, outcome: Outcome, client: u32) -> Sample {
    Sample {
        at_us: at_ms * 1000,
        latency_us: 100 + at_ms,
        outcome,
        client,
        sent_us: at_ms * 1000,
        replica: None,
    }
}

#[test]
fn counts_by_outcome() {
    let s = [
        sample(0, Outcome::Allowed, 0),
        sample(1, Outcome::Denied, 0),
        sample(2, Outcome::Denied, 0),
        sample(3, Outcome::Error, 0),
    ];
    let c = Counts::of(&s);
    assert_eq!((c.requests, c.allowed, c.denied, c.errors), (4, 1, 2, 1));
}

#[test]
fn ideal_bucket_allows_capacity_then_refill_rate() {
    // One client sending every 10 ms (0 … 990 ms) at a bucket of 5 tokens,
    // 10/s: the ideal allows 5 at once, then one per 100 ms, at 100 … 900 ms:
    // exactly 5 + 9 (the yardstick of every accuracy figure is exact).
    let shape = BucketShape {
        capacity: 5,
        refill_per_sec: 10.0,
    };
    let samples: Vec<Sample> = (0..100)
        .map(|i| sample(i * 10, Outcome::Allowed, 0))
        .collect();
    let acc = accuracy(&samples, shape, 100);
    assert_eq!(acc.expected_allowed, 14, "{acc:?}");
    let last = acc.series.last().unwrap();
    assert_eq!(last.allowed, 100);
    assert_eq!(last.ideal, acc.expected_allowed);
    // The series is cumulative and starts with the burst.
    assert_eq!(acc.series[0].ideal, 5);
    assert!(acc.series.windows(2).all(|w| w[0].ideal <= w[1].ideal));
}

#[test]
fn ideal_is_per_client() {
    let shape = BucketShape {
        capacity: 3,
        refill_per_sec: 0.001,
    };
    let samples: Vec<Sample> = (0..20)
        .map(|i| sample(i, Outcome::Denied, (i % 2) as u32))
        .collect();
    assert_eq!(accuracy(&samples, shape, 100).expected_allowed, 6);
}

#[test]
fn ideal_never_exceeds_demand() {
    let shape = BucketShape {
        capacity: 100,
        refill_per_sec: 1.0,
    };
    let samples = [
        sample(0, Outcome::Allowed, 0),
        sample(5, Outcome::Allowed, 0),
    ];
    assert_eq!(accuracy(&samples, shape, 100).expected_allowed, 2);
}

#[test]
fn timeline_has_empty_slots_and_p99() {
    let s = [
        sample(10, Outcome::Allowed, 0),
        sample(20, Outcome::Denied, 0),
        sample(350, Outcome::Error, 0),
    ];
    let t = timeline(&s, 100);
    assert_eq!(t.len(), 4);
    assert_eq!((t[0].ok, t[0].denied, t[0].errors), (1, 1, 0));
    assert_eq!((t[1].ok, t[2].ok, t[1].p99_us), (0, 0, 0));
    assert_eq!((t[3].t_ms, t[3].errors), (300, 1));
    assert!(t[0].p99_us >= 110);
}

#[test]
fn first_denied_after_a_time() {
    let s = [
        sample(10, Outcome::Denied, 0),
        sample(500, Outcome::Allowed, 0),
        sample(700, Outcome::Denied, 0),
        sample(600, Outcome::Denied, 0),
    ];
    assert_eq!(first_denied_after(&s, 400_000), Some(600_000));
    assert_eq!(first_denied_after(&s, 800_000), None);
}

#[test]
fn histogram_in_microseconds() {
    let s = [
        sample(0, Outcome::Allowed, 0),
        sample(900, Outcome::Allowed, 0),
    ];
    let h = latency_histogram(&s);
    assert_eq!(h.len(), 2);
    assert_eq!(h.min(), 100);
    assert!(h.max() >= 999 && h.max() <= 1001);
}

#[test]
fn window_counts_outcomes_and_the_ideal_inside_it() {
    // As above (5 tokens, 10/s, one request per 10 ms): the ideal admits
    // at 0…40 ms, then at 100, 200, ... ms; the window [250, 650) holds
    // 40 requests, of which the ideal admits 300, 400, 500, 600.
    let shape = BucketShape {
        capacity: 5,
        refill_per_sec: 10.0,
    };
    let samples: Vec<Sample> = (0..100)
        .map(|i| {
            let outcome = if (25..45).contains(&i) {
                Outcome::Error
            } else {
                Outcome::Allowed
            };
            sample(i * 10, outcome, 0)
        })
        .collect();
    let (counts, ideal) = window(&samples, shape, 250_000, 650_000);
    assert_eq!(
        (counts.requests, counts.allowed, counts.errors),
        (40, 20, 20)
    );
    assert_eq!(ideal, 4);
}
