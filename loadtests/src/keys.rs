//! Which API key (bucket identity) each open-model request sends:
//! [`KeyPlan`], built once per run from a [`KeyMix`], so the hot loop only
//! clones a prepared header value.

use http::HeaderValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

pub use rateguard_lab_model::KeyMix;

/// The Zipf exponent of [`KeyMix::Zipf`].
pub const ZIPF_EXPONENT: f64 = 1.1;

/// The keys of one run and the key each request sends.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// `"{prefix}-{i}"` for every key the mix draws from, as header values.
    values: Vec<HeaderValue>,
    /// The key index of request `i` (cycled when a run is longer).
    order: Vec<u32>,
}

impl KeyPlan {
    /// `requests` draws from `mix` over keys `"{prefix}-0"`, ...; the same
    /// `seed` gives the same sequence.
    pub fn new(prefix: &str, mix: KeyMix, requests: usize, seed: u64) -> Self {
        let n = mix.key_count();
        let mut rng = StdRng::seed_from_u64(seed);
        let order: Vec<u32> = match mix {
            KeyMix::Hot => vec![0],
            KeyMix::Uniform => (0..requests.max(1))
                .map(|_| rng.random_range(0..n))
                .collect(),
            KeyMix::Zipf => {
                let zipf = Zipf::new(f64::from(n), ZIPF_EXPONENT)
                    .expect("a positive key count and exponent");
                // Zipf draws 1..=n, 1 being the most frequent.
                (0..requests.max(1))
                    .map(|_| (zipf.sample(&mut rng) as u32).clamp(1, n) - 1)
                    .collect()
            }
        };
        Self::from_order(prefix, n, order)
    }

    /// `requests` draws uniform over `count` keys: every key asks at about
    /// the same rate, but in no fixed order (a fixed order would meet the
    /// front NGINX's round robin in step and pin a key to one replica).
    pub fn shuffled(prefix: &str, count: u32, requests: usize, seed: u64) -> Self {
        let count = count.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let order = (0..requests.max(1))
            .map(|_| rng.random_range(0..count))
            .collect();
        Self::from_order(prefix, count, order)
    }

    /// Request `i` sends key `i % count`: round robin over `count` keys.
    pub fn rotating(prefix: &str, count: u32) -> Self {
        let count = count.max(1);
        Self::from_order(prefix, count, (0..count).collect())
    }

    fn from_order(prefix: &str, count: u32, order: Vec<u32>) -> Self {
        let values = (0..count)
            .map(|i| {
                HeaderValue::from_str(&format!("{prefix}-{i}"))
                    .unwrap_or_else(|_| HeaderValue::from_static("invalid-key-prefix"))
            })
            .collect();
        Self { values, order }
    }

    /// The key index and header value of request `i`.
    pub fn key(&self, i: u64) -> (u32, &HeaderValue) {
        let idx = self.order[(i % self.order.len() as u64) as usize];
        (idx, &self.values[idx as usize])
    }

    /// How many distinct keys the plan draws from.
    pub fn key_count(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_is_one_key_and_uniform_spreads_evenly() {
        let hot = KeyPlan::new("p", KeyMix::Hot, 100, 1);
        assert!((0..100).all(|i| hot.key(i).0 == 0));
        assert_eq!(hot.key(5).1, "p-0");
        let uni = KeyPlan::new("p", KeyMix::Uniform, 10_000, 1);
        let distinct: std::collections::BTreeSet<u32> = (0..10_000).map(|i| uni.key(i).0).collect();
        assert!(distinct.len() > 9_000, "{}", distinct.len());
        assert_eq!(uni.key_count(), 100_000);
    }

    #[test]
    fn zipf_favours_the_first_keys_and_is_reproducible() {
        let a = KeyPlan::new("p", KeyMix::Zipf, 20_000, 7);
        let b = KeyPlan::new("p", KeyMix::Zipf, 20_000, 7);
        assert!((0..20_000).all(|i| a.key(i).0 == b.key(i).0));
        let top = (0..20_000).filter(|&i| a.key(i).0 == 0).count();
        let tenth = (0..20_000).filter(|&i| a.key(i).0 == 9).count();
        // P(1) / P(10) = 10^1.1 ≈ 12.6.
        assert!(top > 5 * tenth.max(1), "key 0: {top}, key 9: {tenth}");
        assert!((0..20_000).all(|i| a.key(i).0 < 10_000));
    }

    #[test]
    fn shuffled_spreads_evenly_in_no_fixed_order() {
        let s = KeyPlan::shuffled("k", 4, 4000, 3);
        let per_key: Vec<usize> = (0..4)
            .map(|k| (0..4000).filter(|&i| s.key(i).0 == k).count())
            .collect();
        assert!(
            per_key.iter().all(|&n| (850..1150).contains(&n)),
            "{per_key:?}"
        );
        assert!((0..8).map(|i| s.key(i).0).collect::<Vec<_>>() != [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn rotating_cycles() {
        let r = KeyPlan::rotating("k", 3);
        assert_eq!(
            (0..5).map(|i| r.key(i).0).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1]
        );
    }
}
