use rateguard_testkit::TestCerts;

use super::*;

fn raw(kind: StoreKind, urls: &[&str]) -> RawStore {
    RawStore {
        kind,
        urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        ..RawStore::default()
    }
}

fn issues(raw: &RawStore) -> Vec<String> {
    RedisAccess::from_raw(raw)
        .expect_err("problems")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn path(p: std::path::PathBuf) -> Option<String> {
    Some(p.display().to_string())
}

#[test]
fn tls_and_sentinel_settings_are_read_and_checked() {
    let certs = TestCerts::generate().unwrap();
    let mut store = raw(StoreKind::RedisLua, &["rediss://app:pw@h:6380"]);
    store.tls_ca_file = path(certs.ca_file());
    store.tls_cert_file = path(certs.client_cert_file());
    store.tls_key_file = path(certs.client_key_file());
    let access = RedisAccess::from_raw(&store).unwrap();
    assert!(access.tls.has_client_certificate() && !access.tls.insecure_skip_verify());
    store.tls_insecure_skip_verify = true;
    store.sentinel_master = Some("mymaster".into());
    let access = RedisAccess::from_raw(&store).unwrap();
    assert!(access.tls.insecure_skip_verify());
    assert_eq!(access.sentinel_master.as_deref(), Some("mymaster"));
    // Nothing set: the defaults.
    let plain = raw(
        StoreKind::FredCluster,
        &["redis://h:7000", "redis://h:7001"],
    );
    assert_eq!(
        RedisAccess::from_raw(&plain).unwrap(),
        RedisAccess::default()
    );
}

#[test]
fn each_mistake_names_its_key_and_value_never_a_password() {
    let mut store = raw(StoreKind::Memory, &[]);
    store.tls_ca_file = Some("ca.pem".into());
    store.sentinel_master = Some("m".into());
    assert_eq!(
        issues(&store),
        [
            "store.tls_ca_file: only for the Redis stores, not kind \"memory\"",
            "store.sentinel_master: only for the Redis stores, not kind \"memory\"",
        ]
    );

    let mut store = raw(StoreKind::RedisLua, &["redis://h:6379"]);
    store.tls_insecure_skip_verify = true;
    assert_eq!(
        issues(&store),
        ["store.tls_insecure_skip_verify: set, but no store.urls entry is rediss:// (TLS is off); use rediss:// URLs"]
    );

    let store = raw(
        StoreKind::FredCluster,
        &["rediss://u:secret@h:1", "redis://h:2"],
    );
    assert_eq!(
        issues(&store),
        ["store.urls: mixes 1 redis:// and 1 rediss:// URLs; use rediss:// for all (TLS) or for none"]
    );

    let store = raw(StoreKind::RedisLua, &["redis://u:secret@h:notaport"]);
    let found = issues(&store);
    assert!(
        found[0].starts_with("store.urls[0]: not a valid Redis URL"),
        "{found:?}"
    );
    assert!(found[0].contains("redis://u:***@h:notaport"), "{found:?}");
    assert!(!found[0].contains("secret"), "{found:?}");

    let mut store = raw(StoreKind::FredCluster, &["redis://h:7000"]);
    store.sentinel_master = Some("my master".into());
    assert_eq!(
        issues(&store),
        [
            "store.sentinel_master: only for kinds redis-lua and redis-pipelined, not \"fred-cluster\" (a Redis Cluster has no sentinels)",
            "store.sentinel_master: expected the master's name as the sentinels monitor it (e.g. \"mymaster\"), got \"my master\"",
        ]
    );

    let mut store = raw(StoreKind::RedisPipelined, &["rediss://h:6380"]);
    store.tls_cert_file = Some("/nonexistent/client.pem".into());
    assert_eq!(
        issues(&store),
        ["store.tls_key_file: required with store.tls_cert_file"]
    );
}
