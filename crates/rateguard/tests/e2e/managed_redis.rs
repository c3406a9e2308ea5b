//! `rateguard serve` on a managed-style Redis: TLS with a client
//! certificate and an ACL user (exact limit, secrets kept out of `/config`
//! and the log, a wrong password refused at start naming the cause), and
//! Sentinel (the limit follows a killed master to the promoted replica,
//! `on_error` applies during the switch, counts exact across it);
//! `rateguard rls` on the same TLS + ACL Redis (both connect through the
//! runtime's `[store]`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rateguard_testkit::redis::MASTER_NAME;
use rateguard_testkit::{
    ClientCerts, GatewayProcess, RedisServer, RedisTls, SentinelSet, TestCerts,
};

use crate::rls_store::{calls, client, limits, rls};
use crate::support::*;

const PASSWORD: &str = "Ac1-s3cret";
const CAPACITY: u32 = 5;

/// `[store]` for `url` over mutual TLS with `certs`.
fn tls_store(url: &str, certs: &TestCerts) -> String {
    let path = |p: std::path::PathBuf| format!("{:?}", p.display().to_string());
    format!(
        "{}\ntls_ca_file = {}\ntls_cert_file = {}\ntls_key_file = {}",
        redis_store(
            "redis-pipelined",
            &[url.to_owned()],
            "deny",
            EXACT_BUDGET_MS
        ),
        path(certs.ca_file()),
        path(certs.client_cert_file()),
        path(certs.client_key_file()),
    )
}

/// `n` requests from one client, one after the other: (allowed, denied).
async fn requests(gw: &GatewayProcess, n: usize) -> (usize, usize) {
    let client = client_from("127.0.0.2");
    let (mut allowed, mut denied) = (0, 0);
    for _ in 0..n {
        match get(&client, &format!("{}/x", gw.url()), &[])
            .await
            .status
            .as_u16()
        {
            200 => allowed += 1,
            429 => denied += 1,
            other => panic!("status {other}: {}", gw.log()),
        }
    }
    (allowed, denied)
}

/// A redis-server that requires client certificates from `certs`, with an
/// ACL user `app` (`+@all`), and the `rediss://` URL that logs in as it.
async fn tls_redis_with_an_acl_user(certs: &TestCerts) -> (RedisServer, String) {
    let redis = RedisServer::start_tls(&RedisTls::new(certs, ClientCerts::Required)).unwrap();
    let password = format!(">{PASSWORD}");
    let setuser = [
        "ACL", "SETUSER", "app", "on", &password, "~*", "&*", "+@all",
    ];
    redis.cli(&setuser).await.unwrap();
    let tls_port = redis.tls_port().unwrap();
    let url = format!("rediss://app:{PASSWORD}@127.0.0.1:{tls_port}");
    (redis, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_and_an_acl_user() {
    let certs = TestCerts::generate().unwrap();
    let (redis, url) = tls_redis_with_an_acl_user(&certs).await;
    let tls_port = redis.tls_port().unwrap();
    let backend = rateguard_testkit::MockBackend::start(binary(), "b1").unwrap();
    let text = config(backend.addr(), &tls_store(&url, &certs), CAPACITY);
    let gw = GatewayProcess::start(binary(), &text).expect("serve over TLS as app");

    assert_eq!(requests(&gw, 8).await, (5, 3), "exactly the capacity");
    let clients = redis.cli(&["CLIENT", "LIST"]).await.unwrap();
    assert!(clients.contains("user=app"), "{clients}");
    let (status, body) = gw.admin_get("/config").await.unwrap();
    assert_eq!(status, 200);
    let shown = format!("rediss://app:***@127.0.0.1:{tls_port}");
    assert!(body.contains(&shown), "{body}");
    assert!(
        body.contains("tls_ca_file") && body.contains("client.key"),
        "{body}"
    );
    assert!(
        !body.contains(PASSWORD),
        "/config shows the password: {body}"
    );
    assert!(!gw.log().contains(PASSWORD), "the log shows the password");

    // A wrong password: the replica refuses to start, saying why.
    let wrong = url.replace(PASSWORD, "wrong-pw");
    let text = config(backend.addr(), &tls_store(&wrong, &certs), CAPACITY);
    let err = GatewayProcess::start(binary(), &text)
        .expect_err("a wrong password")
        .to_string();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(err.contains("rediss://app:***@127.0.0.1"), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_the_limit_follows_a_killed_master() {
    let mut set = SentinelSet::start().unwrap();
    let store = format!(
        "{}\nsentinel_master = {MASTER_NAME:?}",
        redis_store("redis-lua", &set.sentinel_urls(), "deny", FAILURE_BUDGET_MS)
    );
    let backend = rateguard_testkit::MockBackend::start(binary(), "b1").unwrap();
    let gw = GatewayProcess::start(binary(), &config(backend.addr(), &store, 10)).unwrap();
    assert_eq!(requests(&gw, 4).await, (4, 0));

    set.wait_replicated(Duration::from_secs(10)).await.unwrap();
    set.kill_master().await.unwrap();
    let killed = Instant::now();
    // During the switch the store fails and on_error = "deny" answers 503;
    // then the promoted replica decides, with the 4 spends it replicated.
    let client = client_from("127.0.0.2");
    let url = format!("{}/x", gw.url());
    let mut unavailable = 0;
    let switched = loop {
        match get(&client, &url, &[]).await.status.as_u16() {
            200 => break killed.elapsed(),
            503 => unavailable += 1,
            other => panic!("status {other} during the switch: {}", gw.log()),
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(unavailable > 0, "the switch is not free: on_error applied");
    assert_eq!(requests(&gw, 8).await, (5, 3), "exactly 10 in all");
    assert!(
        gw.log().contains("Sentinel: the master moved"),
        "{}",
        gw.log()
    );
    eprintln!("enforcing on the promoted replica {switched:?} after the kill ({unavailable} × 503 meanwhile)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_over_tls_with_a_client_certificate_and_an_acl_user() {
    let certs = TestCerts::generate().unwrap();
    let (redis, url) = tls_redis_with_an_acl_user(&certs).await;
    let (_dir, service) = rls(&tls_store(&url, &certs), &limits(3));
    let mut client = client(&service).await;

    let codes = calls(&mut client, "alice", 5).await;
    assert_eq!(codes, BTreeMap::from([("ok", 3), ("over", 2)]), "exactly 3");
    let clients = redis.cli(&["CLIENT", "LIST"]).await.unwrap();
    assert!(clients.contains("user=app"), "{clients}");
    let (status, body) = service.admin_get("/config").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("rediss://app:***@127.0.0.1"), "{body}");
    assert!(
        !body.contains(PASSWORD),
        "/config shows the password: {body}"
    );
    assert!(
        !service.log().contains(PASSWORD),
        "the log shows the password"
    );
}
