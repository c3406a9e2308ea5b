use super::*;
use std::time::Duration;

mod layered;
mod plans;

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"
replica_id = "gw-1"

[upstream]
url = "http://127.0.0.1:9000"
timeout_ms = 10000

[store]
kind = "redis-lua"
urls = ["redis://127.0.0.1:6379"]
timeout_ms = 50
on_error = "allow"

[identity]
api_key_header = "x-api-key"
trusted_proxies = ["127.0.0.1/32"]

[[policies]]
name = "default"
capacity = 100
refill_per_sec = 50.0

[[policies]]
name = "data"
path_prefix = "/api/data"
capacity = 20
refill_per_sec = 0.5
"#;

fn errors(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_documented_example_is_valid() {
    let c = load_str(GOOD).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.server.replica_id, "gw-1");
    assert_eq!(c.upstream.authority.as_str(), "127.0.0.1:9000");
    assert_eq!(c.store.kind, StoreKind::RedisLua);
    assert_eq!(c.store.on_error, OnError::Allow);
    assert_eq!(c.store.timeout, std::time::Duration::from_millis(50));
    assert_eq!(c.policies.len(), 2);
    assert_eq!(c.policies[1].limits.len(), 1);
    assert_eq!(c.policies[1].limits[0].name, "client");
    assert_eq!(c.policies[1].limits[0].key, LimitKey::Client);
    assert_eq!(c.policies[1].limits[0].quota.fill_time_us(), 40_000_000);
    assert_eq!(c.policies[1].cost, 1);
    assert_eq!(c.policies[1].methods, None);
    assert_eq!(c.store.deny_cache, Some(100_000), "on by default");
    assert!(c.identity.known_api_keys.is_none());
}

#[test]
fn minimal_file_takes_defaults() {
    let c = load_str(
        "[upstream]\nurl = \"http://127.0.0.1:9000/base/\"\n[[policies]]\nname = \"d\"\ncapacity = 1\nrefill_per_sec = 1.0\n",
    )
    .unwrap();
    assert_eq!(c.store.kind, StoreKind::Memory);
    assert_eq!(c.upstream.base_path, "/base");
    assert!(!c.server.replica_id.is_empty());
    assert_eq!(c.identity.api_key_header.as_str(), "x-api-key");
}

#[test]
fn bad_values_name_key_and_value() {
    let text = GOOD
        .replace("capacity = 20", "capacity = -5")
        .replace("\"redis-lua\"", "\"redis-luaa\"")
        .replace("on_error = \"allow\"", "on_error = \"maybe\"")
        .replace("\"127.0.0.1/32\"", "\"10.0.0.300/8\"");
    assert_eq!(
        errors(&text),
        [
            "store.kind: unknown kind \"redis-luaa\", expected one of memory, redis-lua, redis-pipelined, fred-cluster, redis-leased",
            "store.on_error: unknown value \"maybe\", expected one of allow, deny, local",
            "identity.trusted_proxies[0]: not a CIDR or IP address (e.g. 10.0.0.0/8), got \"10.0.0.300/8\"",
            "policies[1].capacity: must be > 0, got -5",
        ]
    );
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let text = GOOD.replace("replica_id", "replica_idd");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("server.replica_idd: unknown key `replica_idd`"),
        "{errs:?}"
    );
    let text = GOOD.replace("refill_per_sec = 0.5", "refill_per_sec = 0.5\nburst = 3");
    let errs = errors(&text);
    assert!(
        errs[0].starts_with("policies[1].burst: unknown key `burst`"),
        "{errs:?}"
    );
}

#[test]
fn reading_goes_on_past_bad_keys_and_reports_each() {
    let text = GOOD
        .replace("replica_id", "replica_idd")
        .replace("\"redis-lua\"", "5")
        .replace("capacity = 20", "capacity = 20\nburst = 3");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("policies[1].burst: unknown key"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("server.replica_idd: unknown key"),
        "{errs:?}"
    );
    assert!(
        errs[2].starts_with("store.kind: invalid type: integer `5`, expected one of memory"),
        "{errs:?}"
    );
    // A required key with a bad value is reported once, not also as missing.
    let errs = errors(&GOOD.replace("capacity = 20", "capacity = \"lots\""));
    assert_eq!(
        errs,
        ["policies[1].capacity: invalid type: string \"lots\", expected an integer"]
    );
}

#[test]
fn overrides_replace_keys_and_split_lists() {
    let mut t = parse_table(GOOD).unwrap();
    apply_override(&mut t, "server.listen", "127.0.0.1:7000").unwrap();
    apply_override(&mut t, "store.timeout_ms", "75").unwrap();
    apply_override(&mut t, "store.urls", "redis://a:1, redis://b:2").unwrap();
    apply_override(&mut t, "identity.trusted_proxies", "[\"10.0.0.0/8\"]").unwrap();
    let c = validate(&from_table(t).unwrap()).unwrap();
    assert_eq!(c.server.listen.port(), 7000);
    assert_eq!(c.store.timeout.as_millis(), 75);
    assert_eq!(c.store.urls, ["redis://a:1", "redis://b:2"]);
    assert_eq!(c.identity.trusted_proxies[0].to_string(), "10.0.0.0/8");
    let mut t = parse_table(GOOD).unwrap();
    apply_override(&mut t, "server.lisen", "x").unwrap();
    let err = from_table(t).unwrap_err().to_string();
    assert!(err.starts_with("server.lisen: unknown key"), "{err}");
}

#[test]
fn runtime_mode_is_checked() {
    let c = load_str(GOOD).unwrap();
    assert_eq!(c.server.runtime, RuntimeMode::PerCore);
    assert_eq!(c.server.threads, 0);
    let text = GOOD.replace(
        "replica_id = \"gw-1\"",
        "replica_id = \"gw-1\"\nruntime = \"multi-thread\"\nthreads = 3",
    );
    let c = load_str(&text).unwrap();
    assert_eq!(
        (c.server.runtime, c.server.threads),
        (RuntimeMode::MultiThread, 3)
    );
    let text = GOOD.replace(
        "replica_id = \"gw-1\"",
        "replica_id = \"gw-1\"\nruntime = \"fast\"\nthreads = -1",
    );
    assert_eq!(
        errors(&text),
        [
            "server.runtime: unknown value \"fast\", expected one of per-core, multi-thread",
            "server.threads: must be between 0 (one per core) and 1024, got -1",
        ]
    );
}

#[test]
fn shadow_is_an_optional_boolean() {
    let c = load_str(GOOD).unwrap();
    assert!(c.policies.iter().all(|p| !p.shadow), "off by default");
    let text = GOOD.replace("capacity = 20", "capacity = 20\nshadow = true");
    let c = load_str(&text).unwrap();
    assert_eq!(
        c.policies.iter().map(|p| p.shadow).collect::<Vec<_>>(),
        [false, true]
    );
    let text = GOOD.replace("capacity = 20", "capacity = 20\nshadow = \"yes\"");
    let err = from_toml(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        "policies[1].shadow: invalid type: string \"yes\", expected a boolean"
    );
}

#[test]
fn breaker_max_cooldown_defaults_to_a_quarter_second_and_must_be_positive() {
    let c = load_str(GOOD).unwrap();
    assert_eq!(c.store.breaker_max_cooldown, Duration::from_millis(250));
    let text = GOOD.replace(
        "on_error = \"allow\"",
        "on_error = \"allow\"\nbreaker_max_cooldown_ms = 600",
    );
    let c = load_str(&text).unwrap();
    assert_eq!(c.store.breaker_max_cooldown, Duration::from_millis(600));
    let text = GOOD.replace(
        "on_error = \"allow\"",
        "on_error = \"allow\"\nbreaker_max_cooldown_ms = 0",
    );
    assert_eq!(
        errors(&text),
        ["store.breaker_max_cooldown_ms: must be > 0, got 0"]
    );
}

#[test]
fn override_sections_and_env_keys_follow_the_raw_structs() {
    let mut sections: Vec<&str> = override_sections().collect();
    sections.sort_unstable();
    assert_eq!(sections, ["identity", "rls", "server", "store", "upstream"]);
    assert_eq!(
        env_key("RATEGUARD_STORE_TIMEOUT_MS").as_deref(),
        Some("store.timeout_ms")
    );
    assert_eq!(
        env_key("RATEGUARD_RLS_LIMITS").as_deref(),
        Some("rls.limits")
    );
    for other in [
        "RATEGUARD_CONFIG",
        "RATEGUARD_POLICIES_X",
        "RATEGUARD_STORE_",
        "HOME",
    ] {
        assert_eq!(env_key(other), None, "{other}");
    }
}

#[test]
fn quota_problems_name_the_field_they_are_about() {
    let errs = |capacity: &str, rate: &str| {
        errors(
            &GOOD
                .replace("capacity = 20", &format!("capacity = {capacity}"))
                .replace("refill_per_sec = 0.5", &format!("refill_per_sec = {rate}")),
        )
    };
    assert_eq!(
        errs("0", "1.0"),
        ["policies[1].capacity: must be > 0, got 0"]
    );
    assert_eq!(
        errs("5000000000", "1.0"),
        ["policies[1].capacity: must be <= 4294967295, got 5000000000"]
    );
    assert_eq!(
        errs("1", "-1.5"),
        ["policies[1].refill_per_sec: must be a finite number > 0, got -1.5"]
    );
    assert_eq!(
        errs("1", "2000000.0"),
        ["policies[1].refill_per_sec: must be <= 1000000 (one token per microsecond), got 2000000"]
    );
    assert_eq!(
        errs("4000000000", "0.0001"),
        ["policies[1]: capacity / refill_per_sec must be at most 366 days, got 4000000000 / 0.0001"]
    );
    assert_eq!(
        errors(&GOOD.replace("name = \"data\"", "name = \"da ta\"")),
        ["policies[1].name: must be 1-64 characters of A-Z a-z 0-9 _ . -, got \"da ta\""]
    );
}
