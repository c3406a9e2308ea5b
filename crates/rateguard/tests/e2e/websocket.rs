//! WebSockets through the deployment: nginx (the shipped template) → three
//! `rateguard serve` processes → a WebSocket echo backend, and SIGTERM
//! closing an open WebSocket once the grace period is over.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rateguard_testkit::{GatewayProcess, Nginx, Signal};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::shutdown::wait_refused;
use crate::support::*;

/// A WebSocket echo server on loopback, in this process.
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

type Ws = WebSocketStream<TcpStream>;

/// Opens `ws://addr/chat` with an API key; the socket and the replica
/// that answered the handshake.
async fn open(addr: SocketAddr, key: &str) -> (Ws, String) {
    let mut req = format!("ws://{addr}/chat").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-api-key", http::HeaderValue::from_str(key).unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    let (ws, res) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(req, stream),
    )
    .await
    .expect("handshake within 10 s")
    .expect("switched protocols");
    let replica = res.headers()["x-rateguard-replica"]
        .to_str()
        .unwrap()
        .to_owned();
    (ws, replica)
}

async fn echoes(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo within 10 s")
        .expect("open")
        .expect("a message");
    assert_eq!(back, Message::text(text));
}

fn replica_config(backend: SocketAddr, server: &str) -> String {
    config_text(backend, server, "kind = \"memory\"", &default_policy(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_pass_nginx_and_three_replicas() {
    let backend = echo_backend().await;
    let gateways: Vec<GatewayProcess> = (1..=3)
        .map(|i| {
            let id = format!("gw-{i}");
            GatewayProcess::start_with_env(
                binary(),
                &replica_config(backend, "shutdown_grace_ms = 2000"),
                &[("RATEGUARD_SERVER_REPLICA_ID", &id)],
            )
            .expect("gateway replica")
        })
        .collect();
    let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
    let nginx = Nginx::start(&addrs).expect("nginx");
    let mut sockets = Vec::new();
    let mut replicas = BTreeSet::new();
    for i in 0..3 {
        let (mut ws, replica) = open(nginx.addr(), &format!("k{i}")).await;
        echoes(&mut ws, &format!("hello {i}")).await;
        replicas.insert(replica);
        sockets.push(ws);
    }
    assert_eq!(
        replicas.len(),
        3,
        "round robin over the replicas: {replicas:?}"
    );
    // All three stay open and independent.
    for (i, ws) in sockets.iter_mut().enumerate() {
        echoes(ws, &format!("again {i}")).await;
    }
    let mut accepted = 0.0;
    for gw in &gateways {
        accepted += metric(gw, "rateguard_upgrades_total{result=\"accepted\"} ").await;
    }
    assert_eq!(accepted, 3.0);
    // The default policy is keyed by client only: the start-up log says so.
    let log = gateways[0].log();
    assert!(
        log.contains("policy default: a client can mint buckets by inventing API keys; add a limit keyed by ip, or identity.api_keys_file"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_an_open_websocket_after_the_grace_period() {
    const GRACE_MS: u64 = 800;
    let backend = echo_backend().await;
    let mut gw = GatewayProcess::start(
        binary(),
        &replica_config(backend, &format!("shutdown_grace_ms = {GRACE_MS}")),
    )
    .unwrap();
    let (mut ws, _) = open(gw.addr(), "k").await;
    echoes(&mut ws, "before").await;
    let signalled = Instant::now();
    gw.signal(Signal::SIGTERM).unwrap();
    wait_refused(gw.addr()).await;
    // Still relayed during the grace period...
    echoes(&mut ws, "draining").await;
    // ...and closed once it is over.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    });
    end.await.expect("closed within 10 s of SIGTERM");
    let elapsed = signalled.elapsed();
    assert!(
        elapsed >= Duration::from_millis(GRACE_MS),
        "closed after {elapsed:?}, before the grace period"
    );
    assert!(gw.wait_exit(Duration::from_secs(5)), "the gateway exits");
}
