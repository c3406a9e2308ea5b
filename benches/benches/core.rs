//! Cost of one decision of the pure math (no store, no clock read).

use criterion::{criterion_group, criterion_main, Criterion};
use rateguard_core::{bucket, BucketKey, Quota};
use std::hint::black_box;

fn decision(c: &mut Criterion) {
    let quota = Quota::new(100, 50.0).unwrap();
    let mut group = c.benchmark_group("core");
    group.bench_function("acquire", |b| {
        let (mut tat, mut now) = (0u64, 1_000_000_000u64);
        b.iter(|| {
            now += 7_000;
            let out = bucket::acquire(black_box(tat), black_box(now), &quota, 1);
            tat = out.tat;
            out.decision
        })
    });
    group.bench_function("acquire_batch_32", |b| {
        let (mut tat, mut now) = (0u64, 1_000_000_000u64);
        b.iter(|| {
            now += 100_000;
            let out = bucket::acquire_batch(black_box(tat), black_box(now), &quota, 1, 32);
            tat = out.tat;
            out.allowed
        })
    });
    group.bench_function("bucket_key", |b| {
        b.iter(|| BucketKey::new(black_box("default"), black_box("203.0.113.7")))
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
