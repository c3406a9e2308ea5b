//! [`ScenarioId`]: the lab's scenarios.

crate::vocabulary! {
    /// A lab scenario, exactly as it appears in `summary.json` and on the
    /// lab's command line, with the path prefix its requests use. Listed in
    /// run order.
    pub enum ScenarioId ("scenario") {
        /// Many users at once against one key: exactly `C` should pass.
        Burst = "burst" => "/burst",
        /// Many clients above their refill rate: allowed vs. `C + r·T`.
        Sustained = "sustained" => "/sustained",
        /// The highest open-model arrival rate that meets the SLO, searched
        /// (doubling, then bisection); nothing is denied.
        Capacity = "capacity" => "/capacity",
        /// Fixed arrival rates with nothing denied (by default 25/50/75 % of
        /// the slowest store's capacity): latency at the same load.
        Throughput = "throughput" => "/throughput",
        /// Sequential requests: the spread over replicas and backends.
        Distribution = "distribution" => "/distribution",
        /// Redis killed and restarted mid-run.
        StoreOutage = "store-outage" => "/outage",
    }
    /// The path prefix (and policy) of the scenario's requests: every
    /// scenario has its own, so one gateway config serves them all.
    fn path_prefix -> &'static str;
}
