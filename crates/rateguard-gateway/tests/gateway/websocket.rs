//! WebSockets through the gateway: the handshake is limited like any
//! request; an allowed one is relayed (`101`) and the connection copied
//! byte for byte both ways, outside the idle timeout of HTTP connections
//! and inside `max_connections`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::support::*;

/// A WebSocket echo server; `/refuse` is answered `403` without upgrading.
pub(crate) struct Echo {
    pub(crate) addr: SocketAddr,
    /// TCP connections accepted.
    pub(crate) connections: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

pub(crate) async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_echo(stream));
        }
    });
    Echo {
        addr,
        connections,
        _task: task,
    }
}

// tungstenite's handshake callback returns its `ErrorResponse` unboxed.
#[allow(clippy::result_large_err)]
async fn serve_echo(stream: TcpStream) {
    let refuse = |req: &Request, res: Response| {
        if req.uri().path() == "/refuse" {
            let mut no = ErrorResponse::new(Some("no websocket here".into()));
            *no.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(no);
        }
        Ok(res)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, refuse).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket to `ws://addr/path` with API key `key`.
pub(crate) async fn open(addr: SocketAddr, path: &str, key: &str) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-api-key", http::HeaderValue::from_str(key).unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    let (ws, res) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(req, stream),
    )
    .await
    .expect("handshake answered within 10 s")?;
    assert_eq!(res.status(), 101);
    Ok(ws)
}

/// Sends `text` and expects it back.
pub(crate) async fn echoes(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo within 10 s")
        .expect("the socket is open")
        .expect("a message");
    assert_eq!(back, Message::text(text));
}

/// Waits until `ws` is closed by the other side (close frame, EOF or
/// reset), for at most 10 s.
pub(crate) async fn closed(ws: &mut Ws) {
    let end = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), end)
        .await
        .expect("the upgraded connection is closed");
}

const TWO_PER_CLIENT: &str = "[[policies]]\nname = \"ws\"\ncapacity = 2\nrefill_per_sec = 0.001\n";

/// Waits (polling `/metrics`, the gateway's only outside view) until
/// `line` reads `value`.
async fn metric_reaches(gw: &Gateway, line: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(gw, line).await != Some(value) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{line} never reached {value}: {:?}",
            metric(gw, line).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_websocket_is_relayed_and_a_handshake_over_the_limit_is_a_429() {
    let backend = echo().await;
    let gw = gateway(backend.addr, TWO_PER_CLIENT).await;
    let mut first = open(gw.public.addr, "/chat", "k").await.unwrap();
    echoes(&mut first, "hello").await;
    let mut second = open(gw.public.addr, "/chat", "k").await.unwrap();
    echoes(&mut second, "again").await;
    echoes(&mut first, "both open").await;
    assert_eq!(backend.connections.load(Ordering::SeqCst), 2);
    metric_reaches(&gw, "rateguard_upgraded_connections", 2.0).await;

    let Err(WsError::Http(refused)) = open(gw.public.addr, "/chat", "k").await else {
        panic!("the third handshake is over the limit");
    };
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["ratelimit"], "\"ws\";r=0;t=1000");
    assert_eq!(refused.headers()["retry-after"], "1000");
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        2,
        "a denied handshake never reaches the backend"
    );
    let refused_body = refused.body().as_deref().unwrap_or_default();
    assert!(
        String::from_utf8_lossy(refused_body).contains("rate_limited"),
        "{refused_body:?}"
    );

    first.close(None).await.unwrap();
    closed(&mut first).await;
    metric_reaches(&gw, "rateguard_upgraded_connections", 1.0).await;
    echoes(&mut second, "still here").await;
    assert_metrics(
        &gw,
        &[
            "rateguard_upgrades_total{result=\"accepted\"} 2".to_owned(),
            "rateguard_upgrades_total{result=\"denied\"} 1".to_owned(),
            decisions("ws", "client", "denied", 1),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_backend_that_does_not_switch_is_relayed_as_a_plain_response() {
    let backend = echo().await;
    let gw = gateway(backend.addr, GENEROUS).await;
    let Err(WsError::Http(res)) = open(gw.public.addr, "/refuse", "k").await else {
        panic!("the backend refused the upgrade");
    };
    assert_eq!(res.status(), 403);
    assert!(res.headers().contains_key("ratelimit"));
    assert_eq!(
        metric(&gw, "rateguard_upgrades_total{result=\"accepted\"}").await,
        Some(0.0)
    );
    // The gateway still serves upgrades.
    let mut ws = open(gw.public.addr, "/chat", "k").await.unwrap();
    echoes(&mut ws, "fine").await;
}

#[tokio::test]
async fn a_quiet_websocket_outlives_the_http_idle_timeout() {
    let backend = echo().await;
    let gw = gateway_with(
        &format!("http://{}", backend.addr),
        "idle_timeout_ms = 300",
        GENEROUS,
    )
    .await;
    let mut ws = open(gw.public.addr, "/chat", "k").await.unwrap();
    echoes(&mut ws, "before").await;
    // Three idle timeouts without a byte: an HTTP connection would be
    // closed (and a released session taken apart) by now.
    tokio::time::sleep(Duration::from_millis(3 * 300 + 200)).await;
    echoes(&mut ws, "after").await;
}

#[tokio::test]
async fn upgrade_idle_timeout_closes_a_websocket_quiet_for_that_long() {
    const QUIET_MS: u64 = 400;
    let backend = echo().await;
    let gw = gateway_with(
        &format!("http://{}", backend.addr),
        &format!("upgrade_idle_timeout_ms = {QUIET_MS}"),
        GENEROUS,
    )
    .await;
    let mut ws = open(gw.public.addr, "/chat", "k").await.unwrap();
    // Traffic every 50 ms keeps it open well past the timeout...
    let busy_until = tokio::time::Instant::now() + Duration::from_millis(3 * QUIET_MS);
    let mut last = tokio::time::Instant::now();
    while last < busy_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        echoes(&mut ws, "tick").await;
        last = tokio::time::Instant::now();
    }
    // ...and once quiet, it is closed.
    closed(&mut ws).await;
    assert!(last.elapsed() >= Duration::from_millis(QUIET_MS));
    metric_reaches(&gw, "rateguard_upgraded_connections", 0.0).await;
}

#[tokio::test]
async fn an_open_websocket_holds_one_of_max_connections() {
    let backend = echo().await;
    let gw = gateway_with(
        &format!("http://{}", backend.addr),
        "max_connections = 1",
        GENEROUS,
    )
    .await;
    let mut ws = open(gw.public.addr, "/chat", "k").await.unwrap();
    echoes(&mut ws, "mine").await;
    let url = format!("http://{}/other", gw.public.addr);
    let waiting = tokio::spawn(async move { get("127.0.0.2", &url, &[]).await });
    // Not served while the WebSocket holds the only connection slot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served beyond max_connections");
    ws.close(None).await.unwrap();
    closed(&mut ws).await;
    let reply = waiting.await.unwrap();
    assert_eq!(
        reply.header("x-rateguard-replica"),
        Some("gw-test"),
        "answered once the slot is free"
    );
}
