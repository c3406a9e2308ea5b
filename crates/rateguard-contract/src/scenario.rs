//! [`ScenarioId`]: the lab's scenarios.

vocabulary! {
    /// A lab scenario, exactly as it appears in `summary.json` and on the
    /// lab's command line. Listed in run order.
    pub enum ScenarioId ("scenario") {
        /// Many users at once against one key: exactly `C` should pass.
        Burst = "burst",
        /// Many clients above their refill rate: allowed vs. `C + r·T`.
        Sustained = "sustained",
        /// Fixed arrival rates with nothing denied: latency and max rate.
        Throughput = "throughput",
        /// Sequential requests: the spread over replicas and backends.
        Distribution = "distribution",
        /// Redis killed and restarted mid-run.
        StoreOutage = "store-outage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_errors_list_them() {
        for id in ScenarioId::ALL {
            assert_eq!(id.to_string().parse::<ScenarioId>(), Ok(id));
        }
        assert_eq!(
            "bursts".parse::<ScenarioId>().unwrap_err().to_string(),
            "unknown scenario \"bursts\", expected one of burst, sustained, throughput, distribution, store-outage"
        );
    }
}
