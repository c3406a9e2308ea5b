//! The gateway in-process, against the in-process mock backend: the request
//! flow, headers, bodies, identity, errors and shutdown. Multi-replica
//! behaviour with Redis and nginx is covered by the `rateguard` crate's
//! end-to-end tests.

mod grpc;
mod layered;
mod operations;
mod paths;
mod support;
mod upstream;
mod websocket;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sha2::{Digest, Sha256};
use support::*;

#[tokio::test]
async fn allowed_requests_reach_the_backend_with_rate_limit_headers() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let url = format!("http://{}/hello?x=1", gw.public.addr);
    let r = get("127.0.0.2", &url, &[("x-api-key", "allowed-1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-backend"), Some("b1"));
    assert_eq!(r.header("x-rateguard-replica"), Some("gw-test"));
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=3;w=300"));
    assert_eq!(r.header("ratelimit"), Some("\"default\";r=2;t=100"));
    let body = r.json();
    assert_eq!(body["message"], "Hello from b1");
    assert_eq!(body["path"], "/hello");
    assert_eq!(body["query"], "x=1");
    assert_eq!(body["method"], "GET");
    // The longest prefix picks the policy.
    let url = format!("http://{}/api/data/7", gw.public.addr);
    let r = get("127.0.0.2", &url, &[("x-api-key", "allowed-1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), Some("\"data\";q=20;w=40"));
    assert_eq!(r.header("ratelimit"), Some("\"data\";r=19;t=2"));
}

#[tokio::test]
async fn over_the_limit_is_a_429_that_never_reaches_the_backend() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let url = format!("http://{}/x", gw.public.addr);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get("127.0.0.2", &url, &[("x-api-key", "k429")]).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    let denied = &statuses[3];
    assert_eq!(denied.header("content-type"), Some("application/json"));
    assert_eq!(denied.header("x-rateguard-replica"), Some("gw-test"));
    assert_eq!(
        denied.header("ratelimit-policy"),
        Some("\"default\";q=3;w=300")
    );
    let body = denied.json();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["policy"], "default");
    // One token every 100 s: the next one is 100 s away (less a few ms).
    let retry_ms = body["retry_after_ms"].as_u64().unwrap();
    assert!((99_000..=100_000).contains(&retry_ms), "{retry_ms}");
    assert_eq!(denied.header("retry-after"), Some("100"));
    assert_eq!(denied.header("ratelimit"), Some("\"default\";r=0;t=100"));
    assert!(denied.header("x-backend").is_none());
    // The backend saw exactly the three allowed requests.
    let metrics = get("127.0.0.2", &format!("http://{}/metrics", gw.admin), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("rateguard_upstream_responses_total{class=\"2xx\"} 3"),
        "{text}"
    );
    assert!(
        text.contains(
            "rateguard_decisions_total{policy=\"default\",limit=\"client\",decision=\"allowed\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "rateguard_decisions_total{policy=\"default\",limit=\"client\",decision=\"denied\"} 2"
        ),
        "{text}"
    );
    // Another key has its own bucket.
    assert_eq!(
        get("127.0.0.2", &url, &[("x-api-key", "k429-other")])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let url = format!("http://{}/ip", gw.public.addr);
    // 127.0.0.2 is not trusted: whatever it claims, it is 127.0.0.2.
    for i in 0..3 {
        let spoof = format!("10.9.9.{i}");
        let r = get("127.0.0.2", &url, &[("x-forwarded-for", &spoof)]).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(
            r.json()["headers"]["x-forwarded-for"],
            format!("{spoof}, 127.0.0.2")
        );
    }
    let r = get("127.0.0.2", &url, &[("x-forwarded-for", "10.9.9.99")]).await;
    assert_eq!(r.status, 429, "spoofing must not buy a new bucket");
    // 127.0.0.1 is a trusted proxy: the rightmost untrusted hop is the client.
    for _ in 0..3 {
        let r = get(
            "127.0.0.1",
            &url,
            &[("x-forwarded-for", "6.6.6.6, 5.5.5.5")],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let r = get(
        "127.0.0.1",
        &url,
        &[("x-forwarded-for", "7.7.7.7, 5.5.5.5")],
    )
    .await;
    assert_eq!(
        r.status, 429,
        "5.5.5.5 is the client, whatever it put left of itself"
    );
    let r = get("127.0.0.1", &url, &[("x-forwarded-for", "5.5.5.6")]).await;
    assert_eq!(r.status, 200, "another forwarded client has its own bucket");
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_and_forwarded_for_appended() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let text = raw(
        gw.public.addr,
        "GET /hop HTTP/1.1\r\nHost: front.example\r\nx-api-key: hop\r\n\
         Connection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\
         TE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: h2c\r\n\
         X-Forwarded-For: 1.2.3.4\r\nX-End-To-End: kept\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body: serde_json::Value =
        serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    let headers = body["headers"].as_object().unwrap();
    for gone in [
        "x-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(
            !headers.contains_key(gone),
            "{gone} was forwarded: {headers:?}"
        );
    }
    assert!(!headers.contains_key("connection"), "{headers:?}");
    assert_eq!(headers["x-end-to-end"], "kept");
    assert_eq!(headers["host"], "front.example");
    assert_eq!(headers["x-forwarded-for"], "1.2.3.4, 127.0.0.1");
}

#[tokio::test]
async fn a_large_post_body_arrives_intact() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let body: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let digest = hex::encode(Sha256::digest(&body));
    let req = Request::post(format!("http://{}/upload", gw.public.addr))
        .header("x-api-key", "big")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let r = send(&client_from("127.0.0.2"), req).await;
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["body_bytes"], 8 * 1024 * 1024);
    assert_eq!(json["body_sha256"], digest);
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504_counted_as_error_and_timeout() {
    let dead = dead_addr().await;
    let gw = gateway(dead, POLICIES).await;
    let r = get(
        "127.0.0.2",
        &format!("http://{}/x", gw.public.addr),
        &[("x-api-key", "u1")],
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "bad_gateway");
    assert_eq!(r.header("x-rateguard-replica"), Some("gw-test"));
    let class = |c: &str| format!("rateguard_upstream_responses_total{{class=\"{c}\"}}");
    assert_eq!(metric(&gw, &class("error")).await, Some(1.0));
    assert_eq!(metric(&gw, &class("timeout")).await, Some(0.0));

    let b = backend("slow").await;
    let gw = gateway(b.addr, POLICIES).await; // upstream timeout_ms = 1000
                                              // Held until the test ends: the gateway gives up first.
    let url = format!("http://{}/x?hold=never", gw.public.addr);
    let r = get("127.0.0.2", &url, &[("x-api-key", "u2")]).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "gateway_timeout");
    assert_eq!(metric(&gw, &class("timeout")).await, Some(1.0));
    assert_eq!(metric(&gw, &class("error")).await, Some(0.0));
}

#[tokio::test]
async fn admin_port_serves_health_and_metrics_and_the_public_port_does_not() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let health = get("127.0.0.2", &format!("http://{}/healthz", gw.admin), &[]).await;
    assert_eq!(health.status, 200);
    let json = health.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["replica"], "gw-test");
    assert_eq!(json["store"]["kind"], "memory");
    assert_eq!(json["store"]["reachable"], true);
    let metrics = get("127.0.0.2", &format!("http://{}/metrics", gw.admin), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    for name in [
        "rateguard_decisions_total{policy=\"data\",limit=\"\",decision=\"failed_open\"} 0",
        "rateguard_store_latency_seconds_bucket",
        "rateguard_upstream_responses_total{class=\"5xx\"} 0",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // On the public port, /metrics is just a path proxied to the backend.
    let public = get(
        "127.0.0.2",
        &format!("http://{}/metrics", gw.public.addr),
        &[("x-api-key", "m")],
    )
    .await;
    assert_eq!(public.json()["backend"], "b1");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let b = backend("b1").await;
    let mut gw = gateway(b.addr, POLICIES).await;
    let addr = gw.public.addr;
    let in_flight = tokio::spawn(async move {
        get(
            "127.0.0.2",
            &format!("http://{addr}/x?hold=drain"),
            &[("x-api-key", "s")],
        )
        .await
    });
    b.wait_until("the held request", |s| s.held == 1).await;
    gw.public.shutdown();
    // Stopped accepting while the request is still held at the backend.
    wait_refused(addr).await;
    assert_eq!(b.backend.stats().held, 1);
    b.backend.release("drain");
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request completes");
    tokio::time::timeout(Duration::from_secs(5), &mut gw.public.task)
        .await
        .expect("server stops after draining")
        .unwrap();
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_and_the_server_survives() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let text = raw(gw.public.addr, "BLAH\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    let r = get(
        "127.0.0.2",
        &format!("http://{}/ok", gw.public.addr),
        &[("x-api-key", "mal")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_silent_connection_neither_blocks_requests_nor_shutdown() {
    let b = backend("b1").await;
    let mut gw = gateway(b.addr, POLICIES).await;
    let addr = gw.public.addr;
    // Connected but never sends a byte (the gateway holds no HTTP state for it).
    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let r = get(
        "127.0.0.2",
        &format!("http://{addr}/x"),
        &[("x-api-key", "q")],
    )
    .await;
    assert_eq!(r.status, 200);
    gw.public.shutdown();
    // The grace period is 5 s; a silent connection is closed at once.
    tokio::time::timeout(Duration::from_secs(3), &mut gw.public.task)
        .await
        .expect("shutdown does not wait for a silent connection")
        .unwrap();
    drop(silent);
}

#[tokio::test]
async fn a_shadow_policy_counts_denials_but_forwards_everything() {
    let b = backend("b1").await;
    let gw = gateway(
        b.addr,
        "[[policies]]\nname = \"trial\"\ncapacity = 2\nrefill_per_sec = 0.01\nshadow = true\n",
    )
    .await;
    let mut limits = Vec::new();
    for i in 0..5 {
        let url = format!("http://{}/shadow?i={i}", gw.public.addr);
        let r = get("127.0.0.2", &url, &[("x-api-key", "sh")]).await;
        assert_eq!(r.status, 200, "request {i} is never blocked");
        assert_eq!(
            r.json()["query"],
            format!("i={i}"),
            "answered by the backend"
        );
        assert_eq!(r.header("ratelimit-policy"), Some("\"trial\";q=2;w=200"));
        assert!(r.header("retry-after").is_none());
        limits.push(r.header("ratelimit").unwrap().to_owned());
    }
    assert_eq!(b.backend.stats().received, 5);
    // Allowed: r counts down; shadow-denied: r=0 and t = the retry delay.
    assert_eq!(limits[0], "\"trial\";r=1;t=100");
    assert_eq!(limits[1], "\"trial\";r=0;t=200");
    for limit in &limits[2..] {
        assert_eq!(limit, "\"trial\";r=0;t=100");
    }
    assert_metrics(
        &gw,
        &[
            decisions("trial", "client", "allowed", 2),
            decisions("trial", "client", "shadow_denied", 3),
            decisions("trial", "client", "denied", 0),
            "rateguard_near_limit_total{policy=\"trial\"} 1".into(),
            "rateguard_upstream_responses_total{class=\"2xx\"} 5".into(),
        ],
    )
    .await;
}

#[tokio::test]
async fn readyz_is_ready_with_the_memory_store() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, POLICIES).await;
    let r = get("127.0.0.2", &format!("http://{}/readyz", gw.admin), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "ready", "replica": "gw-test", "store": {"kind": "memory"}})
    );
}
