use super::*;
use crate::config::LimitConfig;

fn quota(capacity: u64) -> Quota {
    Quota::new(capacity, 1.0).unwrap()
}

fn policy(name: &str, prefix: Option<&str>, methods: Option<&[&str]>) -> PolicyConfig {
    PolicyConfig {
        path_prefix: prefix.map(str::to_owned),
        methods: methods.map(|m| m.iter().map(|m| m.parse().unwrap()).collect()),
        ..PolicyConfig::single(name, quota(10))
    }
}

fn table(specs: &[(&str, Option<&str>)]) -> PolicyTable {
    let configs: Vec<PolicyConfig> = specs
        .iter()
        .map(|(name, prefix)| policy(name, *prefix, None))
        .collect();
    PolicyTable::new(&configs, &Metrics::new())
}

fn pick<'a>(t: &'a PolicyTable, path: &str) -> Option<&'a str> {
    t.select(path, &Method::GET).map(Policy::name)
}

fn pick_for<'a>(t: &'a PolicyTable, method: &str, path: &str) -> Option<&'a str> {
    t.select(path, &method.parse().unwrap()).map(Policy::name)
}

#[test]
fn longest_prefix_wins_and_default_takes_the_rest() {
    let t = table(&[
        ("default", None),
        ("api", Some("/api")),
        ("data", Some("/api/data")),
        ("tree", Some("/static/")),
    ]);
    assert_eq!(pick(&t, "/api/data"), Some("data"));
    assert_eq!(pick(&t, "/api/data/7"), Some("data"));
    assert_eq!(pick(&t, "/api/database"), Some("api"));
    assert_eq!(pick(&t, "/api"), Some("api"));
    assert_eq!(pick(&t, "/api/users"), Some("api"));
    assert_eq!(pick(&t, "/apix"), Some("default"));
    assert_eq!(pick(&t, "/static/a.css"), Some("tree"));
    assert_eq!(pick(&t, "/static"), Some("default"));
    assert_eq!(pick(&t, "/"), Some("default"));
}

#[test]
fn iter_lists_every_policy_in_matching_order() {
    let t = table(&[("d", None), ("a", Some("/a")), ("data", Some("/a/b"))]);
    let names: Vec<&str> = t.iter().map(Policy::name).collect();
    assert_eq!(names, ["data", "a", "d"]);
}

#[test]
fn without_a_default_unmatched_paths_have_no_policy() {
    let t = table(&[("data", Some("/api/data"))]);
    assert_eq!(pick(&t, "/api/data/1"), Some("data"));
    assert_eq!(pick(&t, "/other"), None);
}

#[test]
fn file_order_does_not_matter() {
    let t = table(&[("data", Some("/a/b")), ("a", Some("/a")), ("d", None)]);
    assert_eq!(pick(&t, "/a/b/c"), Some("data"));
    let t = table(&[("d", None), ("a", Some("/a")), ("data", Some("/a/b"))]);
    assert_eq!(pick(&t, "/a/b/c"), Some("data"));
}

#[test]
fn a_method_list_beats_none_on_the_same_prefix_and_never_a_longer_prefix() {
    for configs in [
        vec![
            policy("login-any", Some("/api/login"), None),
            policy("login-post", Some("/api/login"), Some(&["POST", "PUT"])),
            policy("login-get", Some("/api/login"), Some(&["GET"])),
            policy("api-post", Some("/api"), Some(&["POST"])),
            policy("default", None, None),
            policy("default-delete", None, Some(&["DELETE"])),
        ],
        // File order does not matter either.
        vec![
            policy("default-delete", None, Some(&["DELETE"])),
            policy("default", None, None),
            policy("api-post", Some("/api"), Some(&["POST"])),
            policy("login-get", Some("/api/login"), Some(&["GET"])),
            policy("login-post", Some("/api/login"), Some(&["POST", "PUT"])),
            policy("login-any", Some("/api/login"), None),
        ],
    ] {
        let t = PolicyTable::new(&configs, &Metrics::new());
        assert_eq!(pick_for(&t, "POST", "/api/login"), Some("login-post"));
        assert_eq!(pick_for(&t, "PUT", "/api/login/x"), Some("login-post"));
        assert_eq!(pick_for(&t, "GET", "/api/login"), Some("login-get"));
        assert_eq!(pick_for(&t, "HEAD", "/api/login"), Some("login-any"));
        assert_eq!(pick_for(&t, "DELETE", "/api/login"), Some("login-any"));
        assert_eq!(pick_for(&t, "POST", "/api/users"), Some("api-post"));
        assert_eq!(pick_for(&t, "GET", "/api/users"), Some("default"));
        assert_eq!(pick_for(&t, "DELETE", "/api/users"), Some("default-delete"));
        assert_eq!(pick_for(&t, "PATCH", "/"), Some("default"));
    }
}

#[test]
fn a_policy_with_only_a_method_list_leaves_other_methods_unlimited() {
    let t = PolicyTable::new(&[policy("writes", None, Some(&["POST"]))], &Metrics::new());
    assert_eq!(pick_for(&t, "POST", "/x"), Some("writes"));
    assert_eq!(pick_for(&t, "GET", "/x"), None);
}

fn layered() -> PolicyConfig {
    PolicyConfig {
        cost: 2,
        shadow: true,
        limits: vec![
            LimitConfig {
                name: "per-client".into(),
                key: LimitKey::Client,
                quota: Quota::new(5, 0.1).unwrap(),
            },
            LimitConfig {
                name: "per-ip".into(),
                key: LimitKey::Ip,
                quota: Quota::new(20, 1.0).unwrap(),
            },
        ],
        ..policy("login", Some("/api/login"), Some(&["POST"]))
    }
}

#[test]
fn a_layered_policy_names_each_limit_after_the_policy() {
    let metrics = Metrics::new();
    let p = Policy::new(&layered(), &metrics);
    assert_eq!(p.name(), "login");
    assert_eq!(p.prefix(), Some("/api/login"));
    assert_eq!(p.methods(), Some(&[Method::POST][..]));
    assert_eq!(p.cost(), 2);
    assert!(p.shadow());
    let limits: Vec<(&str, &str, &LimitKey, u32)> = p
        .limits()
        .iter()
        .map(|l| (l.name(), l.label(), l.key(), l.quota().capacity()))
        .collect();
    assert_eq!(
        limits,
        [
            ("per-client", "login.per-client", &LimitKey::Client, 5),
            ("per-ip", "login.per-ip", &LimitKey::Ip, 20),
        ]
    );
    assert_eq!(
        p.policy_header(),
        "\"login.per-client\";q=5;w=50, \"login.per-ip\";q=20;w=20"
    );
    // Each limit holds its own counters, resolved at start-up.
    p.tier(None).limit_counters(1).denied.inc();
    p.tier(None).counters.failed_open.inc();
    crate::metrics::assert_exports(
        &metrics.encode(),
        &[
            "rateguard_decisions_total{policy=\"login\",limit=\"per-ip\",decision=\"denied\"} 1",
            "rateguard_decisions_total{policy=\"login\",limit=\"per-client\",decision=\"denied\"} 0",
            "rateguard_decisions_total{policy=\"login\",limit=\"\",decision=\"failed_open\"} 1",
        ],
    );
}

#[test]
fn a_single_limit_policy_reads_as_before_layered_limits() {
    let p = Policy::new(
        &PolicyConfig::single("data", Quota::new(20, 0.5).unwrap()),
        &Metrics::new(),
    );
    assert_eq!(p.policy_header(), "\"data\";q=20;w=40");
    let [limit] = p.limits() else {
        panic!("one limit")
    };
    assert_eq!(limit.name(), "client");
    assert_eq!(limit.label(), "data");
    assert_eq!(limit.key(), &LimitKey::Client);
    assert_eq!(p.cost(), 1);
    assert_eq!(p.methods(), None);
    assert!(!p.shadow());
}
