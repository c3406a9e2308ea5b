//! Issue 24 §2 against real processes: `identity.keys = "redis"`. Three
//! replicas on redis-lua behind nginx; `rateguard keys add` puts a new key
//! on `free` and every replica applies it within 1 s, with no reload;
//! `set-plan pro` moves it (its bucket kept) within 1 s on every replica;
//! `remove` sends it back to its IP's bucket; `show` and `list` print
//! digests, never keys, and no replica logs the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisServer};

use crate::support::*;

const KEY: &str = "cust-7f3a-provisioned";
/// SHA-256 of [`KEY`].
fn digest() -> String {
    use std::fmt::Write;
    let d = <sha2::Sha256 as sha2::Digest>::digest(KEY.as_bytes());
    d.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

const PLANS: &str = r#"
[[plans]]
name = "free"
  [[plans.limits]]
  limit = "client"
  capacity = 3
  refill_per_sec = 0.001

[[plans]]
name = "pro"
  [[plans.limits]]
  limit = "client"
  capacity = 10
  refill_per_sec = 0.001
"#;

/// `rateguard keys <args>` on `config` with [`KEY`] on stdin: (success, stdout).
async fn keys(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(binary())
        .arg("keys")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{KEY}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    if !out.status.success() {
        eprintln!("keys {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Probes every replica directly until its `RateLimit-Policy` for [`KEY`]
/// says `q`; returns how long each took since `since` (panics past 1 s).
async fn until_every_replica_says(
    gateways: &[GatewayProcess],
    q: u32,
    since: Instant,
) -> Vec<Duration> {
    let client = client_from("127.0.0.4");
    let want = format!("\"default\";q={q};w={}", q * 1000);
    let mut took = Vec::new();
    for g in gateways {
        let url = format!("http://{}/hello", g.addr());
        loop {
            let r = get(&client, &url, &[("x-api-key", KEY)]).await;
            if r.header("ratelimit-policy") == Some(want.as_str()) {
                took.push(since.elapsed());
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "{} still says {:?} 1 s later, want {want}",
                g.addr(),
                r.header("ratelimit-policy")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_provisioned_in_redis_apply_on_every_replica_within_a_second() {
    let redis = RedisServer::start().expect("redis-server");
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let store = redis_store("redis-lua", &[redis.url()], "allow", EXACT_BUDGET_MS);
    let policies = format!("{}{PLANS}", default_policy(5));
    let mut text = config_text(
        backend.addr(),
        "shutdown_grace_ms = 2000",
        &store,
        &policies,
    );
    text = text.replace("[identity]\n", "[identity]\nkeys = \"redis\"\n");
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
    let config = gateways[0].config_path();

    // Not registered yet: limited as its IP, at the policy's 5.
    let r = get(&client_from("127.0.0.3"), &url, &[("x-api-key", KEY)]).await;
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=5;w=5000"));

    assert!(
        keys(&config, &["add", "--plan", "free", "--key-stdin"])
            .await
            .0
    );
    let added = Instant::now();
    let took = until_every_replica_says(&gateways, 3, added).await;
    eprintln!("free on every replica after: {took:?}");
    assert!(
        !keys(&config, &["add", "--plan", "free", "--key-stdin"])
            .await
            .0,
        "added twice"
    );
    let (ok, shown) = keys(&config, &["show", "--key-stdin"]).await;
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown,
        serde_json::json!({"sha256": digest(), "plan": "free"})
    );
    let (ok, listed) = keys(&config, &["list"]).await;
    assert!(
        ok && listed.contains(&format!("{} free", digest())),
        "{listed}"
    );
    // The three probes that saw q=3 spent the free capacity.
    let (statuses, _) = burst(&url, KEY, 10).await;
    assert_eq!(statuses, BTreeMap::from([(429, 10)]));

    // To pro: the bucket keeps its 3 spent tokens; 7 more pass.
    assert!(
        keys(&config, &["set-plan", "--plan", "pro", "--key-stdin"])
            .await
            .0
    );
    let moved = Instant::now();
    let took = until_every_replica_says(&gateways, 10, moved).await;
    eprintln!("pro on every replica after: {took:?}");
    let (statuses, _) = burst(&url, KEY, 20).await;
    assert_eq!(
        statuses,
        BTreeMap::from([(200, 4), (429, 16)]),
        "7 minus 3 probes"
    );

    // Removed: back to its IP's bucket.
    assert!(keys(&config, &["remove", "--key-stdin"]).await.0);
    let removed = Instant::now();
    until_every_replica_says(&gateways, 5, removed).await;
    assert!(!keys(&config, &["show", "--key-stdin"]).await.0);
    assert!(
        !keys(&config, &["set-plan", "--plan", "gold", "--key-stdin"])
            .await
            .0
    );

    for g in &gateways {
        assert!(!g.log().contains(KEY), "{} logged the key", g.addr());
    }
    drop(nginx);
}
