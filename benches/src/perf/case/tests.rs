use rateguard_contract::RawConfig;

use super::*;
use crate::perf::limits::{toml_without_defaults, KEEPS_KEYS_LIVE, NEVER_DRY};

#[test]
fn every_case_has_a_unique_id_that_parses_back() {
    let all = Case::all();
    let ids: Vec<String> = all.iter().map(Case::to_string).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    for (case, id) in all.iter().zip(&ids) {
        assert_eq!(id.parse::<Case>().as_ref(), Ok(case));
        let json = serde_json::to_string(&Subject::current(*case)).unwrap();
        assert_eq!(json, format!("{{\"case\":\"{id}\",\"baseline\":false}}"));
        assert_eq!(serde_json::from_str::<Subject>(&json).unwrap().case, *case);
    }
    for id in [
        "nginx-proxy",
        "ref-proxy",
        "ref-proxy-evalsha",
        "ref-proxy-evalsha-zipf",
        "no-policy",
        "memory",
        "redis-lua-two-limits",
        "fred-cluster",
        "memory-uniform",
        "redis-pipelined-zipf",
        "redis-lua-hot",
        "redis-pipelined-hot-over-limit",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    let err = "memory-hot".parse::<Case>().unwrap_err();
    assert!(
        err.contains("memory-hot") && err.contains("redis-lua-hot"),
        "{err}"
    );
}

#[test]
fn every_gateway_case_renders_a_config_of_its_store_and_quota() {
    for case in Case::all() {
        let urls = ["redis://127.0.0.1:1".to_owned()];
        let config = case.gateway_config("http://127.0.0.1:2", &urls);
        assert_eq!(config.as_ref().map(|c| c.store.kind), case.store());
        if let Some(config) = config {
            let text = toml_without_defaults(&config);
            assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), config);
            assert!(text.contains(&format!("name = \"{case}\"")), "{text}");
            assert!(!text.contains("shutdown_grace_ms"), "{text}");
        }
    }
    let mix = Case::gateway(StoreKind::Memory, Policy::Allow, KeyMix::Uniform);
    assert_eq!(mix.quota(), Some(KEEPS_KEYS_LIVE));
    assert_eq!(Case::REF_PROXY_EVALSHA.quota(), Some(NEVER_DRY));
    assert_eq!(
        (Case::REF_PROXY.quota(), Case::NO_POLICY.quota()),
        (None, None)
    );
}

#[test]
fn gateway_cases_are_read_against_the_reference_doing_the_same_store_work() {
    let id = |c: Option<Case>| c.map(|c| c.to_string());
    let of = |id: &str| id.parse::<Case>().unwrap().reference();
    assert_eq!(id(of("no-policy")), Some("ref-proxy".into()));
    assert_eq!(id(of("memory-zipf")), Some("ref-proxy".into()));
    assert_eq!(id(of("redis-lua")), Some("ref-proxy-evalsha".into()));
    assert_eq!(id(of("fred-cluster")), Some("ref-proxy-evalsha".into()));
    assert_eq!(
        id(of("redis-pipelined-uniform")),
        Some("ref-proxy-evalsha-uniform".into())
    );
    assert_eq!(
        id(of("redis-lua-hot-over-limit")),
        Some("ref-proxy-evalsha".into())
    );
    assert_eq!((of("nginx-proxy"), of("ref-proxy")), (None, None));
    for case in Case::all() {
        if let Some(reference) = case.reference() {
            assert!(Case::all().contains(&reference), "{case} → {reference}");
        }
    }
}

#[test]
fn a_selection_gets_its_floors_and_groups_name_their_cases() {
    let picked = Case::select("redis-lua-zipf").unwrap();
    let ids: Vec<String> = with_floors(&picked).iter().map(Case::to_string).collect();
    assert_eq!(
        ids,
        ["nginx-proxy", "ref-proxy-evalsha-zipf", "redis-lua-zipf"]
    );
    assert!(with_floors(&[]).is_empty());
    let hot = Case::select("hot").unwrap();
    assert_eq!(hot.len(), 2 * HOT_KEY_STORES.len());
    assert!(hot.iter().all(|c| c.keys == KeyMix::Hot));
    let mixes = Case::select("mixes").unwrap();
    assert_eq!(mixes.len(), 2 * (KEY_MIX_STORES.len() + 1));
    assert!(Case::select("floors")
        .unwrap()
        .iter()
        .all(|c| !c.is_gateway()));
    assert_eq!(
        Case::select("deny-heavy").unwrap()[0].to_string(),
        "redis-lua-hot-over-limit"
    );
    assert_eq!(Case::select("all").unwrap(), Case::all());
    assert!(!Case::select("redis-lua-hot-over-limit").unwrap()[0].must_allow());
    assert!(Case::select("nope").is_err());
}
