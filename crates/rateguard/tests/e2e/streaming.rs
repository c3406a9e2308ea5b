//! Bodies stream through the whole chain, nginx → replica → backend and
//! back: the second half of a request body is sent only once the backend
//! has the first, and the second half of a response is released only once
//! the client has the first, so any hop that buffers makes the test fail.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const HALF: usize = 256 * 1024;

/// Reads from `stream` into `out` until it holds at least `len` bytes.
async fn read_at_least(stream: &mut tokio::net::TcpStream, out: &mut Vec<u8>, len: usize) {
    let mut chunk = vec![0; 64 * 1024];
    while out.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("more bytes within 10 s (is a hop buffering?)")
            .unwrap();
        assert!(n > 0, "closed after {} bytes", out.len());
        out.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_both_ways_through_nginx_and_the_gateway() {
    let stack = stack("kind = \"memory\"", 1, 10);
    let front = stack.nginx.addr();
    let body = rateguard_mock_backend::pattern(2 * HALF);

    let mut up = tokio::net::TcpStream::connect(front).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nx-api-key: s\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    up.write_all(head.as_bytes()).await.unwrap();
    up.write_all(&body[..HALF]).await.unwrap();
    backend_stats(&stack.backend, &format!("body_bytes={HALF}")).await;
    up.write_all(&body[HALF..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), up.read_to_end(&mut answer))
        .await
        .expect("answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("\"body_bytes\":{}", 2 * HALF)),
        "{answer}"
    );

    let mut down = tokio::net::TcpStream::connect(front).await.unwrap();
    let get = format!(
        "GET /big?stream_bytes={}&hold=rest HTTP/1.1\r\nHost: x\r\nx-api-key: s\r\nConnection: close\r\n\r\n",
        2 * HALF
    );
    down.write_all(get.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    // Headers plus the first half (the framing adds a few bytes at most).
    read_at_least(&mut down, &mut received, HALF).await;
    assert_eq!(
        backend_stats(&stack.backend, "").await["held"],
        1,
        "the rest is still held"
    );
    release(&stack.backend, "rest").await;
    tokio::time::timeout(Duration::from_secs(10), down.read_to_end(&mut received))
        .await
        .expect("the rest after the release")
        .unwrap();
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&received[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", 2 * HALF)),
        "{head}"
    );
    assert!(
        received[split + 4..] == body[..],
        "the body arrived whole and in order"
    );
}
