//! What comes back from the upstream: hop-by-hop response headers dropped,
//! statuses passed through and counted by class, bodies streamed both ways.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rateguard_mock_backend::pattern;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn hop_by_hop_response_headers_are_dropped_and_end_to_end_ones_kept() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, GENEROUS).await;
    let hooks = [
        "Connection:X-Up-Hop",
        "X-Up-Hop:1",
        "Keep-Alive:timeout=5",
        "Proxy-Authenticate:Basic",
        "Proxy-Connection:keep-alive",
        "Upgrade:h2c",
        "Trailer:X-Checksum",
        "X-End-To-End:kept",
        "Cache-Control:no-store",
    ]
    .map(|h| format!("header={h}"))
    .join("&");
    let url = format!("http://{}/hop?{hooks}", gw.public.addr);
    let r = get("127.0.0.2", &url, &[("x-api-key", "hop")]).await;
    assert_eq!(r.status, 200);
    for gone in [
        "x-up-hop",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "upgrade",
        "trailer",
    ] {
        assert!(
            r.header(gone).is_none(),
            "{gone} reached the client: {:?}",
            r.headers
        );
    }
    // hyper may add its own `Connection`, never the upstream's.
    let connection = r.header("connection").unwrap_or("");
    assert!(
        !connection.to_ascii_lowercase().contains("x-up-hop"),
        "{connection}"
    );
    assert_eq!(r.header("x-end-to-end"), Some("kept"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-backend"), Some("b1"));
}

#[tokio::test]
async fn upstream_statuses_pass_through_and_are_counted_by_class() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, GENEROUS).await;
    for (status, extra) in [
        (302, "&header=Location:/elsewhere"),
        (304, ""),
        (404, ""),
        (418, ""),
        (500, ""),
        (503, "&header=Retry-After:7"),
    ] {
        let url = format!("http://{}/s?status={status}{extra}", gw.public.addr);
        let r = get("127.0.0.2", &url, &[("x-api-key", "st")]).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "the backend's status is the client's"
        );
        assert_eq!(r.header("x-backend"), Some("b1"));
        assert!(
            r.header("ratelimit").is_some(),
            "{status}: limit headers added"
        );
        if status != 304 {
            assert_eq!(r.json()["backend"], "b1", "{status}: the backend's body");
        }
    }
    let url = format!(
        "http://{}/s?status=302&header=Location:/elsewhere",
        gw.public.addr
    );
    let r = get("127.0.0.2", &url, &[("x-api-key", "st")]).await;
    assert_eq!(r.header("location"), Some("/elsewhere"));
    let url = format!(
        "http://{}/s?status=503&header=Retry-After:7",
        gw.public.addr
    );
    let r = get("127.0.0.2", &url, &[("x-api-key", "st")]).await;
    assert_eq!(
        r.header("retry-after"),
        Some("7"),
        "an upstream 503 is not the gateway's"
    );
    // A final 1xx (a 101 the gateway does not upgrade) is the only way to
    // the `1xx` class; raw, since a client library would try to upgrade.
    let text = raw(
        gw.public.addr,
        "GET /s?status=101 HTTP/1.1\r\nHost: x\r\nx-api-key: st\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    for (class, count) in [
        ("1xx", 1.0),
        ("2xx", 0.0),
        ("3xx", 3.0),
        ("4xx", 2.0),
        ("5xx", 3.0),
        ("error", 0.0),
        ("timeout", 0.0),
    ] {
        let line = format!("rateguard_upstream_responses_total{{class=\"{class}\"}}");
        assert_eq!(metric(&gw, &line).await, Some(count), "{class}");
    }
}

/// The second half of the request body is written only once the backend has
/// received the first: a proxy that buffers the body never forwards it.
#[tokio::test]
async fn a_request_body_streams_to_the_backend_before_it_ends() {
    const HALF: usize = 256 * 1024;
    let b = backend("b1").await;
    let gw = gateway(b.addr, GENEROUS).await;
    let body = pattern(2 * HALF);
    let mut stream = tokio::net::TcpStream::connect(gw.public.addr)
        .await
        .unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nx-api-key: up\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..HALF]).await.unwrap();
    b.wait_until("the first half of the body", |s| {
        s.body_bytes >= HALF as u64
    })
    .await;
    assert_eq!(b.backend.stats().in_flight, 1, "the request is still open");
    stream.write_all(&body[HALF..]).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(json["body_bytes"], 2 * HALF);
    assert_eq!(json["body_sha256"], hex::encode(Sha256::digest(&body)));
}

/// The backend sends the first half of its body and holds the second until
/// released: a proxy that buffers the response never delivers the first.
#[tokio::test]
async fn a_response_body_streams_to_the_client_before_it_ends() {
    const LEN: usize = 512 * 1024;
    let b = backend("b1").await;
    let gw = gateway(b.addr, GENEROUS).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = Request::get(format!(
        "http://{}/big?stream_bytes={LEN}&hold=rest",
        gw.public.addr
    ))
    .header("x-api-key", "down")
    .body(Empty::new())
    .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("headers before the body ends")
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("ratelimit"));
    let mut body = res.into_body();
    let mut received = Vec::new();
    while received.len() < LEN / 2 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the first half arrives while the rest is held")
            .expect("more frames")
            .unwrap();
        received.extend_from_slice(&frame.into_data().unwrap_or_default());
    }
    assert_eq!(received.len(), LEN / 2, "nothing of the held half arrived");
    assert_eq!(b.backend.stats().held, 1, "the second half is still held");
    b.backend.release("rest");
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("the rest after the release")
        .unwrap()
        .to_bytes();
    received.extend_from_slice(&rest);
    assert_eq!(received, pattern(LEN));
}
