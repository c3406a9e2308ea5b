//! `MemoryStore` decisions: one hot key (one limit, and two limits in one
//! all-or-nothing `acquire_all`), 1M distinct keys, and contention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rateguard_benches::keys;
use rateguard_core::Quota;
use rateguard_store::{AcquireRequest, MemoryStore};

fn quota() -> Quota {
    Quota::new(1_000_000, 1_000_000.0).unwrap()
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    let store = MemoryStore::new();
    let quota = quota();
    let hot = keys(1).remove(0);
    group.bench_function("hot_key", |b| b.iter(|| store.acquire_now(&hot, &quota, 1)));
    let two: Vec<_> = keys(2)
        .into_iter()
        .map(|k| AcquireRequest::new(k, quota, 1))
        .collect();
    group.bench_function("hot_key_acquire_all_1_limit", |b| {
        b.iter(|| store.acquire_all_now(&two[..1]).unwrap())
    });
    group.bench_function("hot_key_acquire_all_2_limits", |b| {
        b.iter(|| store.acquire_all_now(&two).unwrap())
    });

    let many = keys(1_000_000);
    let store = MemoryStore::new();
    for key in &many {
        store.acquire_now(key, &quota, 1);
    }
    let mut i = 0usize;
    group.bench_function("1m_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % many.len();
            store.acquire_now(&many[i], &quota, 1)
        })
    });
    group.finish();
}

/// `threads` OS threads deciding at once; reports time per decision per thread.
fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store_contended");
    group.measurement_time(Duration::from_secs(3));
    let quota = quota();
    for (name, distinct) in [("hot_key_2_threads", 1usize), ("1k_keys_2_threads", 1000)] {
        let store = Arc::new(MemoryStore::new());
        let keys = Arc::new(keys(distinct));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..2 {
                        let (store, keys) = (&store, &keys);
                        s.spawn(move || {
                            for i in 0..iters as usize {
                                store.acquire_now(&keys[(i + t * 31) % keys.len()], &quota, 1);
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);
