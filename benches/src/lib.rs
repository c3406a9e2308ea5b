//! Shared helpers for the criterion benches in `benches/benches/`, and
//! [`perf`], the harness of `just perf` (the `rateguard-perf` binary).

use rateguard_core::BucketKey;

/// `n` distinct bucket keys, built once outside the measured loop.
pub fn keys(n: usize) -> Vec<BucketKey> {
    (0..n)
        .map(|i| BucketKey::new("bench", &format!("client-{i}")))
        .collect()
}

pub mod perf;
