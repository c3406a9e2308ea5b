//! `[[plans]]` and plans in `identity.api_keys_file`: what is valid, and
//! the exact message for each mistake.

use super::*;

const HEAD: &str = "[upstream]\nurl = \"http://127.0.0.1:9000\"\n";

/// A single-limit `data` policy (cost 2) and a layered `login` one.
const POLICIES: &str = r#"
[[policies]]
name = "data"
path_prefix = "/api/data"
cost = 2
capacity = 3
refill_per_sec = 1.0

[[policies]]
name = "login"
  [[policies.limits]]
  name = "client"
  key = "client"
  capacity = 5
  refill_per_sec = 0.1
  [[policies.limits]]
  name = "per-ip"
  key = "ip"
  capacity = 20
  refill_per_sec = 1.0
"#;

fn with_plans(plans: &str) -> String {
    format!("{HEAD}{POLICIES}{plans}")
}

#[test]
fn the_issue_example_is_valid_and_policy_specific_entries_win() {
    let c = load_str(&with_plans(
        r#"
[[plans]]
name = "free"

[[plans]]
name = "pro"
  [[plans.limits]]
  limit = "client"
  capacity = 1000
  refill_per_sec = 100.0
  [[plans.limits]]
  limit = "client"
  policy = "data"
  capacity = 10
  refill_per_sec = 5.0
  [[plans.limits]]
  limit = "per-ip"
  unlimited = true
"#,
    ))
    .unwrap();
    assert_eq!(c.plans.len(), 2);
    assert!(c.plans[0].limits.is_empty(), "a plan may only label keys");
    let pro = &c.plans[1];
    let q = |p, l| pro.quota_for(p, l).map(|q| q.map(|q| q.capacity()));
    assert_eq!(q("data", "client"), Some(Some(10)));
    assert_eq!(q("login", "client"), Some(Some(1000)));
    assert_eq!(q("login", "per-ip"), Some(None), "unlimited");
    assert_eq!(q("login", "other"), None, "not named: the policy's own");
    assert_eq!(c.plans[0].quota_for("data", "client"), None);
}

#[test]
fn each_plan_mistake_names_its_key_and_value() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[plans]]\nname = \"bad name\"\n",
            &["plans[0].name: must be 1-64 characters of A-Z a-z 0-9 _ . -, got \"bad name\""],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans]]\nname = \"pro\"\n",
            &["plans[1].name: duplicate plan name \"pro\", also plans[0]"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"nope\"\ncapacity = 5\nrefill_per_sec = 1.0\n",
            &["plans[0].limits[0].limit: no policy has a limit named \"nope\" (a single-limit policy's is \"client\")"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\npolicy = \"nope\"\ncapacity = 5\nrefill_per_sec = 1.0\n",
            &["plans[0].limits[0].policy: no policy named \"nope\" (policies: [\"data\", \"login\"])"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"per-ip\"\npolicy = \"data\"\ncapacity = 5\nrefill_per_sec = 1.0\n",
            &["plans[0].limits[0].limit: policy \"data\" has no limit named \"per-ip\" (its limits: [\"client\"])"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\ncapacity = 0\nrefill_per_sec = 1.0\n",
            &["plans[0].limits[0].capacity: must be > 0, got 0"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\ncapacity = 5\nrefill_per_sec = -1.0\n",
            &["plans[0].limits[0].refill_per_sec: must be a finite number > 0, got -1"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\ncapacity = 5\n",
            &["plans[0].limits[0].refill_per_sec: required key is missing (or set unlimited = true)"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\nunlimited = true\ncapacity = 5\n",
            &["plans[0].limits[0].capacity: cannot be combined with unlimited = true"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\ncapacity = 1\nrefill_per_sec = 1.0\n",
            &["plans[0].limits[0].capacity: 1 is less than the cost of policies[0] (\"data\"), 2: no request of the plan could ever be allowed"],
        ),
        (
            "[[plans]]\nname = \"pro\"\n[[plans.limits]]\nlimit = \"client\"\nunlimited = true\n[[plans.limits]]\nlimit = \"client\"\nunlimited = true\n",
            &["plans[0].limits[1].limit: duplicate entry for limit \"client\" in every policy, also limits[0]"],
        ),
    ];
    for (plans, expected) in cases {
        assert_eq!(errors(&with_plans(plans)), *expected, "{plans}");
    }
    let many: String = (0..65)
        .map(|i| format!("[[plans]]\nname = \"p{i}\"\n"))
        .collect();
    assert_eq!(
        errors(&with_plans(&many)),
        ["plans: at most 64 plans, got 65"]
    );
}

#[test]
fn the_api_keys_file_may_put_a_key_on_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let other = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let text = |path: &std::path::Path| {
        format!(
            "{HEAD}[identity]\napi_keys_file = {:?}\n{POLICIES}[[plans]]\nname = \"free\"\n[[plans]]\nname = \"pro\"\n",
            path.to_str().unwrap()
        )
    };
    std::fs::write(&path, format!("{abc} pro\n{other}\n")).unwrap();
    let c = load_str(&text(&path)).unwrap();
    let known = c.identity.known_api_keys.unwrap();
    let digest = |hex_text: &str| {
        let mut d = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut d).unwrap();
        d
    };
    assert_eq!(known[&digest(abc)], Some(1));
    assert_eq!(known[&digest(other)], None);
    std::fs::write(&path, format!("{abc} gold\n{other} pro extra\n")).unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(
        errors(&text(&path)),
        [
            format!("identity.api_keys_file: line 1 of {p:?}: expected `<sha256 hex> [plan]` with a plan of [[plans]] (free, pro), got \"{abc} gold\""),
            format!("identity.api_keys_file: line 2 of {p:?}: expected `<sha256 hex> [plan]` with a plan of [[plans]] (free, pro), got \"{other} pro extra\""),
        ]
    );
}

#[test]
fn keys_in_redis_need_a_standalone_redis_store_and_no_keys_file() {
    let redis = "[store]\nkind = \"redis-lua\"\nurls = [\"redis://127.0.0.1:6379\"]\n";
    let text = format!("{HEAD}{redis}[identity]\nkeys = \"redis\"\n{POLICIES}");
    assert_eq!(
        load_str(&text).unwrap().key_registry,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(load_str(&with_plans("")).unwrap().key_registry, None);
    let memory = format!("{HEAD}[identity]\nkeys = \"redis\"\nkeys_max_stale_ms = 0\n{POLICIES}");
    assert_eq!(
        errors(&memory),
        [
            "identity.keys_max_stale_ms: must be > 0, got 0",
            "identity.keys: \"redis\" keeps the keys in the store's Redis: needs store.kind \"redis-lua\" or \"redis-pipelined\", got \"memory\"",
        ]
    );
    let both = format!(
        "{HEAD}{redis}[identity]\nkeys = \"redis\"\napi_keys_file = \"/dev/null\"\n{POLICIES}"
    );
    assert_eq!(
        errors(&both),
        ["identity.keys: \"redis\" cannot be combined with identity.api_keys_file: choose one source of keys"]
    );
}
