//! Issue 24 §3 against real processes: the admin API's `/buckets`.
//! Three replicas on redis-lua behind nginx with their deny caches on and
//! `[admin] token_file`: 401 without or with a wrong token; `GET` peeks
//! without spending; a key locked out on every replica (each one's deny
//! cache answering) is reset through one replica's admin port and the
//! next request through **each** replica is allowed within 1 s; the reset
//! gives exactly one capacity back. `rateguard bucket show|reset` wraps
//! it; the memory store says its answer is per replica.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisServer};

use crate::support::*;

const TOKEN: &str = "admin-token-for-tests";
/// An API key with characters a query string must encode.
const KEY: &str = "sk_live+a/b=c&d";

/// `[admin]` with a token file in `dir`.
fn admin_section(dir: &std::path::Path) -> String {
    let file = dir.join("admin.token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    format!("\n[admin]\ntoken_file = {:?}\n", file.to_str().unwrap())
}

/// One `/buckets` call to `admin` (query built from `pairs`), with `token`.
async fn buckets(
    admin: SocketAddr,
    method: Method,
    pairs: &[(&str, &str)],
    token: Option<&str>,
) -> Reply {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{admin}/buckets?{}", query.finish()));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = client_from("127.0.0.1")
        .request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("admin call");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

const BUCKET: &[(&str, &str)] = &[("policy", "default"), ("key", KEY)];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_through_one_replica_frees_the_key_on_every_replica_within_a_second() {
    let redis = RedisServer::start().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let store = redis_store("redis-lua", &[redis.url()], "deny", EXACT_BUDGET_MS);
    let policies = format!("{}{}", default_policy(3), admin_section(dir.path()));
    let text = config_text(
        backend.addr(),
        "shutdown_grace_ms = 2000",
        &store,
        &policies,
    );
    let gateways: Vec<GatewayProcess> = (1..=3)
        .map(|i| {
            let id = format!("gw-{i}");
            GatewayProcess::start_with_env(binary(), &text, &[("RATEGUARD_SERVER_REPLICA_ID", &id)])
                .expect("gateway replica")
        })
        .collect();
    let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
    let nginx = Nginx::start(&addrs).expect("nginx");
    let url = format!("{}/hello", nginx.url());
    let admin = gateways[0].admin_addr();

    // No token, a wrong one, another scheme: 401 and nothing else.
    for auth in [None, Some("wrong"), Some("")] {
        let r = buckets(admin, Method::GET, BUCKET, auth).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(
            r.json(),
            serde_json::json!({"error": "unauthorized", "message": "unauthorized"})
        );
    }

    // A peek spends nothing: twice the same, and the key still has 3.
    let first = buckets(admin, Method::GET, BUCKET, Some(TOKEN)).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let body = first.json();
    assert_eq!(body["remaining"], 3);
    assert_eq!(body["capacity"], 3);
    assert_eq!(body["scope"], "shared");
    assert_eq!(body["limit"], "client");
    assert!(body["plan"].is_null());
    assert_eq!(
        buckets(admin, Method::GET, BUCKET, Some(TOKEN))
            .await
            .json(),
        body
    );

    // Locked out: 3 pass, then every replica denies, from its deny cache.
    let (statuses, _) = burst(&url, KEY, 30).await;
    assert_eq!(statuses[&200], 3, "{statuses:?}");
    let client = client_from("127.0.0.2");
    for g in &gateways {
        let direct = format!("http://{}/hello", g.addr());
        for _ in 0..3 {
            assert_eq!(
                get(&client, &direct, &[("x-api-key", KEY)]).await.status,
                429
            );
        }
        assert!(
            metric(g, "rateguard_deny_cache_hits_total{policy=\"default\"}").await > 0.0,
            "{}: its deny cache answers",
            g.addr()
        );
    }
    let empty = buckets(gateways[2].admin_addr(), Method::GET, BUCKET, Some(TOKEN)).await;
    assert_eq!(empty.json()["remaining"], 0);
    assert!(empty.json()["retry_after_ms"].as_u64().unwrap() > 1000);

    // Reset through gw-1's admin port; each replica allows within 1 s.
    let reset = buckets(admin, Method::DELETE, BUCKET, Some(TOKEN)).await;
    let at = Instant::now();
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    assert_eq!(reset.json()["reset"], true);
    assert_eq!(reset.json()["remaining"], 3);
    let mut waited = Vec::new();
    for g in &gateways {
        let direct = format!("http://{}/hello", g.addr());
        loop {
            if get(&client, &direct, &[("x-api-key", KEY)]).await.status == 200 {
                waited.push(at.elapsed());
                break;
            }
            assert!(
                at.elapsed() < Duration::from_secs(1),
                "{} still denies 1 s after the reset",
                g.addr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("allowed again after the reset: {waited:?}");
    // One capacity came back, and the three probes above spent it.
    let (statuses, _) = burst(&url, KEY, 15).await;
    assert_eq!(statuses.get(&200), None, "{statuses:?}");

    // Queries that name no bucket, and the CLI.
    let r = buckets(admin, Method::GET, &[("policy", "nope")], Some(TOKEN)).await;
    assert_eq!(r.status, 404);
    let r = buckets(
        admin,
        Method::GET,
        &[("policy", "default"), ("header", "x")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(r.status, 400);
    let admin_url = format!("http://{admin}");
    let cli = |action: &str| {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.args([
            "bucket",
            action,
            "--admin",
            &admin_url,
            "--policy",
            "default",
            "--key-stdin",
        ])
        .env("RATEGUARD_ADMIN_TOKEN", TOKEN)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        cmd
    };
    for (action, remaining) in [("show", 0), ("reset", 3), ("show", 3)] {
        let mut child = cli(action).spawn().unwrap();
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{KEY}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(body["remaining"], remaining, "{action}: {body}");
    }
    let out = cli("show")
        .env("RATEGUARD_ADMIN_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_off_without_a_token_and_the_memory_store_answers_for_its_replica() {
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let off = GatewayProcess::start(binary(), &config(backend.addr(), "kind = \"memory\"", 3))
        .expect("gateway");
    let r = buckets(off.admin_addr(), Method::GET, BUCKET, Some(TOKEN)).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["message"].as_str().unwrap().contains("token_file"));

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}{}",
        config(backend.addr(), "kind = \"memory\"", 3),
        admin_section(dir.path())
    );
    let gw = GatewayProcess::start(binary(), &text).expect("gateway");
    let client = client_from("127.0.0.2");
    let url = format!("http://{}/hello", gw.addr());
    assert_eq!(get(&client, &url, &[("x-api-key", KEY)]).await.status, 200);
    let r = buckets(gw.admin_addr(), Method::GET, BUCKET, Some(TOKEN)).await;
    assert_eq!(r.json()["scope"], "replica");
    assert_eq!(r.json()["store"], "memory");
    assert_eq!(r.json()["remaining"], 2);
    let r = buckets(gw.admin_addr(), Method::DELETE, BUCKET, Some(TOKEN)).await;
    assert_eq!(r.json()["remaining"], 3);
    // An unknown IP's bucket is full; a peek by ip= works for `client`.
    let r = buckets(
        gw.admin_addr(),
        Method::GET,
        &[("policy", "default"), ("ip", "192.0.2.1")],
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["remaining"].as_u64()),
        (200, Some(3))
    );
}
