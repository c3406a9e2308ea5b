use rateguard_loadtests::Params;

use super::*;

#[test]
fn the_generated_config_is_the_contracts_schema() {
    let mut config = generated(50, &Params::default().policies(), OnError::Allow);
    let urls = ["redis://127.0.0.1:6379".to_owned()];
    place(
        &mut config,
        StoreKind::RedisLua,
        &urls,
        "http://127.0.0.1:9000",
    );
    let text = for_replica(&config, "gw-1");
    let back: RawConfig = toml::from_str(&text).unwrap();
    assert_eq!(back.server.replica_id.as_deref(), Some("gw-1"));
    assert_eq!(back.server.listen, "127.0.0.1:0");
    assert_eq!(back.upstream.url, "http://127.0.0.1:9000");
    assert_eq!(back.store.kind, StoreKind::RedisLua);
    assert_eq!(back.store.urls, urls);
    assert_eq!(back.store.on_error, OnError::Allow);
    assert_eq!(back.store.timeout_ms, 50);
    assert_eq!(back.identity.trusted_proxies, ["127.0.0.1/32"]);
    // default + one per scenario.
    assert_eq!(
        back.policies.len(),
        1 + rateguard_lab_model::ScenarioId::ALL.len()
    );
    assert_eq!(back.policies[0].path_prefix, None);
    assert_eq!(back.policies[1].path_prefix.as_deref(), Some("/burst"));
    assert_eq!(back.policies[1].capacity, Some(50));
    let text: toml::Table = text.parse().unwrap();
    assert_eq!(
        text["store"]["kind"].as_str(),
        Some(StoreKind::RedisLua.as_str())
    );
}

#[test]
fn the_none_reference_matches_no_lab_path() {
    let mut config = generated(50, &Params::default().policies(), OnError::Allow);
    match_nothing(&mut config);
    assert_eq!(config.policies.len(), 1);
    let prefix = config.policies[0].path_prefix.clone().unwrap();
    for id in rateguard_lab_model::ScenarioId::ALL {
        assert!(!id.path_prefix().starts_with(&prefix), "{id}");
    }
}

#[test]
fn a_users_file_keeps_its_policies_and_the_lab_places_the_store() {
    let base = "[server]\nreplica_id = \"mine\"\n[store]\nkind = \"memory\"\ntimeout_ms = 7\n\
        [[policies]]\nname = \"default\"\ncapacity = 5\nrefill_per_sec = 1\n";
    let mut config = parse_user(base).unwrap();
    let urls = ["redis://127.0.0.1:1".to_owned()];
    place(
        &mut config,
        StoreKind::RedisLua,
        &urls,
        "http://127.0.0.1:2",
    );
    let back: RawConfig = toml::from_str(&for_replica(&config, "gw-2")).unwrap();
    assert_eq!(back.server.replica_id.as_deref(), Some("gw-2"));
    assert_eq!(back.upstream.url, "http://127.0.0.1:2");
    assert_eq!(back.store.kind, StoreKind::RedisLua);
    assert_eq!(back.store.timeout_ms, 7);
    assert_eq!(back.store.urls, ["redis://127.0.0.1:1"]);
    assert_eq!(back.store.on_error, OnError::Allow, "the default");
    assert_eq!(back.policies, [RawPolicy::new("default", 5, 1.0)]);
}

#[test]
fn a_bad_users_file_is_an_error_naming_what_is_wrong() {
    let overlay = parse_user;
    let err = overlay("server = 1").unwrap_err().to_string();
    assert!(err.contains("server"), "{err}");
    let typo = "[[policies]]\nname = \"d\"\ncapcity = 5\nrefill_per_sec = 1\n";
    let err = overlay(typo).unwrap_err().to_string();
    assert!(err.contains("unknown field `capcity`"), "{err}");
    let missing = "[[policies]]\ncapacity = 5\nrefill_per_sec = 1\n";
    let err = overlay(missing).unwrap_err().to_string();
    assert!(err.contains("missing field `name`"), "{err}");
}
