use std::fmt::{Debug, Display};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{BackendKind, Frontend, KeyMix, Role, ScenarioId};

/// Every value survives text and serde, and sits at its index.
fn round_trips<T>(all: &[T], index: fn(T) -> usize)
where
    T: Copy + Eq + Debug + Display + FromStr + Serialize + DeserializeOwned,
    T::Err: Debug,
{
    for (i, value) in all.iter().enumerate() {
        assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
        let json = serde_json::to_string(value).unwrap();
        assert_eq!(json, format!("\"{value}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
        assert_eq!(index(*value), i);
    }
}

#[test]
fn every_vocabulary_round_trips() {
    round_trips(&ScenarioId::ALL, ScenarioId::index);
    round_trips(&Frontend::ALL, Frontend::index);
    round_trips(&KeyMix::ALL, KeyMix::index);
    round_trips(&Role::ALL, Role::index);
    round_trips(&BackendKind::ALL, BackendKind::index);
}

#[test]
fn errors_list_the_ids() {
    assert_eq!(
        "bursts".parse::<ScenarioId>().unwrap_err().to_string(),
        "unknown scenario \"bursts\", expected one of burst, sustained, capacity, throughput, distribution, store-outage"
    );
}

#[test]
fn only_the_gateway_and_rls_consult_a_store() {
    let refs: Vec<Frontend> = Frontend::references().collect();
    assert_eq!(refs, [Frontend::None, Frontend::NginxLimitReq]);
    assert!(Frontend::gateway().uses_store());
    assert!(Frontend::Rls.uses_store());
    assert_eq!(KeyMix::ALL.map(KeyMix::key_count), [1, 10_000, 100_000]);
    assert_eq!(
        Role::IDS,
        ["gateway", "store", "nginx", "backends", "loadgen"]
    );
}

#[test]
fn every_scenario_has_its_own_path() {
    let mut prefixes: Vec<&str> = ScenarioId::ALL.map(ScenarioId::path_prefix).to_vec();
    prefixes.sort_unstable();
    prefixes.dedup();
    assert_eq!(prefixes.len(), ScenarioId::ALL.len());
    // Where a backend's identity is measured, the mock backends answer.
    assert_eq!(ScenarioId::Distribution.backend(), BackendKind::Mock);
    assert_eq!(ScenarioId::Burst.backend(), BackendKind::Mock);
}
