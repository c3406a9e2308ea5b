//! `rateguard check-config`: one fixture per mistake, each with its exact
//! message (the key, the offending value, what was expected).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check-config")
        .join(format!("{name}.toml"))
}

/// Runs `rateguard check-config` on a fixture with a clean environment (no
/// `RATEGUARD_*` overrides, no `.env`): (exit code, stdout, stderr).
fn check(name: &str) -> (i32, String, String) {
    check_with(name, None, &[])
}

/// Like [`check`], but in `cwd` (default: the fixtures' directory, which has
/// no `.env`) and with only the variables `env` set.
fn check_with(name: &str, cwd: Option<&Path>, env: &[(&str, &str)]) -> (i32, String, String) {
    let path = fixture(name);
    let out = Command::new(env!("CARGO_BIN_EXE_rateguard"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(cwd.unwrap_or_else(|| path.parent().unwrap()))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const CASES: &[(&str, &str)] = &[
    ("negative_capacity", "policies[1].capacity: must be > 0, got -5"),
    (
        "unknown_store_kind",
        "store.kind: unknown kind \"redis-luaa\", expected one of memory, redis-lua, redis-pipelined, fred-cluster, redis-leased",
    ),
    (
        "unknown_key",
        "store.timeout_msec: unknown key `timeout_msec`, expected one of `kind`, `urls`, `timeout_ms`, `on_error`, `batch_max`, `batch_wait_us`, `breaker_max_cooldown_ms`, `deny_cache`, `deny_cache_size`, `replicas_hint`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `tls_insecure_skip_verify`, `sentinel_master`, `lease_period_ms`, `lease_hot_rate`, `lease_keys`",
    ),
    (
        "bad_on_error",
        "store.on_error: unknown value \"fail-open\", expected one of allow, deny, local",
    ),
    (
        "bad_trusted_proxy",
        "identity.trusted_proxies[0]: not a CIDR or IP address (e.g. 10.0.0.0/8), got \"127.0.0.1/33\"",
    ),
    (
        "bad_listen",
        "server.listen: not an IP socket address (e.g. 127.0.0.1:8080), got \"localhost:8080\"",
    ),
    (
        "redis_without_urls",
        "store.urls: must list at least one redis:// URL for kind \"redis-lua\"",
    ),
    (
        "relative_path_prefix",
        "policies[1].path_prefix: must start with '/', got \"api/data\"",
    ),
    (
        "two_default_policies",
        "policies[1].path_prefix: missing; only one policy may be the default (without path_prefix) for the same methods",
    ),
    (
        "unknown_key_kind",
        "policies[1].limits[1].key: unknown key kind \"ipp\", expected one of client, ip, api_key, header:<name>, global",
    ),
    (
        "capacity_and_limits",
        "policies[1].capacity: cannot be combined with [[policies.limits]]; give it as a limit (key = \"client\")",
    ),
    (
        "no_limit",
        "policies[1]: no limit: give capacity and refill_per_sec, or one or more [[policies.limits]]",
    ),
    (
        "duplicate_limit_name",
        "policies[1].limits[1].name: duplicate limit name \"per-client\", also limits[0]",
    ),
    (
        "cost_zero",
        "policies[1].cost: must be between 1 and 4294967295, got 0",
    ),
    (
        "cost_above_capacity",
        "policies[1].cost: 8 is more than the capacity of limits[0] (\"per-client\"), 5: no request could ever be allowed",
    ),
    (
        "lowercase_method",
        "policies[1].methods[0]: expected an uppercase HTTP method (e.g. GET, POST), got \"post\"",
    ),
    (
        "overlapping_methods",
        "policies[2].methods: method \"PUT\" is also in policies[1].methods for the same path_prefix \"/api/login\": both would match the same requests",
    ),
    (
        "bad_header_key",
        "policies[1].limits[1].key: not a valid header name in \"header:x tenant\"",
    ),
    (
        "missing_api_keys_file",
        "identity.api_keys_file: cannot read \"no-such-keys.txt\": No such file or directory (os error 2)",
    ),
    (
        "plan_unknown_limit",
        "plans[0].limits[0].limit: no policy has a limit named \"per-client\" (a single-limit policy's is \"client\")",
    ),
    (
        "plan_unlimited_with_quota",
        "plans[0].limits[0].capacity: cannot be combined with unlimited = true",
    ),
    (
        "bad_lease",
        "store.lease_period_ms: must be between 1 and 10000 (milliseconds), got 0\n\
         store.lease_hot_rate: must be between 0 (every key leases) and 4294967295 requests per second, got -1\n\
         store.lease_keys: must be > 0, got 0",
    ),
    (
        "deny_cache_size_zero",
        "store.deny_cache_size: must be > 0, got 0",
    ),
    ("missing_upstream", "upstream.url: required key is missing"),
    (
        "tls_key_without_cert",
        "store.tls_cert_file: required with store.tls_key_file",
    ),
    (
        "missing_tls_ca_file",
        "store.tls_ca_file: cannot read \"no-such-ca.pem\": No such file or directory (os error 2)",
    ),
    (
        "sentinel_with_fred_cluster",
        "store.sentinel_master: only for kinds redis-lua and redis-pipelined, not \"fred-cluster\" (a Redis Cluster has no sentinels)",
    ),
    (
        "tls_without_rediss",
        "store.tls_insecure_skip_verify: set, but no store.urls entry is rediss:// (TLS is off); use rediss:// URLs",
    ),
    (
        "store_url_not_redis",
        "store.urls[0]: expected a redis:// or rediss:// URL, got \"http://app:***@127.0.0.1:6379\"",
    ),
    (
        "wrong_type",
        "policies[0].capacity: invalid type: string \"lots\", expected an integer",
    ),
    (
        "shadow_not_boolean",
        "policies[0].shadow: invalid type: string \"yes\", expected a boolean",
    ),
    (
        "two_mistakes",
        "upstream.url: expected an http:// URL without query (e.g. http://127.0.0.1:9000), got \"https://127.0.0.1:9000\"\n\
         policies[1].refill_per_sec: must be a finite number > 0, got 0",
    ),
    (
        "toml_syntax",
        "TOML parse error at line 4, column 19\n  |\n4 | replica_id = \"gw-1\n  |                   ^\ninvalid basic string, expected `\"`",
    ),
];

#[test]
fn each_mistake_gets_its_exact_message_and_exit_code_1() {
    for (name, expected) in CASES {
        let (code, stdout, stderr) = check(name);
        assert_eq!(code, 1, "{name}: exit code");
        assert_eq!(stdout, "", "{name}: stdout");
        assert_eq!(stderr, format!("{expected}\n"), "{name}: stderr");
    }
}

#[test]
fn every_fixture_is_covered() {
    let dir = fixture("valid").parent().unwrap().to_owned();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "valid")
        .collect();
    names.sort();
    let mut covered: Vec<String> = CASES.iter().map(|(n, _)| (*n).to_owned()).collect();
    covered.sort();
    assert_eq!(names, covered);
}

#[test]
fn the_documented_example_passes() {
    let (code, stdout, stderr) = check("valid");
    assert_eq!(stderr, "");
    assert_eq!(code, 0);
    assert!(
        stdout.ends_with(
            "valid.toml: ok (store redis-lua, 3 policies, upstream http://127.0.0.1:9000)\n"
        ),
        "{stdout}"
    );
}

#[test]
fn environment_overrides_are_checked_too() {
    let (code, _, stderr) = check_with(
        "valid",
        None,
        &[
            ("RATEGUARD_STORE_TIMEOUT_MS", "0"),
            ("RATEGUARD_SERVER_LISTN", "127.0.0.1:1"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("server.listn: unknown key `listn`"),
        "a typo in a variable name is an error too: {stderr}"
    );
}

#[test]
fn a_dot_env_file_in_the_working_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "RATEGUARD_STORE_ON_ERROR=maybe\nRATEGUARD_IDENTITY_TRUSTED_PROXIES=\"10.0.0.0/8, bogus\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check_with("valid", Some(dir.path()), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "store.on_error: unknown value \"maybe\", expected one of allow, deny, local\n\
         identity.trusted_proxies[1]: not a CIDR or IP address (e.g. 10.0.0.0/8), got \"bogus\"\n"
    );
}

#[test]
fn a_malformed_dot_env_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "RATEGUARD_STORE_KIND=redis lua\n").unwrap();
    let (code, _, stderr) = check_with("valid", Some(dir.path()), &[]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: cannot read .env: "), "{stderr}");
}

#[test]
fn a_policy_keyed_only_by_client_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rateguard.toml");
    std::fs::write(
        &path,
        "[upstream]\nurl = \"http://127.0.0.1:9000\"\n\n[[policies]]\nname = \"data\"\ncapacity = 20\nrefill_per_sec = 0.5\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rateguard"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr,
        "warning: policy data: a client can mint buckets by inventing API keys; add a limit keyed by ip, or identity.api_keys_file\n"
    );
    assert!(
        stdout.ends_with("ok (store memory, 1 policies, upstream http://127.0.0.1:9000)\n"),
        "{stdout}"
    );
}
