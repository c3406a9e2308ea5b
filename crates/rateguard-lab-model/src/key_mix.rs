//! [`KeyMix`]: how the load scenarios spread requests over API keys.

rateguard_contract::vocabulary! {
    /// How a throughput or capacity run spreads its requests over API keys
    /// (bucket identities).
    pub enum KeyMix ("key mix") {
        /// One key for every request (the hot-key case).
        Hot = "hot",
        /// Zipf-distributed (s ≈ 1.1) over 10 000 keys: a few hot keys, a long tail.
        Zipf = "zipf",
        /// Uniform over 100 000 keys: every bucket cold.
        Uniform = "uniform",
    }
}

impl KeyMix {
    /// How many distinct keys the mix draws from.
    pub const fn key_count(self) -> u32 {
        match self {
            Self::Hot => 1,
            Self::Zipf => 10_000,
            Self::Uniform => 100_000,
        }
    }
}
