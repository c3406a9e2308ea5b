//! What a run measures: [`Subject`]s (a store behind the gateways, or a
//! reference frontend), [`RecordKey`]s, and the set of records a run's
//! settings call for ([`Settings::planned`]).

use rateguard_contract::{OnError, StoreKind};
use rateguard_lab_model::{Frontend, KeyMix, ScenarioId};
use serde::{Deserialize, Serialize};

use super::{Record, Settings};

/// What a record measured: the gateways with a store, or a reference
/// frontend (no store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// What limits the requests.
    pub frontend: Frontend,
    /// The gateways' store (`None` for a reference frontend).
    pub store: Option<StoreKind>,
}

impl Subject {
    /// The gateways enforcing with `store`.
    pub const fn gateway(store: StoreKind) -> Self {
        Self {
            frontend: Frontend::Gateway,
            store: Some(store),
        }
    }

    /// A reference frontend (no store).
    pub const fn reference(frontend: Frontend) -> Self {
        Self {
            frontend,
            store: None,
        }
    }

    /// The gRPC Rate Limit Service (`rateguard rls`) with `store`.
    pub const fn rls(store: StoreKind) -> Self {
        Self {
            frontend: Frontend::Rls,
            store: Some(store),
        }
    }

    /// The name shown in the report: the store's id (behind the gateways),
    /// `rls/<store>`, or the frontend's id.
    pub fn name(&self) -> String {
        match (self.frontend, self.store) {
            (Frontend::Rls, Some(store)) => format!("{}/{store}", Frontend::Rls),
            (_, Some(store)) => store.to_string(),
            (frontend, None) => frontend.to_string(),
        }
    }

    /// Whether requests go through a store server (and so see its RTT).
    pub fn has_store_server(&self) -> bool {
        self.frontend.uses_store() && self.store.is_some_and(StoreKind::needs_server)
    }

    /// Whether the subject enforces limits at all (`none` does not).
    pub fn limits(&self) -> bool {
        self.frontend != Frontend::None
    }
}

/// One record's identity: subject × scenario × store RTT × key mix ×
/// `on_error` mode (store-outage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordKey {
    /// What was measured.
    pub subject: Subject,
    /// The scenario.
    pub scenario: ScenarioId,
    /// The added round trip to the store, ms (`None`: no store server in the path).
    pub store_rtt_ms: Option<f64>,
    /// The key mix (`None`: the scenario's own clients).
    pub keys: Option<KeyMix>,
    /// store-outage: the gateways' `on_error` (`None`: another scenario).
    pub on_error: Option<OnError>,
}

impl Record {
    /// What this record measured.
    pub fn subject(&self) -> Subject {
        Subject {
            frontend: self.frontend,
            store: self.store,
        }
    }

    /// This record's identity.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            subject: self.subject(),
            scenario: self.scenario,
            store_rtt_ms: self.store_rtt_ms,
            keys: self.keys,
            // Outage records from before modes existed ran with `allow`.
            on_error: self
                .on_error
                .or((self.scenario == ScenarioId::StoreOutage).then_some(OnError::Allow)),
        }
    }
}

/// Whether `scenario` runs on `subject`: the load scenarios (capacity,
/// throughput) on everything but `rls`, which runs capacity only; burst
/// also on `nginx-limit-req`; the other
/// accuracy scenarios on the gateways' stores; store-outage only where
/// there is a store process to kill.
pub fn runs_on(subject: Subject, scenario: ScenarioId) -> bool {
    if subject.frontend == Frontend::Rls {
        return scenario == ScenarioId::Capacity;
    }
    match scenario {
        ScenarioId::Capacity | ScenarioId::Throughput => true,
        ScenarioId::Burst => subject.store.is_some() || subject.frontend == Frontend::NginxLimitReq,
        ScenarioId::Sustained | ScenarioId::Distribution => subject.store.is_some(),
        ScenarioId::StoreOutage => subject.has_store_server(),
    }
}

/// Whether `scenario` is a load scenario (run per key mix and store RTT)
/// rather than an accuracy one (its own clients, at the first RTT only).
pub fn is_load_scenario(scenario: ScenarioId) -> bool {
    matches!(scenario, ScenarioId::Capacity | ScenarioId::Throughput)
}

impl Settings {
    /// Every subject of the run: the stores, the references, then the
    /// stores behind `rls`.
    pub fn subjects(&self) -> Vec<Subject> {
        let stores = self.stores.iter().map(|&s| Subject::gateway(s));
        stores
            .chain(self.references.iter().map(|&f| Subject::reference(f)))
            .chain(self.rls_stores.iter().map(|&s| Subject::rls(s)))
            .collect()
    }

    /// The store RTTs of the run, ms (`[0]` when none were set).
    pub fn rtts_ms(&self) -> Vec<f64> {
        if self.store_rtts_ms.is_empty() {
            vec![0.0]
        } else {
            self.store_rtts_ms.clone()
        }
    }

    /// The key mixes of the run (`[hot]` when none were set).
    pub fn key_mixes(&self) -> Vec<KeyMix> {
        if self.keys.is_empty() {
            vec![KeyMix::Hot]
        } else {
            self.keys.clone()
        }
    }

    /// Every record these settings call for, in run order within a subject:
    /// load scenarios per key mix and (for subjects with a store server)
    /// per RTT; accuracy scenarios once, at the first RTT; store-outage
    /// once per `on_error` mode ([`Settings::outage_modes_for`]).
    pub fn planned(&self) -> Vec<RecordKey> {
        let rtts = self.rtts_ms();
        let mut out = Vec::new();
        let mut with_server = 0;
        for subject in self.subjects() {
            let modes: Vec<Option<OnError>> = if subject.has_store_server() {
                with_server += 1;
                self.outage_modes_for(with_server - 1)
                    .into_iter()
                    .map(Some)
                    .collect()
            } else {
                vec![None]
            };
            for &scenario in &self.scenarios {
                if !runs_on(subject, scenario) {
                    continue;
                }
                // rls: the decision path at the first RTT and key mix only.
                let rls = subject.frontend == Frontend::Rls;
                let subject_rtts: Vec<Option<f64>> = if !subject.has_store_server() {
                    vec![None]
                } else if is_load_scenario(scenario) && !rls {
                    rtts.iter().copied().map(Some).collect()
                } else {
                    vec![Some(rtts[0])]
                };
                let mixes: Vec<Option<KeyMix>> = if rls {
                    vec![Some(self.key_mixes()[0])]
                } else if is_load_scenario(scenario) {
                    self.key_mixes().into_iter().map(Some).collect()
                } else {
                    vec![None]
                };
                let on_errors: &[Option<OnError>] = if scenario == ScenarioId::StoreOutage {
                    &modes
                } else {
                    &[None]
                };
                for &store_rtt_ms in &subject_rtts {
                    for &keys in &mixes {
                        for &on_error in on_errors {
                            out.push(RecordKey {
                                subject,
                                scenario,
                                store_rtt_ms,
                                keys,
                                on_error,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_scenarios_run_per_mix_and_rtt_accuracy_once() {
        let settings = Settings {
            stores: vec![StoreKind::Memory, StoreKind::RedisLua],
            references: vec![Frontend::NginxLimitReq],
            scenarios: vec![
                ScenarioId::Burst,
                ScenarioId::Capacity,
                ScenarioId::StoreOutage,
            ],
            store_rtts_ms: vec![0.0, 1.0],
            keys: vec![KeyMix::Hot, KeyMix::Zipf],
            ..Settings::default()
        };
        let plan = settings.planned();
        let count = |s: Subject, sc: ScenarioId| {
            plan.iter()
                .filter(|k| k.subject == s && k.scenario == sc)
                .count()
        };
        let lua = Subject::gateway(StoreKind::RedisLua);
        let memory = Subject::gateway(StoreKind::Memory);
        let nginx = Subject::reference(Frontend::NginxLimitReq);
        assert_eq!(count(lua, ScenarioId::Capacity), 4, "2 mixes × 2 RTTs");
        assert_eq!(
            count(memory, ScenarioId::Capacity),
            2,
            "no RTT without a server"
        );
        assert_eq!(count(nginx, ScenarioId::Capacity), 2);
        assert_eq!(count(lua, ScenarioId::Burst), 1);
        assert_eq!(count(nginx, ScenarioId::Burst), 1);
        assert_eq!(count(memory, ScenarioId::StoreOutage), 0);
        assert_eq!(
            count(lua, ScenarioId::StoreOutage),
            1,
            "allow only, by default"
        );
        assert_eq!(count(nginx, ScenarioId::StoreOutage), 0);
        let burst = plan
            .iter()
            .find(|k| k.subject == lua && k.scenario == ScenarioId::Burst)
            .unwrap();
        assert_eq!((burst.store_rtt_ms, burst.keys), (Some(0.0), None));
        assert_eq!(Subject::reference(Frontend::None).name(), "none");
        assert_eq!(Subject::rls(StoreKind::RedisLua).name(), "rls/redis-lua");
        assert!(!Subject::reference(Frontend::None).limits());
    }

    #[test]
    fn rls_runs_capacity_at_the_first_rtt_and_key_mix() {
        let settings = Settings {
            stores: vec![StoreKind::RedisLua],
            rls_stores: vec![StoreKind::Memory, StoreKind::RedisLua],
            scenarios: vec![ScenarioId::Burst, ScenarioId::Capacity],
            store_rtts_ms: vec![0.0, 1.0],
            keys: vec![KeyMix::Hot, KeyMix::Zipf],
            ..Settings::default()
        };
        let rls: Vec<RecordKey> = settings
            .planned()
            .into_iter()
            .filter(|k| k.subject.frontend == Frontend::Rls)
            .collect();
        assert_eq!(rls.len(), 2, "{rls:?}");
        assert!(rls.iter().all(|k| k.scenario == ScenarioId::Capacity));
        assert!(rls.iter().all(|k| k.keys == Some(KeyMix::Hot)));
        assert_eq!(rls[0].store_rtt_ms, None, "memory: no server");
        assert_eq!(rls[1].store_rtt_ms, Some(0.0));
    }

    #[test]
    fn store_outage_runs_per_on_error_mode() {
        let settings = Settings {
            stores: vec![
                StoreKind::Memory,
                StoreKind::RedisLua,
                StoreKind::RedisPipelined,
            ],
            scenarios: vec![ScenarioId::Burst, ScenarioId::StoreOutage],
            on_error: OnError::ALL.to_vec(),
            ..Settings::default()
        };
        let modes = |s: &Settings, store| -> Vec<Option<OnError>> {
            s.planned()
                .iter()
                .filter(|k| k.subject == Subject::gateway(store))
                .filter(|k| k.scenario == ScenarioId::StoreOutage)
                .map(|k| k.on_error)
                .collect()
        };
        let all: Vec<_> = OnError::ALL.into_iter().map(Some).collect();
        assert_eq!(modes(&settings, StoreKind::RedisLua), all);
        assert_eq!(modes(&settings, StoreKind::Memory), []);
        let burst = settings.planned()[0];
        assert_eq!((burst.scenario, burst.on_error), (ScenarioId::Burst, None));
        let tiny = Settings {
            one_mode_per_store: true,
            ..settings
        };
        assert_eq!(modes(&tiny, StoreKind::RedisLua), [Some(OnError::Allow)]);
        assert_eq!(
            modes(&tiny, StoreKind::RedisPipelined),
            [Some(OnError::Deny)]
        );
    }
}
