//! The scenarios: their ids, the gateway policies they need, and the load
//! plans that drive them.
//!
//! Every scenario has its own path prefix and policy, so one gateway config
//! serves them all, and every run uses fresh API keys, so repetitions never
//! share a bucket.

use std::sync::Arc;
use std::time::Duration;

pub use rateguard_lab_model::ScenarioId;

use crate::analysis::BucketShape;
use crate::goose_driver::{ClientKeys, GoosePlan, Stop};
use crate::keys::KeyPlan;
use crate::open_model::{OpenPlan, Slo};

/// The path prefix a scenario's requests use; its policy is named after it
/// (without the slash).
pub fn path_prefix(id: ScenarioId) -> &'static str {
    id.path_prefix()
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

/// sustained: the generator's connections at most (its rate is modest).
const SUSTAINED_CONNECTIONS: usize = 32;

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
    /// sustained: distinct clients (keys), asked in turn.
    pub sustained_clients: u32,
    /// sustained: each client's arrival rate (open model), requests per
    /// second: far above its refill, so the bucket decides.
    pub sustained_rps_per_client: u32,
    /// sustained: run time, whole seconds.
    pub sustained_secs: u64,
    /// capacity: the first rate probed, requests per second.
    pub capacity_start_rps: u32,
    /// capacity: the lowest rate probed.
    pub capacity_min_rps: u32,
    /// capacity: the highest rate probed (the result is "at least" this).
    pub capacity_max_rps: u32,
    /// capacity: the search stops when the highest pass and the lowest
    /// failure are this close (relative).
    pub capacity_precision: f64,
    /// capacity: how long each probed rate runs.
    pub capacity_step: Duration,
    /// capacity: what a probed rate must meet.
    pub slo: Slo,
    /// throughput: offered loads as fractions of the slowest store's
    /// capacity (with the same key mix), when the capacity scenario ran.
    pub throughput_load_fractions: Vec<f64>,
    /// throughput: arrival rates when there is no capacity to scale
    /// (explicit `--rates`, or no capacity scenario), requests per second.
    pub throughput_rates: Vec<u32>,
    /// throughput: how long each rate runs.
    pub throughput_step: Duration,
    /// throughput: the base capacity its fractions apply to is at least
    /// this, req/s (a floor under a collapsed capacity search).
    pub throughput_floor_rps: u32,
    /// throughput and capacity: keep-alive connections of the generator
    /// (so requests in flight at most).
    pub open_connections: usize,
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
            sustained_clients: 4,
            sustained_rps_per_client: 300,
            sustained_secs: 6,
            capacity_start_rps: 2000,
            capacity_min_rps: 100,
            capacity_max_rps: 200_000,
            capacity_precision: 0.05,
            capacity_step: Duration::from_millis(1000),
            slo: Slo {
                p99: Duration::from_millis(25),
                min_success: 0.99,
            },
            throughput_load_fractions: vec![0.25, 0.5, 0.75],
            throughput_rates: vec![1000, 2000, 4000],
            throughput_step: Duration::from_millis(1000),
            throughput_floor_rps: 1000,
            open_connections: 128,
            distribution_requests: 60,
            outage: BucketShape {
                capacity: 5,
                refill_per_sec: 5.0,
            },
            outage_clients: 4,
            outage_pause: Duration::from_millis(20),
            outage_phases_secs: [1, 1, 3],
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
            sustained_rps_per_client: 100,
            sustained_secs: 2,
            capacity_start_rps: 200,
            capacity_min_rps: 50,
            capacity_max_rps: 800,
            capacity_precision: 0.25,
            capacity_step: Duration::from_millis(300),
            slo: Slo {
                // A debug build on a busy machine.
                p99: Duration::from_millis(250),
                min_success: 0.99,
            },
            throughput_rates: vec![100, 200],
            throughput_step: Duration::from_millis(400),
            throughput_floor_rps: 50,
            open_connections: 16,
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
            scenario(ScenarioId::Capacity, UNLIMITED),
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

    /// sustained: every client at about `sustained_rps_per_client`, in a
    /// seeded random order (open model, so a slow answer does not slow the
    /// asking), for a fixed time.
    pub fn sustained_plan(&self, host: &str, key_prefix: &str, seed: u64) -> OpenPlan {
        let clients = self.sustained_clients.max(1);
        let rate_per_sec = clients * self.sustained_rps_per_client.max(1);
        let requests = rate_per_sec as usize * self.sustained_secs.max(1) as usize;
        OpenPlan {
            url: format!("{host}{}/item", path_prefix(ScenarioId::Sustained)),
            rls: None,
            rate_per_sec,
            duration: Duration::from_secs(self.sustained_secs),
            connections: self.open_connections.min(SUSTAINED_CONNECTIONS),
            keys: Arc::new(KeyPlan::shuffled(key_prefix, clients, requests, seed)),
            timeout: Duration::from_secs(5),
            slo: None,
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

    /// throughput: one fixed-rate step with `keys`.
    pub fn throughput_plan(&self, host: &str, keys: Arc<KeyPlan>, rate_per_sec: u32) -> OpenPlan {
        OpenPlan {
            url: format!("{host}{}/item", path_prefix(ScenarioId::Throughput)),
            rls: None,
            rate_per_sec,
            duration: self.throughput_step,
            connections: self.open_connections,
            keys,
            timeout: Duration::from_secs(10),
            slo: None,
        }
    }

    /// capacity: one probed rate with `keys`, stopped early once it misses
    /// the SLO (a request slower than four times the p99 bound is a failure).
    pub fn capacity_plan(&self, host: &str, keys: Arc<KeyPlan>, rate_per_sec: u32) -> OpenPlan {
        OpenPlan {
            url: format!("{host}{}/item", path_prefix(ScenarioId::Capacity)),
            rls: None,
            rate_per_sec,
            duration: self.capacity_step,
            connections: self.open_connections,
            keys,
            timeout: self.slo.p99 * 4,
            slo: Some(self.slo),
        }
    }

    /// throughput's offered loads: each fraction of `slowest_capacity`
    /// (at least 1 req/s), or the explicit rates when there is none.
    pub fn throughput_loads(&self, slowest_capacity: Option<f64>) -> Vec<u32> {
        match slowest_capacity {
            Some(c) if c > 0.0 => self
                .throughput_load_fractions
                .iter()
                .map(|f| ((c * f).round() as u32).max(1))
                .collect(),
            _ => self.throughput_rates.clone(),
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
        let expected = "default burst sustained capacity throughput distribution outage";
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
