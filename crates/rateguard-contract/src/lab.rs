//! The lab's own vocabulary: what sits in front of the backends
//! ([`Frontend`]), how requests spread over API keys ([`KeyMix`]) and the
//! process roles whose CPU the lab charges per request ([`Role`]).

crate::vocabulary! {
    /// What limits the lab's requests before they reach the backends.
    pub enum Frontend ("frontend") {
        /// The RateGuard gateways, enforcing with a bucket store.
        Gateway = "gateway" => true,
        /// Reference: the gateways with no matching policy (the proxy's own
        /// cost: no identity, no store call).
        None = "none" => false,
        /// Reference: NGINX `limit_req` in place of the gateways (local to
        /// each NGINX instance).
        NginxLimitReq = "nginx-limit-req" => false,
    }
    /// Whether requests consult a bucket store (and so a store round trip).
    fn uses_store -> bool;
}

impl Frontend {
    /// [`Frontend::Gateway`]: the default of records written before
    /// frontends existed.
    pub const fn gateway() -> Self {
        Self::Gateway
    }

    /// The reference frontends (everything but the gateways with a store).
    pub fn references() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(|f| !f.uses_store())
    }
}

crate::vocabulary! {
    /// How a throughput or capacity run spreads its requests over API keys
    /// (bucket identities), with how many keys it draws from.
    pub enum KeyMix ("key mix") {
        /// One key for every request (the hot-key case).
        Hot = "hot" => 1,
        /// Zipf-distributed (s ≈ 1.1) over 10 000 keys: a few hot keys, a long tail.
        Zipf = "zipf" => 10_000,
        /// Uniform over 100 000 keys: every bucket cold.
        Uniform = "uniform" => 100_000,
    }
    /// How many distinct keys the mix draws from.
    fn key_count -> u32;
}

crate::vocabulary! {
    /// A process role whose CPU time the lab charges to the requests it
    /// served (`cpu_us_per_request` in `summary.json`).
    pub enum Role ("role") {
        /// The gateway replicas.
        Gateway = "gateway",
        /// Redis: the standalone server or every cluster node.
        Store = "store",
        /// The NGINX in front (of the gateways, or doing `limit_req`).
        Nginx = "nginx",
        /// The mock backends and the NGINX balancing them.
        Backends = "backends",
        /// The load generator (the lab process, less its network-delay threads).
        Loadgen = "loadgen",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gateway_consults_a_store() {
        let refs: Vec<Frontend> = Frontend::references().collect();
        assert_eq!(refs, [Frontend::None, Frontend::NginxLimitReq]);
        assert!(Frontend::gateway().uses_store());
        assert_eq!(KeyMix::ALL.map(KeyMix::key_count), [1, 10_000, 100_000]);
        assert_eq!(
            Role::IDS,
            ["gateway", "store", "nginx", "backends", "loadgen"]
        );
    }
}
