//! The accuracy scenarios' figures: allowed against the ideal bucket
//! (burst, sustained) and over- and under-admission (sustained).

use rateguard_loadtests::analysis::{self, BucketShape};
use rateguard_loadtests::Sample;
use rateguard_report::{accuracy_error_pct, Admission, AdmissionRep, Record, SeriesPoint, Spread};

use super::SLOT_MS;
use crate::runner::RepResult;

/// `samples` with times counted from the first request's, so a series
/// starts where the load does (not at the recorder's start, before goose
/// has released its users).
fn from_first_request(samples: &[Sample]) -> Vec<Sample> {
    let first = samples.iter().map(|s| s.at_us).min().unwrap_or(0);
    samples
        .iter()
        .map(|s| Sample {
            at_us: s.at_us - first,
            sent_us: s.sent_us.saturating_sub(first),
            ..*s
        })
        .collect()
}

pub(super) fn accuracy(r: &mut Record, shape: BucketShape, reps: &[RepResult]) {
    let mut expected = 0;
    for (i, rep) in reps.iter().enumerate() {
        let samples = from_first_request(&rep.recording.samples);
        let acc = analysis::accuracy(&samples, shape, series_slot_ms(&samples));
        expected += acc.expected_allowed;
        if i == 0 {
            r.allowed_series = acc
                .series
                .iter()
                .map(|p| SeriesPoint {
                    t_ms: p.t_ms,
                    allowed: p.allowed,
                    ideal: p.ideal,
                })
                .collect();
        }
    }
    r.expected_allowed = Some(expected);
    r.accuracy_error_pct = accuracy_error_pct(r.allowed, expected);
}

/// Over- and under-admission of every repetition against `shape`: the
/// worst excess over all of them, the under-admission over their sum.
pub(super) fn admission(r: &mut Record, shape: BucketShape, reps: &[RepResult]) {
    let mut total = Admission {
        capacity: shape.capacity,
        refill_per_sec: shape.refill_per_sec,
        over_admission_100ms: f64::NEG_INFINITY,
        over_admission_1s: f64::NEG_INFINITY,
        ..Admission::default()
    };
    let mut unders = Vec::new();
    for (rep, stats) in reps.iter().zip(r.repetitions.iter_mut()) {
        let a = analysis::admission(&rep.recording.samples, shape);
        let over = |ms| a.over_ms(ms).unwrap_or(f64::NEG_INFINITY);
        let this = AdmissionRep {
            over_admission_100ms: over(100),
            over_admission_1s: over(1000),
            under_admission: a.under(),
        };
        if this.over_admission_100ms > total.over_admission_100ms {
            total.over_admission_100ms = this.over_admission_100ms;
            total.worst_window_by_replica = a
                .over
                .first()
                .map(|worst| {
                    worst
                        .by_replica
                        .iter()
                        .map(|(i, n)| {
                            let name = i
                                .and_then(|i| rep.recording.replicas.get(usize::from(i)))
                                .map_or("unnamed", String::as_str);
                            (name.to_owned(), *n)
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        total.over_admission_1s = total.over_admission_1s.max(this.over_admission_1s);
        total.offered += a.offered;
        total.admitted += a.admitted;
        total.ideal += a.ideal;
        unders.push(this.under_admission);
        stats.admission = Some(this);
    }
    if reps.is_empty() {
        return;
    }
    total.under_admission = if total.ideal > 0.0 {
        (1.0 - total.admitted as f64 / total.ideal).max(0.0)
    } else {
        0.0
    };
    total.under_admission_spread = Spread::of(&unders);
    r.admission = Some(total);
}

/// About 200 points per allowed-over-time series: a burst lasts ~100 ms and
/// would be two points at the timeline's 100 ms slots; a sustained run is
/// seconds long.
fn series_slot_ms(samples: &[Sample]) -> u64 {
    let span_ms = samples.iter().map(|s| s.at_us).max().unwrap_or(0) / 1000;
    (span_ms / 200).clamp(1, SLOT_MS)
}
