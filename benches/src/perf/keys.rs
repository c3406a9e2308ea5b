//! [`KeyMix`]: how `wrk` spreads a case's requests over API keys, and the
//! arguments that tell `wrk.lua` so.
//!
//! The single-key mixes send a fixed request (wrk builds it once); the Zipf
//! and uniform mixes choose the `x-api-key` header per request in the
//! script's `request()` from a table of requests built in `init()`, so the
//! per-request cost on the load generator is a table lookup (plus, for
//! Zipf, one random number and a binary search over the precomputed CDF).

use std::fmt;

/// API keys the Zipf and uniform mixes draw from.
pub const KEYS: u32 = 100_000;

/// The Zipf exponent: rank k is sent with weight k^-s.
pub const ZIPF_S: f64 = 1.1;

/// The API key of every request of the hot-key mix (`wrk.lua` knows it too).
pub const HOT_KEY: &str = "perf-hot";

/// How a case's requests spread over API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMix {
    /// One key per `wrk` thread (`perf-client-<thread>`): the single-key cases.
    PerThread,
    /// One key ([`HOT_KEY`]) on every connection.
    Hot,
    /// Per request, rank k of [`KEYS`] keys with probability ∝ k^-[`ZIPF_S`]
    /// (`perf-key-<k>`; rank 1 gets ~13 % of the requests).
    Zipf,
    /// Per request, the next key of the thread's share of [`KEYS`] keys in
    /// a scrambled cyclic order: every key equally often, each thread's
    /// share (keys ≡ thread mod threads) sent once before any repeats.
    Uniform,
}

impl KeyMix {
    /// The mixes over [`KEYS`] keys.
    pub const MIXES: [KeyMix; 2] = [KeyMix::Zipf, KeyMix::Uniform];

    /// Appended to a case's id (`memory-zipf`, `redis-lua-hot`).
    pub const fn id_suffix(self) -> &'static str {
        match self {
            Self::PerThread => "",
            Self::Hot => "-hot",
            Self::Zipf => "-zipf",
            Self::Uniform => "-uniform",
        }
    }

    /// The arguments after `--` that `wrk.lua` reads in `init()`.
    pub fn script_args(self, threads: u32) -> Vec<String> {
        let mix = match self {
            Self::PerThread => "per-thread",
            Self::Hot => "hot",
            Self::Zipf => "zipf",
            Self::Uniform => "uniform",
        };
        vec![
            mix.to_owned(),
            KEYS.to_string(),
            threads.to_string(),
            ZIPF_S.to_string(),
        ]
    }

    /// Distinct keys that `wrk` threads which sent `sent[t]` requests each
    /// (their most in any one run: every run starts its sequence afresh)
    /// have sent in all, when that is known: the uniform mix (each thread
    /// walks its own share once before repeating) and the single-key mixes.
    pub fn keys_sent(self, sent: &[u64]) -> Option<u64> {
        let threads = sent.len() as u64;
        match self {
            Self::PerThread => Some(threads),
            Self::Hot => Some(1),
            Self::Zipf => None,
            Self::Uniform => Some(
                (1..=threads)
                    .zip(sent)
                    .map(|(t, &n)| n.min(share(u64::from(KEYS), threads, t)))
                    .sum(),
            ),
        }
    }
}

/// How many of `keys` keys thread `t` (1-based) of `threads` owns: those
/// numbered t, t + threads, t + 2·threads, ...
fn share(keys: u64, threads: u64, t: u64) -> u64 {
    if t > keys {
        0
    } else {
        (keys - t) / threads + 1
    }
}

impl fmt::Display for KeyMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PerThread => "one key per wrk thread",
            Self::Hot => "one hot key",
            Self::Zipf => "Zipf",
            Self::Uniform => "uniform",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniform_shares_cover_every_key_once() {
        let total: u64 = (1..=3).map(|t| share(10, 3, t)).sum();
        assert_eq!(total, 10);
        assert_eq!(
            [share(10, 3, 1), share(10, 3, 2), share(10, 3, 3)],
            [4, 3, 3]
        );
        let half = u64::from(KEYS) / 2;
        assert_eq!(KeyMix::Uniform.keys_sent(&[10, 20]), Some(30));
        assert_eq!(
            KeyMix::Uniform.keys_sent(&[half * 3, 7]),
            Some(half + 7),
            "a thread's share counts once however often it was walked"
        );
        assert_eq!(KeyMix::Zipf.keys_sent(&[1, 2]), None);
        assert_eq!(KeyMix::PerThread.keys_sent(&[5, 5]), Some(2));
    }
}
