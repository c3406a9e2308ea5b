//! What an operator reads: the connection gauge and bounded metric labels.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::*;

/// Polls `rateguard_connections_active` until it reads `want` (the gauge
/// moves in the connection tasks, a moment after the socket event).
async fn connections_become(gw: &Gateway, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = metric(gw, "rateguard_connections_active").await;
        if now == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rateguard_connections_active is {now:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connections_active_counts_open_client_connections() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    connections_become(&gw, 0.0).await;
    // Two keep-alive clients that have each made a request, one silent socket.
    let clients = [client_from("127.0.0.2"), client_from("127.0.0.3")];
    for (i, client) in clients.iter().enumerate() {
        let req = http::Request::get(format!("http://{}/c", gw.public.addr))
            .header("x-api-key", format!("conn-{i}"))
            .body(Default::default())
            .unwrap();
        assert_eq!(send(client, req).await.status, 200);
    }
    let silent = tokio::net::TcpStream::connect(gw.public.addr)
        .await
        .unwrap();
    connections_become(&gw, 3.0).await;
    drop(clients);
    connections_become(&gw, 1.0).await;
    drop(silent);
    connections_become(&gw, 0.0).await;
}

#[tokio::test]
async fn metric_labels_never_hold_client_ids_or_paths() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let key = "sk-live-7f3a9e";
    let base = format!("http://{}", gw.public.addr);
    // By API key (up to a 429), by address, by forwarded address, under a
    // distinctive path and a refused path.
    for _ in 0..4 {
        get(
            "127.0.0.2",
            &format!("{base}/u-5512/a"),
            &[("x-api-key", key)],
        )
        .await;
    }
    get("127.0.0.4", &format!("{base}/api/data/u-5512"), &[]).await;
    let forwarded = [("x-forwarded-for", "198.51.100.23")];
    get("127.0.0.1", &format!("{base}/u-5512"), &forwarded).await;
    get(
        "127.0.0.2",
        &format!("{base}/u-5512;x"),
        &[("x-api-key", key)],
    )
    .await;
    let text = metrics_text(&gw).await;
    assert!(
        text.contains("decision=\"denied\"} 1"),
        "the 429 was counted: {text}"
    );
    let hashes = |client: &str| hex::encode(Sha256::digest(client.as_bytes()))[..12].to_owned();
    for secret in [
        key.to_owned(),
        hashes(key),
        hashes(&format!("key:{key}")),
        "127.0.0.4".to_owned(),
        hashes("ip:127.0.0.4"),
        "198.51.100.23".to_owned(),
        hashes("ip:198.51.100.23"),
        "u-5512".to_owned(),
    ] {
        assert!(
            !text.contains(&secret),
            "{secret:?} in the metrics:\n{text}"
        );
    }
    // Every label value is a policy or limit name or a fixed word ("": no limit).
    let allowed = [
        "default",
        "data",
        "client",
        "",
        "allowed",
        "denied",
        "shadow_denied",
        "failed_open",
        "failed_closed",
        "local_fallback",
        "timeout",
        "unavailable",
        "circuit_open",
        "backend",
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "error",
        "ok",
        "accepted",
    ];
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("/metrics parses");
    assert!(!scrape.samples.is_empty());
    for sample in &scrape.samples {
        for (name, value) in sample.labels.iter() {
            // The active config's hash: one series at a time (the old one
            // is removed on a reload), never a client's value.
            let config_hash = sample.metric == "rateguard_config_info"
                && name == "hash"
                && value.len() == 64
                && value.bytes().all(|b| b.is_ascii_hexdigit());
            assert!(
                config_hash || allowed.contains(&value.as_str()),
                "unbounded label {name}={value:?} on {}",
                sample.metric
            );
        }
    }
}
