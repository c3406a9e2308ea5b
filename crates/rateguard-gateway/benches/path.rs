//! `path::normalize` on the hot path: a canonical path (borrowed, no copy)
//! against paths that need rewriting. `cargo bench -p rateguard-gateway --bench path`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rateguard_gateway::path::{normalize, EncodedSlashes};

fn paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("path_normalize");
    for (name, path) in [
        ("canonical_short", "/api/login"),
        ("canonical_long", "/api/v2/users/12345/orders/67890/items"),
        ("canonical_escapes", "/files/caf%C3%A9/r%C3%A9sum%C3%A9.pdf"),
        ("rewrite_dots_slashes", "/api//v2/./users/x/../12345/orders"),
        ("rewrite_escapes", "/%61pi/v2/caf%c3%a9/%6cogin"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| normalize(black_box(path), EncodedSlashes::Reject).map(|p| p.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, paths);
criterion_main!(benches);
