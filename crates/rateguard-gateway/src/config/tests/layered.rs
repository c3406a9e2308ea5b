//! Layered limits, methods, cost, the deny cache and the known API keys:
//! what is valid, and the exact message for each mistake.

use super::*;

const HEAD: &str = "[upstream]\nurl = \"http://127.0.0.1:9000\"\n";

/// Issue 9's example (with the tests' numbers).
const LOGIN: &str = include_str!("../../../tests/fixtures/login.toml");

fn load(policies: &str) -> ValidConfig {
    let text = format!("{HEAD}{policies}");
    load_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn problems(policies: &str) -> Vec<String> {
    errors(&format!("{HEAD}{policies}"))
}

fn single(name: &str, extra: &str) -> String {
    format!("[[policies]]\nname = \"{name}\"\n{extra}capacity = 10\nrefill_per_sec = 1.0\n")
}

#[test]
fn the_issue_example_is_valid_as_written() {
    let c = load(&LOGIN.replace("cost = 1", "cost = 1\nmethods = [\"POST\", \"PUT\"]"));
    let p = &c.policies[0];
    assert_eq!(p.methods, Some(vec![http::Method::POST, http::Method::PUT]));
    assert_eq!(p.cost, 1);
    let limits: Vec<(&str, &LimitKey, u32)> = p
        .limits
        .iter()
        .map(|l| (l.name.as_str(), &l.key, l.quota.capacity()))
        .collect();
    assert_eq!(
        limits,
        [
            ("per-client", &LimitKey::Client, 5),
            ("per-ip", &LimitKey::Ip, 8)
        ]
    );
    assert!(
        p.summary()
            .starts_with("login(/api/login POST,PUT: per-client by client 5/5000s, per-ip by ip 8/8000s; cost 1)"),
        "{}",
        p.summary()
    );
}

#[test]
fn limit_names_default_to_their_key() {
    let c = load(
        "[[policies]]\nname = \"p\"\n\
         [[policies.limits]]\nkey = \"ip\"\ncapacity = 3\nrefill_per_sec = 1.0\n\
         [[policies.limits]]\nkey = \"header:X-Tenant\"\ncapacity = 3\nrefill_per_sec = 1.0\n\
         [[policies.limits]]\nkey = \"global\"\ncapacity = 3\nrefill_per_sec = 1.0\n\
         [[policies.limits]]\nkey = \"api_key\"\ncapacity = 3\nrefill_per_sec = 1.0\n",
    );
    let names: Vec<&str> = c.policies[0]
        .limits
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["ip", "header-x-tenant", "global", "api_key"]);
}

#[test]
fn each_layered_mistake_names_its_key() {
    let limit = |name: &str, key: &str, capacity: i64| {
        format!("[[policies.limits]]\n{name}key = \"{key}\"\ncapacity = {capacity}\nrefill_per_sec = 1.0\n")
    };
    let policy = |extra: &str, limits: &str| format!("[[policies]]\nname = \"p\"\n{extra}{limits}");
    let cases: Vec<(String, &str)> = vec![
        (
            policy("", &(limit("", "client", 5) + &limit("", "ipp", 5))),
            "policies[0].limits[1].key: unknown key kind \"ipp\", expected one of client, ip, api_key, header:<name>, global",
        ),
        (
            policy("capacity = 5\n", &limit("", "ip", 5)),
            "policies[0].capacity: cannot be combined with [[policies.limits]]; give it as a limit (key = \"client\")",
        ),
        (
            policy("", ""),
            "policies[0]: no limit: give capacity and refill_per_sec, or one or more [[policies.limits]]",
        ),
        (
            policy("capacity = 5\n", ""),
            "policies[0].refill_per_sec: required key is missing",
        ),
        (
            policy("refill_per_sec = 5.0\n", ""),
            "policies[0].capacity: required key is missing",
        ),
        (
            policy("", &(limit("name = \"a\"\n", "ip", 5) + &limit("name = \"a\"\n", "client", 5))),
            "policies[0].limits[1].name: duplicate limit name \"a\", also limits[0]",
        ),
        (
            policy("", &(limit("", "ip", 5) + &limit("", "ip", 50))),
            "policies[0].limits[1].name: duplicate limit name \"ip\", also limits[0] (the default for key \"ip\"); give each limit a name",
        ),
        (
            policy("", &limit("name = \"per ip\"\n", "ip", 5)),
            "policies[0].limits[0].name: must be 1-64 characters of A-Z a-z 0-9 _ . -, got \"per ip\"",
        ),
        (
            policy("", &limit("", "header:x y", 5)),
            "policies[0].limits[0].key: not a valid header name in \"header:x y\"",
        ),
        (
            policy("", &limit("", "header:x!", 5)),
            "policies[0].limits[0].name: required: the default \"header-x!\" (after key \"header:x!\") is not 1-64 characters of A-Z a-z 0-9 _ . -",
        ),
        (
            policy("", &limit("", "ip", 0)),
            "policies[0].limits[0].capacity: must be > 0, got 0",
        ),
        (
            policy("", &limit("", "ip", -3)),
            "policies[0].limits[0].capacity: must be > 0, got -3",
        ),
        (
            policy("cost = 0\n", &limit("", "ip", 5)),
            "policies[0].cost: must be between 1 and 4294967295, got 0",
        ),
        (
            policy("cost = 13\n", &(limit("", "client", 20) + &limit("", "ip", 12))),
            "policies[0].cost: 13 is more than the capacity of limits[1] (\"ip\"), 12: no request could ever be allowed",
        ),
        (
            single("p", "cost = 11\n"),
            "policies[0].cost: 11 is more than the capacity, 10: no request could ever be allowed",
        ),
        (
            single("p", "methods = []\n"),
            "policies[0].methods: must list at least one method; leave it out for every method",
        ),
        (
            single("p", "methods = [\"GET\", \"post\"]\n"),
            "policies[0].methods[1]: expected an uppercase HTTP method (e.g. GET, POST), got \"post\"",
        ),
        (
            single("p", "methods = [\"GET\", \"G T\"]\n"),
            "policies[0].methods[1]: expected an uppercase HTTP method (e.g. GET, POST), got \"G T\"",
        ),
        (
            single("p", "methods = [\"GET\", \"GET\"]\n"),
            "policies[0].methods[1]: duplicate method \"GET\"",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(problems(&text), [expected], "{text}");
    }
}

#[test]
fn at_most_sixteen_limits() {
    let limits: String = (0..17)
        .map(|i| format!("[[policies.limits]]\nname = \"l{i}\"\nkey = \"ip\"\ncapacity = 5\nrefill_per_sec = 1.0\n"))
        .collect();
    assert_eq!(
        problems(&format!("[[policies]]\nname = \"p\"\n{limits}")),
        ["policies[0].limits: at most 16 limits per policy, got 17"]
    );
}

#[test]
fn policies_may_share_a_prefix_only_when_no_request_matches_both() {
    let with = |name: &str, prefix: &str, methods: &str| {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("path_prefix = \"{prefix}\"\n")
        };
        let methods = if methods.is_empty() {
            String::new()
        } else {
            format!("methods = [{methods}]\n")
        };
        single(name, &(prefix + &methods))
    };
    // Disjoint lists, and a list beside none: valid.
    let ok = with("a", "/x", "\"POST\"")
        + &with("b", "/x", "\"GET\", \"HEAD\"")
        + &with("c", "/x", "")
        + &with("d", "", "")
        + &with("e", "", "\"DELETE\"");
    assert_eq!(load(&ok).policies.len(), 5);
    assert_eq!(
        problems(&(with("a", "/x", "\"POST\", \"PUT\"") + &with("b", "/x", "\"GET\", \"PUT\""))),
        ["policies[1].methods: method \"PUT\" is also in policies[0].methods for the same path_prefix \"/x\": both would match the same requests"]
    );
    assert_eq!(
        problems(&(with("a", "", "\"POST\"") + &with("b", "", "\"POST\""))),
        ["policies[1].methods: method \"POST\" is also in policies[0].methods for the same default policy (no path_prefix): both would match the same requests"]
    );
    assert_eq!(
        problems(&(with("a", "/x", "") + &with("b", "/x", ""))),
        ["policies[1].path_prefix: duplicate path_prefix \"/x\" for the same methods"]
    );
    assert_eq!(
        problems(&(with("a", "", "") + &with("b", "", "") + &with("c", "", ""))),
        [
            "policies[1].path_prefix: missing; only one policy may be the default (without path_prefix) for the same methods",
            "policies[2].path_prefix: missing; only one policy may be the default (without path_prefix) for the same methods",
        ]
    );
}

#[test]
fn the_deny_cache_can_be_turned_off_and_its_size_must_be_positive() {
    let store = |lines: &str| format!("{HEAD}[store]\n{lines}\n{}", single("p", ""));
    assert_eq!(
        load_str(&store("deny_cache_size = 7"))
            .unwrap()
            .store
            .deny_cache,
        Some(7)
    );
    assert_eq!(
        load_str(&store("deny_cache = false"))
            .unwrap()
            .store
            .deny_cache,
        None
    );
    assert_eq!(
        errors(&store("deny_cache_size = 0")),
        ["store.deny_cache_size: must be > 0, got 0"]
    );
    let mut t = parse_table(&store("")).unwrap();
    apply_override(&mut t, "store.deny_cache", "false").unwrap();
    assert_eq!(
        validate(&from_table(t).unwrap()).unwrap().store.deny_cache,
        None
    );
}

#[test]
fn the_api_keys_file_holds_sha256_digests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    std::fs::write(
        &path,
        format!("# known keys\n{abc}\n\n  {}  \n", abc.to_uppercase()),
    )
    .unwrap();
    let text = |path: &std::path::Path| {
        format!(
            "{HEAD}[identity]\napi_keys_file = {:?}\n{}",
            path.to_str().unwrap(),
            single("p", "")
        )
    };
    let c = load_str(&text(&path)).unwrap();
    let known = c.identity.known_api_keys.unwrap();
    assert_eq!(known.len(), 1);
    assert!(known.contains_key(&[
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad
    ]));
    std::fs::write(&path, format!("{abc}\nsk_live_raw_key\n")).unwrap();
    assert_eq!(
        errors(&text(&path)),
        [format!(
            "identity.api_keys_file: line 2 of {:?}: expected a SHA-256 digest (64 hex digits), got \"sk_live_raw_key\"",
            path.to_str().unwrap()
        )]
    );
    let missing = dir.path().join("nope.txt");
    let errs = errors(&text(&missing));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(&format!(
            "identity.api_keys_file: cannot read {:?}: ",
            missing.to_str().unwrap()
        )),
        "{errs:?}"
    );
}
