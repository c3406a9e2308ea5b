use std::collections::BTreeMap;

use rateguard_lab_model::KeyMix;

use super::*;
use crate::model::{CpuPerRequest, LatencyUs, Record, RepetitionStats, Settings};

/// Records of one store at `hot · 0 ms`: burst exact (or not), capacity
/// with `redis`/`gateway` µs per repetition, throughput with `p99` per
/// repetition.
fn store(kind: StoreKind, exact: bool, redis: &[f64], gateway: &[f64], p99: &[u64]) -> Vec<Record> {
    let subject = Subject::gateway(kind);
    let mut burst = Record::new(subject, ScenarioId::Burst);
    burst.expected_allowed = Some(10);
    burst.allowed = if exact { 10 } else { 30 };
    let mut capacity = Record {
        keys: Some(KeyMix::Hot),
        store_rtt_ms: Some(0.0),
        ..Record::new(subject, ScenarioId::Capacity)
    };
    capacity.repetitions = redis
        .iter()
        .zip(gateway)
        .map(|(&r, &g)| RepetitionStats {
            cpu_us_per_request: Some(CpuPerRequest(BTreeMap::from([
                (Role::Store, r),
                (Role::Gateway, g),
            ]))),
            ..RepetitionStats::default()
        })
        .collect();
    let mut throughput = Record {
        keys: Some(KeyMix::Hot),
        store_rtt_ms: Some(0.0),
        ..Record::new(subject, ScenarioId::Throughput)
    };
    throughput.repetitions = p99
        .iter()
        .map(|&p| RepetitionStats {
            latency_us: LatencyUs {
                p99: p,
                ..LatencyUs::default()
            },
            ..RepetitionStats::default()
        })
        .collect();
    vec![burst, capacity, throughput]
}

fn summary(records: Vec<Vec<Record>>) -> Summary {
    let records: Vec<Record> = records.into_iter().flatten().collect();
    let mut stores: Vec<StoreKind> = records.iter().filter_map(|r| r.store).collect();
    stores.dedup();
    Summary {
        run_id: "t".into(),
        created_at: String::new(),
        machine: Default::default(),
        versions: Default::default(),
        git_commit: String::new(),
        settings: Settings {
            repetitions: 3,
            stores,
            keys: vec![KeyMix::Hot],
            store_rtts_ms: vec![0.0],
            ..Settings::default()
        },
        records,
        bench_summary_path: None,
        notes: Vec::new(),
    }
}

#[test]
fn the_cheapest_redis_cpu_beyond_the_spread_wins() {
    let s = summary(vec![
        store(StoreKind::Memory, false, &[0.0; 3], &[20.0; 3], &[900; 3]),
        store(
            StoreKind::RedisLua,
            true,
            &[14.0, 14.3, 14.8],
            &[50.0; 3],
            &[900; 3],
        ),
        store(
            StoreKind::RedisPipelined,
            true,
            &[7.2, 7.7, 8.1],
            &[51.0; 3],
            &[900; 3],
        ),
    ]);
    assert_eq!(
        s.candidates(),
        [StoreKind::RedisLua, StoreKind::RedisPipelined]
    );
    let v = &s.verdicts()[0];
    assert_eq!(v.store, Some(StoreKind::RedisPipelined));
    assert_eq!(
        v.line(),
        "hot · 0 ms: redis-pipelined: 46 % less Redis CPU per decision than redis-lua, \
         beyond the spread; held the limit exactly; \
         Redis CPU per decision 7.7 µs (7.2 – 8.1) against 14.3 µs (14.0 – 14.8)"
    );
}

#[test]
fn overlapping_redis_cpu_goes_on_to_the_gateway_then_p99() {
    let lua = store(
        StoreKind::RedisLua,
        true,
        &[14.0, 15.0, 16.0],
        &[50.0, 51.0, 52.0],
        &[900, 950, 1000],
    );
    let pipelined = store(
        StoreKind::RedisPipelined,
        true,
        &[15.5, 16.0, 17.0],
        &[40.0, 41.0, 42.0],
        &[900; 3],
    );
    let cluster = store(
        StoreKind::FredCluster,
        true,
        &[26.0, 27.0, 28.0],
        &[55.0; 3],
        &[900; 3],
    );
    let s = summary(vec![lua.clone(), pipelined.clone(), cluster]);
    let v = &s.verdicts()[0];
    assert_eq!(v.store, Some(StoreKind::RedisPipelined), "{}", v.line());
    assert!(
        v.reason
            .starts_with("20 % less gateway CPU per request than redis-lua"),
        "{}",
        v.reason
    );
    assert!(
        v.line().contains("Redis CPU per decision overlaps"),
        "{}",
        v.line()
    );
    assert!(
        v.line()
            .contains("higher beyond the spread: fred-cluster 27.0 µs"),
        "{}",
        v.line()
    );

    // Every cost overlapping: a stated tie, naming each figure.
    let same = store(
        StoreKind::RedisPipelined,
        true,
        &[15.5, 16.0, 17.0],
        &[50.5, 51.0, 53.0],
        &[920, 960, 990],
    );
    let s = summary(vec![lua, same]);
    let v = &s.verdicts()[0];
    assert_eq!(v.store, None);
    assert_eq!(v.tied, [StoreKind::RedisLua, StoreKind::RedisPipelined]);
    assert!(v.line().starts_with("hot · 0 ms: any of redis-lua, redis-pipelined: their costs overlap here; Redis CPU per decision overlaps"), "{}", v.line());
    assert!(
        v.line().contains("p99 at equal offered load overlaps"),
        "{}",
        v.line()
    );
}

#[test]
fn fewer_than_three_repetitions_do_not_rank() {
    let s = summary(vec![
        store(StoreKind::RedisLua, true, &[14.0], &[50.0], &[900]),
        store(StoreKind::RedisPipelined, true, &[7.0], &[50.0], &[900]),
    ]);
    let v = &s.verdicts()[0];
    assert_eq!(v.store, None);
    assert!(
        v.line().contains(
            ": not ranked; Redis CPU per decision over 1 repetition(s), the rule needs 3"
        ),
        "{}",
        v.line()
    );
    // One candidate: it is the verdict.
    let s = summary(vec![
        store(StoreKind::Memory, false, &[0.0; 3], &[20.0; 3], &[900; 3]),
        store(StoreKind::RedisLua, true, &[14.0], &[50.0], &[900]),
    ]);
    assert_eq!(s.verdicts()[0].store, Some(StoreKind::RedisLua));
    let s = summary(vec![store(
        StoreKind::Memory,
        false,
        &[0.0; 3],
        &[20.0; 3],
        &[900; 3],
    )]);
    assert_eq!(s.verdicts()[0].choice(), "no store");
}
