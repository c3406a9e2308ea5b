//! The accept loop closes idle connections after `idle_timeout` (silent
//! from the start, silent after a keep-alive response), and a connection
//! that hyper let go of while idle is served again as if nothing happened,
//! a request head split across the release included. The first bytes tell
//! HTTP/2 from HTTP/1.1, however they arrive.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

use std::sync::Arc;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use super::connection::{Connection, Upgrades};
use super::io::ConnState;
use super::{serve_http, ServeOptions};

const IDLE: Duration = Duration::from_millis(300);
/// Only a bound on a broken server: the tests wait for the close itself.
const HANG: Duration = Duration::from_secs(20);

fn ok() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// Serves "ok" with `idle_timeout = IDLE`; the server stops when the
/// returned sender drops.
async fn server() -> (std::net::SocketAddr, oneshot::Sender<()>) {
    server_with(IDLE).await
}

async fn server_with(idle_timeout: Duration) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_http(
        listener,
        |_req, _peer| async { ok() },
        async {
            let _ = stopped.await;
        },
        ServeOptions {
            idle_timeout,
            ..ServeOptions::default()
        },
    ));
    (addr, stop)
}

/// Reads until the server closes the connection; what it sent, and when.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut got = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut got))
        .await
        .expect("the server closes an idle connection")
        .expect("a clean close");
    (String::from_utf8_lossy(&got).into_owned(), Instant::now())
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_once_idle_for_the_timeout() {
    let (addr, _stop) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let answered = Instant::now();
    let (rest, closed) = read_until_closed(&mut stream).await;
    assert!(
        rest.ends_with("ok"),
        "the response, then the close: {rest:?}"
    );
    assert!(closed - answered >= IDLE - Duration::from_millis(50));
}

#[tokio::test]
async fn a_connection_that_never_sends_is_closed_after_the_timeout() {
    let (addr, _stop) = server().await;
    let opened = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (got, closed) = read_until_closed(&mut stream).await;
    assert_eq!(got, "", "nothing is sent to a silent connection");
    assert!(closed - opened >= IDLE);
}

/// Reads one response to `GET /` (the handler's fixed "ok" body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\nok") {
        let mut chunk = [0u8; 256];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed early after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Waits (yielding, no timer) until `state` has seen `n` releases.
async fn released(state: &ConnState, n: u64) {
    let wait = async {
        while state.releases() < n {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(HANG, wait)
        .await
        .expect("an idle session is released within a few ticks");
}

#[tokio::test]
async fn a_connection_released_while_idle_serves_its_next_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    let (_stop, stopping) = watch::channel(false);
    let connection = Connection {
        handler: |_req, _peer| async { ok() },
        builder: http1::Builder::new(),
        http2: http2::Builder::new(TokioExecutor::new()),
        idle_timeout: Duration::from_secs(60),
        tick: Duration::from_millis(1),
        stopping,
        upgrades: Upgrades::default(),
    };
    let state = Arc::new(ConnState::default());
    tokio::spawn(connection.run_with(stream, peer, state.clone()));
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));
    released(&state, 1).await;
    // Half a head: read by a new session, which is let go again with the
    // bytes kept for the next one.
    client.write_all(b"GET / HTTP/1.1\r\nho").await.unwrap();
    released(&state, 2).await;
    client.write_all(b"st: t\r\n\r\n").await.unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));
    assert_eq!(state.requests(), 2);
}

/// Writes `first`, lets the server look at it alone (most likely: the
/// test passes either way, the split path is what it is after), then
/// `rest`; returns the server's first answer (and its stop handle).
async fn split_write(first: &[u8], rest: &[u8]) -> (oneshot::Sender<()>, Vec<u8>) {
    let (addr, stop) = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(rest).await.unwrap();
    let mut got = vec![0u8; 64];
    let n = tokio::time::timeout(HANG, stream.read(&mut got))
        .await
        .expect("an answer")
        .unwrap();
    got.truncate(n);
    (stop, got)
}

#[tokio::test]
async fn an_http2_preface_split_across_writes_is_still_http2() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    let (_stream, got) =
        split_write(&PREFACE[..10], &[&PREFACE[10..], &settings[..]].concat()).await;
    assert!(got.len() >= 9, "{got:?}");
    assert_eq!(
        got[3], 4,
        "the server's first frame is its SETTINGS: {got:?}"
    );
}

#[tokio::test]
async fn bytes_read_to_tell_http1_from_http2_are_replayed() {
    // "PR" could begin the preface; "PRIX" is an (extension) method.
    let (_stop, got) = split_write(b"PR", b"IX /x HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
