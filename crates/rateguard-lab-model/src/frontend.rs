//! [`Frontend`]: what limits the lab's requests before the backends.

rateguard_contract::vocabulary! {
    /// What limits the lab's requests before they reach the backends.
    pub enum Frontend ("frontend") {
        /// The RateGuard gateways, enforcing with a bucket store.
        Gateway = "gateway",
        /// Reference: the gateways with no matching policy (the proxy's own
        /// cost: no identity, no store call).
        None = "none",
        /// Reference: NGINX `limit_req` in place of the gateways (local to
        /// each NGINX instance).
        NginxLimitReq = "nginx-limit-req",
        /// `rateguard rls` replicas with a bucket store, called over gRPC
        /// (`ShouldRateLimit`) as Envoy's ratelimit filter would: the
        /// decision path alone, no proxy.
        Rls = "rls",
    }
}

impl Frontend {
    /// Whether requests consult a bucket store (and so a store round trip).
    pub const fn uses_store(self) -> bool {
        match self {
            Self::Gateway | Self::Rls => true,
            Self::None | Self::NginxLimitReq => false,
        }
    }

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
