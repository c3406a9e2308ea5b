use rateguard_contract::{RawConfig, RawPolicy};

use super::*;

fn raw() -> RawConfig {
    let mut raw = RawConfig::new("http://127.0.0.1:9000");
    raw.store.urls = vec!["redis://:s3cret@127.0.0.1:6379".into()];
    raw.policies.push(RawPolicy::new("default", 5, 1.0));
    raw
}

#[test]
fn changed_keys_name_each_differing_key_of_a_section() {
    let old = raw();
    let mut new = raw();
    assert!(changed_keys("server", &old.server, &new.server).is_empty());
    new.server.listen = "127.0.0.1:8081".into();
    new.server.replica_id = Some("gw-2".into());
    new.store.urls.push("redis://127.0.0.1:6380".into());
    assert_eq!(
        changed_keys("server", &old.server, &new.server),
        ["server.listen", "server.replica_id"]
    );
    assert_eq!(
        changed_keys("store", &old.store, &new.store),
        ["store.urls"]
    );
}

#[test]
fn the_active_config_hides_passwords_and_hashes_what_replicas_share() {
    let a = ActiveConfig::new(&raw());
    let json = a.to_json();
    assert_eq!(json["hash"], a.hash());
    assert_eq!(a.hash().len(), 64);
    assert_eq!(
        json["config"]["store"]["urls"][0],
        "redis://:***@127.0.0.1:6379"
    );
    assert!(!json.to_string().contains("s3cret"));
    assert_eq!(json["config"]["policies"][0]["capacity"], 5);
    // Another replica of the same file: same hash.
    let mut other = raw();
    other.server.replica_id = Some("gw-2".into());
    other.server.listen = "127.0.0.1:18080".into();
    other.server.admin_listen = "127.0.0.1:19090".into();
    assert_eq!(ActiveConfig::new(&other).hash(), a.hash());
    // A changed limit: another hash.
    let mut changed = raw();
    changed.policies[0].capacity = Some(10);
    assert_ne!(ActiveConfig::new(&changed).hash(), a.hash());
}
