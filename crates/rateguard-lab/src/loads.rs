//! The throughput scenario's offered loads: fractions of a base capacity
//! per key mix, taken from pass 1's capacity records so that every subject
//! is compared at the same offered loads.
//!
//! The base is the slowest *good* capacity of the gateways' stores with
//! that mix (over every store RTT): per record, the median over the
//! repetitions that found a rate and were not `loadgen_bound`. It is held
//! at [`FLOOR_SHARE_OF_MEDIAN`] of the median good capacity and at
//! `Params::throughput_floor_rps` at least, so one collapsed search cannot
//! pin every subject to a few hundred requests per second.

use std::collections::BTreeMap;

use rateguard_lab_model::{Frontend, KeyMix, ScenarioId};
use rateguard_report::{median, Record};

use crate::options::LabOptions;

/// The base is at least this share of the median good capacity.
pub const FLOOR_SHARE_OF_MEDIAN: f64 = 0.5;

/// `r`'s capacity from its good repetitions (a rate found, the generator
/// not the limit): their median; `None` when there are none.
pub fn good_capacity(r: &Record) -> Option<f64> {
    let good: Vec<f64> = r
        .repetitions
        .iter()
        .filter(|rep| !rep.loadgen_bound)
        .filter_map(|rep| rep.capacity_rps)
        .filter(|&c| c > 0.0)
        .collect();
    median(&good)
}

/// How the base capacity of one key mix was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Base {
    /// The capacity the fractions apply to, req/s.
    pub rps: f64,
    /// The slowest good capacity and whose it was (`None`: no good one).
    pub slowest: Option<(f64, String)>,
    /// Whether a floor raised it above the slowest.
    pub floored: bool,
}

/// The base capacity of `mix` from `records` (see the module doc);
/// `None` when no gateway store has a good capacity with it.
pub fn base(records: &[Record], mix: KeyMix, floor_rps: u32) -> Option<Base> {
    let good: Vec<(f64, String)> = records
        .iter()
        .filter(|r| r.scenario == ScenarioId::Capacity && r.keys == Some(mix))
        .filter(|r| r.frontend == Frontend::Gateway)
        .filter_map(|r| {
            let c = good_capacity(r)?;
            let rtt = r
                .store_rtt_ms
                .map_or_else(String::new, |rtt| format!(" at {rtt} ms"));
            Some((c, format!("{}{rtt}", r.subject().name())))
        })
        .collect();
    let slowest = good.iter().min_by(|a, b| a.0.total_cmp(&b.0)).cloned()?;
    let all: Vec<f64> = good.iter().map(|g| g.0).collect();
    let floor = (median(&all).unwrap_or(0.0) * FLOOR_SHARE_OF_MEDIAN).max(f64::from(floor_rps));
    Some(Base {
        rps: slowest.0.max(floor),
        floored: floor > slowest.0,
        slowest: Some(slowest),
    })
}

/// Each key mix's offered loads, and a sentence per mix saying where they
/// came from (for the report's notes).
pub fn throughput_loads(
    opts: &LabOptions,
    records: &[Record],
) -> (BTreeMap<KeyMix, Vec<u32>>, Vec<String>) {
    let p = &opts.params;
    let mut loads = BTreeMap::new();
    let mut why = Vec::new();
    for &mix in &opts.keys {
        let base = opts
            .throughput_from_capacity
            .then(|| base(records, mix, p.throughput_floor_rps))
            .flatten();
        let rates = p.throughput_loads(base.as_ref().map(|b| b.rps));
        why.push(match &base {
            Some(b) => {
                let (slowest, whose) = b.slowest.clone().unwrap_or_default();
                let floor = if b.floored {
                    format!(", raised to the floor (≥ {:.0} % of the median good capacity and ≥ {} req/s)", FLOOR_SHARE_OF_MEDIAN * 100.0, p.throughput_floor_rps)
                } else {
                    String::new()
                };
                format!(
                    "throughput, {mix} keys: offered {rates:?} req/s, from a base of {:.0} req/s (the slowest good capacity: {whose}, {slowest:.0} req/s{floor})",
                    b.rps
                )
            }
            None => format!("throughput, {mix} keys: offered {rates:?} req/s (no good capacity to scale)"),
        });
        loads.insert(mix, rates);
    }
    (loads, why)
}

#[cfg(test)]
mod tests {
    use rateguard_contract::StoreKind;
    use rateguard_report::{RepetitionStats, Subject};

    use super::*;

    fn capacity(store: StoreKind, reps: &[(f64, bool)]) -> Record {
        Record {
            keys: Some(KeyMix::Hot),
            store_rtt_ms: Some(0.0),
            repetitions: reps
                .iter()
                .map(|&(c, bound)| RepetitionStats {
                    capacity_rps: Some(c),
                    loadgen_bound: bound,
                    ..RepetitionStats::default()
                })
                .collect(),
            ..Record::new(Subject::gateway(store), ScenarioId::Capacity)
        }
    }

    #[test]
    fn loadgen_bound_repetitions_do_not_set_the_base() {
        let r = capacity(
            StoreKind::RedisLua,
            &[(121.0, true), (5000.0, false), (5400.0, false)],
        );
        assert_eq!(good_capacity(&r), Some(5200.0));
        let all_bound = capacity(StoreKind::RedisLua, &[(121.0, true)]);
        assert_eq!(good_capacity(&all_bound), None);
        let records = [
            r,
            all_bound,
            capacity(StoreKind::RedisPipelined, &[(6000.0, false)]),
        ];
        let b = base(&records, KeyMix::Hot, 100).unwrap();
        assert_eq!(b.rps, 5200.0);
        assert!(!b.floored);
        assert_eq!(b.slowest.unwrap().1, "redis-lua at 0 ms");
        assert!(base(&records, KeyMix::Zipf, 100).is_none());
    }

    #[test]
    fn one_collapsed_search_is_floored() {
        let records = [
            capacity(StoreKind::RedisLua, &[(300.0, false)]),
            capacity(StoreKind::RedisPipelined, &[(6000.0, false)]),
            capacity(StoreKind::FredCluster, &[(5000.0, false)]),
        ];
        // Half the median good capacity (5000).
        let b = base(&records, KeyMix::Hot, 100).unwrap();
        assert_eq!((b.rps, b.floored), (2500.0, true));
        // The absolute floor when it is higher.
        assert_eq!(base(&records, KeyMix::Hot, 4000).unwrap().rps, 4000.0);
    }
}
