//! [`ScenarioId`]: the lab's scenarios, and [`BackendKind`]: what answers
//! their requests behind the limiter.

rateguard_contract::vocabulary! {
    /// A lab scenario, exactly as it appears in `summary.json` and on the
    /// lab's command line. Listed in run order.
    pub enum ScenarioId ("scenario") {
        /// Many users at once against one key: exactly `C` should pass.
        Burst = "burst",
        /// Many clients above their refill rate: allowed vs. `C + r·T`.
        Sustained = "sustained",
        /// The highest open-model arrival rate that meets the SLO, searched
        /// (doubling, then bisection); nothing is denied.
        Capacity = "capacity",
        /// Fixed arrival rates with nothing denied (by default 25/50/75 % of
        /// the slowest store's capacity): latency at the same load.
        Throughput = "throughput",
        /// Sequential requests: the spread over replicas and backends.
        Distribution = "distribution",
        /// Redis killed and restarted mid-run.
        StoreOutage = "store-outage",
    }
}

impl ScenarioId {
    /// The path prefix (and policy) of the scenario's requests: every
    /// scenario has its own, so one gateway config serves them all.
    pub const fn path_prefix(self) -> &'static str {
        match self {
            Self::Burst => "/burst",
            Self::Sustained => "/sustained",
            Self::Capacity => "/capacity",
            Self::Throughput => "/throughput",
            Self::Distribution => "/distribution",
            Self::StoreOutage => "/outage",
        }
    }

    /// What answers the scenario's requests behind the limiter: the cheap
    /// NGINX `return 200` where only the limiter's cost matters, the mock
    /// backends where their identity does (which one answered, the burst
    /// and outage replies).
    pub const fn backend(self) -> BackendKind {
        match self {
            Self::Sustained | Self::Capacity | Self::Throughput => BackendKind::Return200,
            Self::Burst | Self::Distribution | Self::StoreOutage => BackendKind::Mock,
        }
    }
}

rateguard_contract::vocabulary! {
    /// What answers a scenario's requests behind the limiter.
    pub enum BackendKind ("backend") {
        /// The mock backends (`rateguard mock-backend`), balanced by an NGINX:
        /// each reply names its backend.
        Mock = "mock",
        /// That NGINX itself, answering a fixed JSON body with `return 200`
        /// (as `just perf` does): a request costs the backend side little, so
        /// the limiter's own cost dominates.
        Return200 = "nginx-return-200",
    }
}
