//! The five scenarios: their ids, the gateway policies they need, and the
//! load plans that drive them.
//!
//! Every scenario has its own path prefix and policy, so one gateway config
//! serves them all, and every run uses fresh API keys, so repetitions never
//! share a bucket.

use std::time::Duration;

pub use rateguard_contract::ScenarioId;

use crate::analysis::BucketShape;
use crate::goose_driver::{ClientKeys, GoosePlan, Stop};
use crate::open_model::OpenPlan;

/// The path prefix a scenario's requests use; its policy is named after it
/// (without the slash).
pub fn path_prefix(id: ScenarioId) -> &'static str {
    match id {
        ScenarioId::Burst => "/burst",
        ScenarioId::Sustained => "/sustained",
        ScenarioId::Throughput => "/throughput",
        ScenarioId::Distribution => "/distribution",
        ScenarioId::StoreOutage => "/outage",
    }
}

/// One `[[policies]]` entry of the gateway config.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Policy name.
    pub name: String,
    /// Path prefix it applies to (`None`: the default policy).
    pub path_prefix: Option<String>,
    /// Bucket shape.
    pub shape: BucketShape,
}

/// A limit high enough that nothing is ever denied in a lab run.
pub const UNLIMITED: BucketShape = BucketShape {
    capacity: 1_000_000_000,
    refill_per_sec: 1_000_000.0,
};

/// Every scenario knob. [`Params::default`] is the ≈10-minute lab run.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// burst: the one client's bucket (negligible refill).
    pub burst: BucketShape,
    /// burst: users released at once.
    pub burst_users: usize,
    /// burst: requests each user sends.
    pub burst_requests_per_user: usize,
    /// sustained: each client's bucket.
    pub sustained: BucketShape,
    /// sustained: distinct clients.
    pub sustained_clients: u32,
    /// sustained: users per client.
    pub sustained_users_per_client: u32,
    /// sustained: pause between one user's requests.
    pub sustained_pause: Duration,
    /// sustained: run time, whole seconds.
    pub sustained_secs: u64,
    /// throughput: arrival rates, requests per second.
    pub throughput_rates: Vec<u32>,
    /// throughput: the rate whose latency stands for the scenario (the same
    /// offered load for every store; the middle rate if not in the list).
    pub throughput_reference_rate: u32,
    /// throughput: how long each rate runs.
    pub throughput_step: Duration,
    /// throughput: requests in flight at most.
    pub throughput_max_in_flight: usize,
    /// throughput: distinct clients (API keys) the requests rotate over.
    pub throughput_clients: u32,
    /// distribution: sequential requests.
    pub distribution_requests: usize,
    /// store-outage: each client's bucket.
    pub outage: BucketShape,
    /// store-outage: distinct clients (one user each).
    pub outage_clients: u32,
    /// store-outage: pause between one user's requests.
    pub outage_pause: Duration,
    /// store-outage: seconds before the kill, down, and after the restart.
    pub outage_phases_secs: [u64; 3],
}

impl Default for Params {
    fn default() -> Self {
        Self {
            burst: BucketShape {
                capacity: 50,
                refill_per_sec: 0.01,
            },
            burst_users: 50,
            burst_requests_per_user: 8,
            sustained: BucketShape {
                capacity: 20,
                refill_per_sec: 10.0,
            },
            sustained_clients: 6,
            sustained_users_per_client: 2,
            sustained_pause: Duration::from_millis(20),
            sustained_secs: 8,
            throughput_rates: vec![2500, 5000, 7500, 10000, 12500, 15000],
            throughput_reference_rate: 5000,
            throughput_step: Duration::from_secs(3),
            throughput_max_in_flight: 256,
            throughput_clients: 64,
            distribution_requests: 60,
            outage: BucketShape {
                capacity: 5,
                refill_per_sec: 5.0,
            },
            outage_clients: 4,
            outage_pause: Duration::from_millis(20),
            outage_phases_secs: [3, 3, 5],
        }
    }
}

impl Params {
    /// A tiny run for tests: short phases, small loads, every scenario.
    pub fn tiny() -> Self {
        Self {
            burst: BucketShape {
                capacity: 20,
                refill_per_sec: 0.01,
            },
            burst_users: 20,
            burst_requests_per_user: 6,
            sustained_clients: 2,
            sustained_users_per_client: 2,
            sustained_secs: 2,
            throughput_rates: vec![200, 400],
            throughput_reference_rate: 400,
            throughput_step: Duration::from_secs(1),
            distribution_requests: 12,
            outage_clients: 2,
            outage_phases_secs: [1, 1, 2],
            ..Self::default()
        }
    }

    /// The gateway policies every scenario needs, plus a default.
    pub fn policies(&self) -> Vec<Policy> {
        let scenario = |id, shape| {
            let prefix = path_prefix(id);
            Policy {
                name: prefix.trim_start_matches('/').to_owned(),
                path_prefix: Some(prefix.to_owned()),
                shape,
            }
        };
        let default = Policy {
            name: "default".into(),
            path_prefix: None,
            shape: UNLIMITED,
        };
        vec![
            default,
            scenario(ScenarioId::Burst, self.burst),
            scenario(ScenarioId::Sustained, self.sustained),
            scenario(ScenarioId::Throughput, UNLIMITED),
            scenario(ScenarioId::Distribution, UNLIMITED),
            scenario(ScenarioId::StoreOutage, self.outage),
        ]
    }

    /// burst: all users at once, one key.
    pub fn burst_plan(&self, host: &str, key_prefix: &str) -> GoosePlan {
        GoosePlan {
            host: host.to_owned(),
            path: format!("{}/item", path_prefix(ScenarioId::Burst)),
            users: self.burst_users,
            hatch_rate: self.burst_users * 100,
            stop: Stop::Iterations(self.burst_requests_per_user),
            pause: None,
            clients: ClientKeys {
                prefix: key_prefix.to_owned(),
                count: 1,
            },
        }
    }

    /// sustained: several users per client, paced, for a fixed time.
    pub fn sustained_plan(&self, host: &str, key_prefix: &str) -> GoosePlan {
        let users = (self.sustained_clients * self.sustained_users_per_client) as usize;
        GoosePlan {
            host: host.to_owned(),
            path: format!("{}/item", path_prefix(ScenarioId::Sustained)),
            users,
            hatch_rate: users * 100,
            stop: Stop::Seconds(self.sustained_secs),
            pause: Some(self.sustained_pause),
            clients: ClientKeys {
                prefix: key_prefix.to_owned(),
                count: self.sustained_clients,
            },
        }
    }

    /// distribution: one user, sequential requests.
    pub fn distribution_plan(&self, host: &str, key_prefix: &str) -> GoosePlan {
        GoosePlan {
            host: host.to_owned(),
            path: format!("{}/item", path_prefix(ScenarioId::Distribution)),
            users: 1,
            hatch_rate: 1,
            stop: Stop::Iterations(self.distribution_requests),
            pause: None,
            clients: ClientKeys {
                prefix: key_prefix.to_owned(),
                count: 1,
            },
        }
    }

    /// store-outage: one paced user per client for the three phases.
    pub fn outage_plan(&self, host: &str, key_prefix: &str) -> GoosePlan {
        GoosePlan {
            host: host.to_owned(),
            path: format!("{}/item", path_prefix(ScenarioId::StoreOutage)),
            users: self.outage_clients as usize,
            hatch_rate: self.outage_clients as usize * 100,
            stop: Stop::Seconds(self.outage_phases_secs.iter().sum()),
            pause: Some(self.outage_pause),
            clients: ClientKeys {
                prefix: key_prefix.to_owned(),
                count: self.outage_clients,
            },
        }
    }

    /// throughput: one fixed-rate step, rotating over the clients' keys.
    pub fn throughput_plan(&self, host: &str, key_prefix: &str, rate_per_sec: u32) -> OpenPlan {
        let keys = ClientKeys {
            prefix: key_prefix.to_owned(),
            count: self.throughput_clients.max(1),
        };
        OpenPlan {
            url: format!("{host}{}/item", path_prefix(ScenarioId::Throughput)),
            rate_per_sec,
            duration: self.throughput_step,
            max_in_flight: self.throughput_max_in_flight,
            api_keys: (0..keys.count).map(|i| keys.key(i)).collect(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_named_after_their_path_prefix() {
        let names: Vec<String> = Params::default()
            .policies()
            .into_iter()
            .map(|p| p.name)
            .collect();
        // Unchanged since the lab's first runs: they label its metrics.
        let expected = "default burst sustained throughput distribution outage";
        assert_eq!(names.join(" "), expected);
    }

    #[test]
    fn every_scenario_has_its_own_policy() {
        let policies = Params::default().policies();
        for id in ScenarioId::ALL {
            assert!(
                policies
                    .iter()
                    .any(|p| p.path_prefix.as_deref() == Some(path_prefix(id))),
                "{id}"
            );
        }
        assert_eq!(
            policies.iter().filter(|p| p.path_prefix.is_none()).count(),
            1
        );
    }

    #[test]
    fn burst_sends_more_than_three_replicas_could_allow() {
        // The memory store's per-replica buckets must be able to show N × C.
        for p in [Params::default(), Params::tiny()] {
            let sent = p.burst_users * p.burst_requests_per_user;
            assert!(sent as u32 >= 2 * 3 * p.burst.capacity, "{sent}");
        }
    }
}
