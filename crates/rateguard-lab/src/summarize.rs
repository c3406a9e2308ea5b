//! From repetitions of one (store, scenario) to one report [`Record`].
//!
//! Counts are summed over repetitions; rates and percentiles are the
//! median over repetitions, with min / median / max in the spread; curves,
//! series and timelines come from the first repetition (or, for latency
//! curves, from all repetitions' samples merged).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rateguard_contract::StoreKind;
use rateguard_loadtests::analysis::{self, latency_histogram, new_histogram, BucketShape};
use rateguard_loadtests::{Counts, Params, ScenarioId};
use rateguard_report::{
    accuracy_error_pct, median, LatencyUs, Outage, RateLevel, Record, RepetitionStats, SeriesPoint,
    TimelinePoint,
};

use crate::runner::{Level, RepResult};

/// Time slot of the allowed-over-time series and the outage timeline, ms.
pub const SLOT_MS: u64 = 100;
/// A throughput level is sustained when at least this share of the offered
/// rate came back 2xx ...
pub const SUSTAIN_MIN_SHARE: f64 = 0.95;
/// ... and its p99 latency (from the intended start) is at most this, µs.
pub const SUSTAIN_MAX_P99_US: u64 = 100_000;

/// The offered rate whose latency stands for the throughput scenario (the
/// same load for every store): the configured one if it is among the
/// rates, else the middle rate.
pub fn reference_rate(params: &Params) -> u32 {
    let rates = &params.throughput_rates;
    if rates.contains(&params.throughput_reference_rate) {
        params.throughput_reference_rate
    } else {
        rates[rates.len() / 2]
    }
}

/// Builds the record of `scenario` on `store` from its repetitions.
pub fn record(
    store: StoreKind,
    scenario: ScenarioId,
    replicas: u32,
    params: &Params,
    reps: &[RepResult],
) -> Record {
    let mut r = Record {
        replicas,
        ..Record::new(store, scenario)
    };
    let mut merged = new_histogram();
    let mut commands: Option<u64> = None;
    let mut by_name = BTreeMap::new();
    for rep in reps {
        let c = Counts::of(&rep.recording.samples);
        r.requests += c.requests;
        r.allowed += c.allowed;
        r.denied += c.denied;
        r.errors += c.errors;
        *r.failed_open.get_or_insert(0) += rep.failed_open;
        for (k, v) in &rep.recording.per_replica {
            *r.per_replica.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &rep.recording.per_backend {
            *r.per_backend.entry(k.clone()).or_insert(0) += v;
        }
        if let Some(calls) = &rep.store_commands {
            commands = Some(commands.unwrap_or(0) + calls.values().sum::<u64>());
            for (k, v) in calls {
                *by_name.entry(k.clone()).or_insert(0) += v;
            }
        }
        let (stats, hist) = rep_stats(scenario, params, rep);
        add(&mut merged, &hist);
        r.repetitions.push(stats);
    }
    r.store_commands_per_request = commands.map(|n| n as f64 / r.requests.max(1) as f64);
    r.store_command_calls = by_name;
    r.latency_curve = LatencyUs::curve(&merged);
    r.compute_spread();
    if let Some(s) = r.spread {
        r.throughput_rps = s.throughput_rps.median;
    }
    r.latency_us = median_latency(&r.repetitions);

    let shape = match scenario {
        ScenarioId::Burst => Some(params.burst),
        ScenarioId::Sustained => Some(params.sustained),
        _ => None,
    };
    if let Some(shape) = shape {
        accuracy(&mut r, shape, reps);
    }
    if let (ScenarioId::StoreOutage, Some(first)) = (scenario, reps.first()) {
        outage(&mut r, first);
    }
    if let (ScenarioId::Throughput, Some(first)) = (scenario, reps.first()) {
        r.rate_levels = first.levels.iter().map(rate_level).collect();
    }
    r
}

/// One repetition's headline figures and the histogram they came from.
fn rep_stats(
    scenario: ScenarioId,
    params: &Params,
    rep: &RepResult,
) -> (RepetitionStats, Histogram<u64>) {
    let c = Counts::of(&rep.recording.samples);
    if scenario == ScenarioId::Throughput {
        let reference = reference_rate(params);
        let hist = rep
            .levels
            .iter()
            .find(|l| l.rate_per_sec == reference)
            .map(|l| latency_histogram(&l.recording.samples))
            .unwrap_or_else(new_histogram);
        let best = rep
            .levels
            .iter()
            .map(rate_level)
            .filter(|l| l.sustained)
            .map(|l| l.target_rps)
            .fold(0.0, f64::max);
        let stats = RepetitionStats {
            throughput_rps: best,
            latency_us: LatencyUs::from_histogram(&hist),
            requests: c.requests,
            allowed: c.allowed,
        };
        return (stats, hist);
    }
    let hist = latency_histogram(&rep.recording.samples);
    let secs = rep.recording.elapsed.as_secs_f64().max(1e-3);
    let stats = RepetitionStats {
        throughput_rps: c.requests as f64 / secs,
        latency_us: LatencyUs::from_histogram(&hist),
        requests: c.requests,
        allowed: c.allowed,
    };
    (stats, hist)
}

/// A throughput level's figures, and whether it was sustained.
pub fn rate_level(level: &Level) -> RateLevel {
    let c = Counts::of(&level.recording.samples);
    let hist = latency_histogram(&level.recording.samples);
    let latency_us = LatencyUs::from_histogram(&hist);
    // Completions per second over the time they took: a backlog that drains
    // after the offered window does not count as keeping up.
    let last_done_us = level
        .recording
        .samples
        .iter()
        .map(|s| s.at_us + s.latency_us)
        .max()
        .unwrap_or(0);
    let window = level.duration.as_secs_f64().max(last_done_us as f64 / 1e6);
    let achieved_rps = c.allowed as f64 / window.max(1e-3);
    let target_rps = f64::from(level.rate_per_sec);
    RateLevel {
        target_rps,
        achieved_rps,
        errors: c.errors,
        latency_us,
        sustained: achieved_rps >= SUSTAIN_MIN_SHARE * target_rps
            && latency_us.p99 <= SUSTAIN_MAX_P99_US,
    }
}

fn accuracy(r: &mut Record, shape: BucketShape, reps: &[RepResult]) {
    let mut expected = 0;
    for (i, rep) in reps.iter().enumerate() {
        let acc = analysis::accuracy(&rep.recording.samples, shape, series_slot_ms(rep));
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

/// About 200 points per allowed-over-time series: a burst lasts ~100 ms and
/// would be two points at the timeline's 100 ms slots; a sustained run is
/// seconds long.
fn series_slot_ms(rep: &RepResult) -> u64 {
    let span_ms = rep
        .recording
        .samples
        .iter()
        .map(|s| s.at_us)
        .max()
        .unwrap_or(0)
        / 1000;
    (span_ms / 200).clamp(1, SLOT_MS)
}

fn outage(r: &mut Record, rep: &RepResult) {
    let samples = &rep.recording.samples;
    r.timeline = analysis::timeline(samples, SLOT_MS)
        .into_iter()
        .map(|s| TimelinePoint {
            t_ms: s.t_ms,
            ok: s.ok,
            denied: s.denied,
            errors: s.errors,
            p99_us: s.p99_us,
        })
        .collect();
    if let Some(m) = rep.outage {
        r.outage = Some(Outage {
            killed_at_ms: m.killed_us / 1000,
            restarted_at_ms: m.restarted_us / 1000,
            enforcement_resumed_at_ms: analysis::first_denied_after(samples, m.restarted_us)
                .map(|us| us / 1000),
        });
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Both come from `new_histogram`, so the bounds always match.
    let _ = into.add(from);
}

/// Each percentile's median over the repetitions ([`median`]: the mean of
/// the two middle values for an even count, rounded to whole µs), so the
/// headline agrees with the record's spread.
fn median_latency(reps: &[RepetitionStats]) -> LatencyUs {
    let med = |f: fn(&LatencyUs) -> u64| -> u64 {
        let v: Vec<f64> = reps.iter().map(|r| f(&r.latency_us) as f64).collect();
        median(&v).map_or(0, |m| m.round() as u64)
    };
    LatencyUs {
        p50: med(|l| l.p50),
        p90: med(|l| l.p90),
        p99: med(|l| l.p99),
        p999: med(|l| l.p999),
        max: med(|l| l.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(p50: u64, p99: u64) -> RepetitionStats {
        RepetitionStats {
            latency_us: LatencyUs {
                p50,
                p99,
                ..LatencyUs::default()
            },
            ..RepetitionStats::default()
        }
    }

    #[test]
    fn headline_latency_is_the_same_median_as_the_spread() {
        let reps = [
            rep(100, 900),
            rep(300, 1000),
            rep(200, 2000),
            rep(400, 1101),
        ];
        let headline = median_latency(&reps);
        let spread = rateguard_report::RecordSpread::of(&reps).unwrap();
        // Even count: the mean of the two middle values, not the upper one.
        assert_eq!(headline.p50, 250);
        assert_eq!(spread.p50_us.median, 250.0);
        // 1050.5 µs rounds to 1051.
        assert_eq!(headline.p99, 1051);
        assert_eq!(spread.p99_us.median, 1050.5);
        assert_eq!(median_latency(&reps[..3]).p50, 200);
        assert_eq!(median_latency(&[]), LatencyUs::default());
    }
}
