//! From repetitions of one (store, scenario) to one report [`Record`].
//!
//! Counts are summed over repetitions; rates and percentiles are the
//! median over repetitions, with min / median / max in the spread; curves,
//! series and timelines come from the first repetition (or, for latency
//! curves, from all repetitions' samples merged).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rateguard_contract::OnError;
use rateguard_lab_model::{Frontend, Role};
use rateguard_loadtests::analysis::{self, latency_histogram, new_histogram};
use rateguard_loadtests::{Counts, Params, ScenarioId};
use rateguard_report::{
    median, CpuPerRequest, LatencyUs, Outage, OutageRep, OutageWindow, RateLevel, Record,
    RecordKey, RepetitionStats, TimelinePoint,
};

use crate::runner::{Level, OutageMarks, RepResult};

mod accuracy;

use accuracy::{accuracy, admission};

/// Time slot of the allowed-over-time series and the outage timeline, ms.
pub const SLOT_MS: u64 = 100;
/// A throughput level is sustained when at least this share of the offered
/// rate came back 2xx ...
pub const SUSTAIN_MIN_SHARE: f64 = 0.95;
/// ... and its p99 latency (from the intended start) is at most this, µs.
pub const SUSTAIN_MAX_P99_US: u64 = 100_000;

/// The index of the level whose figures stand for a throughput run: the
/// middle one (50 % of the slowest capacity with the default fractions).
pub fn reference_level(levels: usize) -> usize {
    levels / 2
}

/// Builds the record `key` from its repetitions.
pub fn record(key: RecordKey, replicas: u32, params: &Params, reps: &[RepResult]) -> Record {
    let scenario = key.scenario;
    let mut r = Record {
        replicas,
        store_rtt_ms: key.store_rtt_ms,
        keys: key.keys,
        on_error: key.on_error,
        ..Record::new(key.subject, scenario)
    };
    r.backend = (key.subject.frontend != Frontend::Rls).then(|| scenario.backend());
    let mut merged = new_histogram();
    let mut commands: Option<u64> = None;
    let mut by_name = BTreeMap::new();
    let mut by_node: Vec<u64> = Vec::new();
    for rep in reps {
        let c = Counts::of(&rep.recording.samples);
        r.requests += c.requests;
        r.allowed += c.allowed;
        r.denied += c.denied;
        r.errors += c.errors;
        *r.failed_open.get_or_insert(0) += rep.failed_open;
        *r.local_fallback.get_or_insert(0) += rep.local_fallback;
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
        for (i, n) in rep.script_calls_by_node.iter().enumerate() {
            if by_node.len() <= i {
                by_node.resize(i + 1, 0);
            }
            by_node[i] += n;
        }
        let (mut stats, hist) = rep_stats(scenario, rep);
        stats.outage = rep.outage.map(|m| outage_rep(params, rep, m));
        add(&mut merged, &hist);
        r.repetitions.push(stats);
    }
    r.store_commands_per_request = commands.map(|n| n as f64 / r.requests.max(1) as f64);
    r.store_command_calls = by_name;
    let calls: u64 = by_node.iter().sum();
    if by_node.len() > 1 && calls > 0 {
        r.busiest_node_share = by_node.iter().max().map(|&m| m as f64 / calls as f64);
    }
    r.latency_curve = LatencyUs::curve(&merged);
    r.compute_spread();
    if let Some(s) = r.spread {
        r.throughput_rps = s.throughput_rps.median;
        r.capacity_rps = s.capacity_rps.map(|c| c.median);
    }
    r.latency_us = median_latency(&r.repetitions);
    let cpus: Vec<&CpuPerRequest> = r
        .repetitions
        .iter()
        .filter_map(|s| s.cpu_us_per_request.as_ref())
        .collect();
    r.cpu_us_per_request = CpuPerRequest::median_of(&cpus);
    let cores: Vec<f64> = r
        .repetitions
        .iter()
        .filter_map(|s| s.loadgen_cpu_cores)
        .collect();
    r.loadgen_cpu_cores = median(&cores);
    if scenario == ScenarioId::Capacity {
        r.loadgen_bound = Some(r.repetitions.iter().any(|s| s.loadgen_bound));
    }

    let shape = match scenario {
        ScenarioId::Burst => Some(params.burst),
        ScenarioId::Sustained => Some(params.sustained),
        _ => None,
    };
    if let Some(shape) = shape {
        accuracy(&mut r, shape, reps);
    }
    if scenario == ScenarioId::Sustained {
        admission(&mut r, params.sustained, reps);
    }
    if let (ScenarioId::StoreOutage, Some(first)) = (scenario, reps.first()) {
        outage(&mut r, first);
        let windows: Vec<OutageRep> = r.repetitions.iter().filter_map(|s| s.outage).collect();
        let bound = (key.on_error == Some(OnError::Local)).then(|| {
            let down: Vec<f64> = windows.iter().map(|w| w.down_ms as f64).collect();
            local_bound(params, replicas, median(&down).unwrap_or(0.0) / 1e3)
        });
        r.outage_window = OutageWindow::of(&windows, bound);
    }
    if let Some(first) = reps.first() {
        r.rate_levels = first.levels.iter().map(rate_level).collect();
        r.rate_levels
            .sort_by(|a, b| a.target_rps.total_cmp(&b.target_rps));
    }
    r
}

/// CPU per request of `level` (over its completed requests) and the
/// generator's share of a core.
fn level_cpu(level: &Level) -> (Option<CpuPerRequest>, Option<f64>) {
    let Some(cpu) = &level.cpu else {
        return (None, None);
    };
    let done = level.recording.samples.len() as u64;
    (cpu.per_request(done), Some(cpu.cores(Role::Loadgen)))
}

/// One repetition's headline figures and the histogram they came from:
/// throughput at its reference level, capacity at the capacity rate, the
/// other scenarios over the whole run.
fn rep_stats(scenario: ScenarioId, rep: &RepResult) -> (RepetitionStats, Histogram<u64>) {
    let c = Counts::of(&rep.recording.samples);
    let headline = match scenario {
        ScenarioId::Throughput => rep.levels.get(reference_level(rep.levels.len())),
        ScenarioId::Capacity => rep
            .capacity
            .and_then(|c| c.level)
            .and_then(|i| rep.levels.get(i)),
        _ => None,
    };
    let mut stats = RepetitionStats {
        requests: c.requests,
        allowed: c.allowed,
        ..RepetitionStats::default()
    };
    let hist = if let Some(level) = headline {
        let hist = latency_histogram(&level.recording.samples);
        stats.throughput_rps = rate_level(level).achieved_rps;
        (stats.cpu_us_per_request, stats.loadgen_cpu_cores) = level_cpu(level);
        hist
    } else if matches!(scenario, ScenarioId::Throughput | ScenarioId::Capacity) {
        new_histogram()
    } else {
        let secs = rep.recording.elapsed.as_secs_f64().max(1e-3);
        stats.throughput_rps = c.requests as f64 / secs;
        if let Some(cpu) = &rep.cpu {
            stats.cpu_us_per_request = cpu.per_request(c.requests);
            stats.loadgen_cpu_cores = Some(cpu.cores(Role::Loadgen));
        }
        latency_histogram(&rep.recording.samples)
    };
    if let Some(cap) = rep.capacity {
        stats.capacity_rps = Some(f64::from(cap.rps));
        stats.throughput_rps = f64::from(cap.rps);
        stats.loadgen_bound = cap.loadgen_bound;
    }
    stats.latency_us = LatencyUs::from_histogram(&hist);
    (stats, hist)
}

/// A level's figures, and whether it was sustained (capacity: whether it
/// met the SLO).
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
    let first_us = level
        .recording
        .samples
        .iter()
        .map(|s| s.at_us)
        .min()
        .unwrap_or(0);
    let span_s = last_done_us.saturating_sub(first_us) as f64 / 1e6;
    let window = level.duration.as_secs_f64().max(span_s);
    let achieved_rps = c.allowed as f64 / window.max(1e-3);
    let target_rps = f64::from(level.rate_per_sec);
    let (cpu_us_per_request, loadgen_cpu_cores) = level_cpu(level);
    RateLevel {
        target_rps,
        achieved_rps,
        errors: c.errors,
        latency_us,
        sustained: level.passed.unwrap_or(
            achieved_rps >= SUSTAIN_MIN_SHARE * target_rps && latency_us.p99 <= SUSTAIN_MAX_P99_US,
        ),
        cpu_us_per_request,
        loadgen_cpu_cores,
    }
}

/// `on_error = "local"` with `replicas_hint` = `replicas`: at most
/// `replicas × (⌊C / h⌋ + d·r / h)` per client over `down_secs` (each local
/// bucket at least 1 token), summed over the outage clients.
pub fn local_bound(params: &Params, replicas: u32, down_secs: f64) -> f64 {
    let h = f64::from(replicas.max(1));
    let shape = params.outage;
    let local_capacity = (shape.capacity / replicas.max(1)).max(1);
    let per_client =
        f64::from(replicas) * (f64::from(local_capacity) + down_secs * shape.refill_per_sec / h);
    per_client * f64::from(params.outage_clients)
}

/// One repetition's outage window: outcomes of the requests sent while
/// the store was down against the ideal, and the recovery time (the
/// replicas' last decision without the store, after the restart).
fn outage_rep(params: &Params, rep: &RepResult, m: OutageMarks) -> OutageRep {
    let (c, ideal) = analysis::window(
        &rep.recording.samples,
        params.outage,
        m.killed_us,
        m.restarted_us,
    );
    OutageRep {
        admitted: c.allowed,
        ideal,
        denied: c.denied,
        errors: c.errors,
        down_ms: m.restarted_us.saturating_sub(m.killed_us) / 1000,
        recovery_ms: m
            .fallback_ended_us
            .map(|t| t.saturating_sub(m.restarted_us) / 1000),
    }
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
        let fallback_ended_at_ms = m.fallback_ended_us.map(|us| us / 1000);
        // Local fallback denies too: only the counters tell it from the store.
        let enforcement_resumed_at_ms = if r.on_error == Some(OnError::Local) {
            fallback_ended_at_ms
        } else {
            analysis::first_denied_after(samples, m.restarted_us).map(|us| us / 1000)
        };
        r.outage = Some(Outage {
            killed_at_ms: m.killed_us / 1000,
            restarted_at_ms: m.restarted_us / 1000,
            enforcement_resumed_at_ms,
            fallback_ended_at_ms,
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
