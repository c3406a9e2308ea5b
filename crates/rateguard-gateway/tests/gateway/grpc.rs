//! HTTP/2 and gRPC through the gateway: h2c clients beside HTTP/1.1 ones on
//! one listener, `upstream.protocol = "h2c"` to a real tonic service
//! (`grpc.health.v1`), trailers relayed, and refusals as gRPC statuses.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rateguard_store::{
    AcquireRequest, BucketStore, Capabilities, MemoryStore, MultiDecision, StoreError, StoreKind,
};
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::*;

/// A tonic `grpc.health.v1` server on loopback (h2c); stops when dropped.
struct HealthServer {
    addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

async fn health_server() -> HealthServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, service) = tonic_health::server::health_reporter();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    HealthServer { addr, _task: task }
}

/// A gateway in front of a tonic server, speaking h2c to it, with
/// `[server]` lines `server` and a policy of three calls per client.
async fn grpc_gateway(server: &str, backend: SocketAddr) -> Gateway {
    grpc_gateway_on(server, backend, MemoryStore::new()).await
}

async fn grpc_gateway_on<S: BucketStore>(server: &str, backend: SocketAddr, store: S) -> Gateway {
    gateway_with_store(
        &format!("http://{backend}"),
        server,
        "protocol = \"h2c\"\n[store]\non_error = \"deny\"\n\
         [[policies]]\nname = \"rpc\"\n[[policies.limits]]\nname = \"per-ip\"\nkey = \"ip\"\ncapacity = 3\nrefill_per_sec = 0.001\n",
        store,
    )
    .await
}

async fn health_client(gw: &Gateway) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", gw.public.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s"))
}

#[tokio::test]
async fn grpc_calls_pass_and_the_one_over_the_limit_is_resource_exhausted() {
    let backend = health_server().await;
    let gw = grpc_gateway("", backend.addr).await;
    let mut client = health_client(&gw).await;
    for _ in 0..2 {
        let status = within("a unary call", client.check(check()))
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving);
    }
    // A server stream through the gateway: its first message arrives while
    // the stream stays open.
    let mut watch = within("the watch call", client.watch(check()))
        .await
        .unwrap()
        .into_inner();
    let first = within("the first update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let denied = within("the refusal", client.check(check()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::ResourceExhausted, "{denied:?}");
    assert_eq!(denied.message(), "rate limited by rpc; retry after 1000s");
    let meta = denied.metadata();
    assert_eq!(meta.get("retry-after").unwrap(), "1000");
    assert_eq!(meta.get("ratelimit").unwrap(), "\"rpc\";r=0;t=1000");
    assert_eq!(meta.get("ratelimit-policy").unwrap(), "\"rpc\";q=3;w=3000");
    assert_metrics(&gw, &[decisions("rpc", "per-ip", "denied", 1)]).await;
}

#[tokio::test]
async fn grpc_denials_can_be_unavailable_instead() {
    let backend = health_server().await;
    let gw = grpc_gateway("grpc_denied_status = \"unavailable\"", backend.addr).await;
    let mut client = health_client(&gw).await;
    for _ in 0..3 {
        within("a call", client.check(check())).await.unwrap();
    }
    let denied = within("the refusal", client.check(check()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unavailable, "{denied:?}");
    assert!(denied.message().starts_with("rate limited by rpc;"));
}

/// A store that always fails, as a Redis that is down does.
#[derive(Debug)]
struct DownStore;

impl BucketStore for DownStore {
    fn kind(&self) -> StoreKind {
        StoreKind::RedisLua
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED
    }

    async fn acquire_all(&self, _: &[AcquireRequest]) -> Result<MultiDecision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_store_failure_under_on_error_deny_is_unavailable() {
    let backend = health_server().await;
    let gw = grpc_gateway_on("", backend.addr, DownStore).await;
    let mut client = health_client(&gw).await;
    let refused = within("the refusal", client.check(check()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(refused.message(), "rate-limit store unavailable");
}

/// `Check` by hand over HTTP/2: the status comes in the trailers the
/// backend sent, after the message, not in the headers.
#[tokio::test]
async fn the_backends_trailers_reach_the_client() {
    let backend = health_server().await;
    let gw = grpc_gateway("", backend.addr).await;
    let stream = tokio::net::TcpStream::connect(gw.public.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    // An empty HealthCheckRequest: uncompressed, zero length.
    let req = Request::post(format!(
        "http://{}/grpc.health.v1.Health/Check",
        gw.public.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
    .unwrap();
    let res = within("the answer", send.send_request(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("grpc-status").is_none(),
        "not trailers-only"
    );
    assert!(res.headers().contains_key("ratelimit"));
    let body = within("the body", res.into_body().collect()).await.unwrap();
    let trailers = body.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    // status = SERVING (field 1, varint 1), framed.
    assert_eq!(&body.to_bytes()[..], &[0, 0, 0, 0, 2, 0x08, 0x01]);
}

#[tokio::test]
async fn http2_and_http1_clients_share_the_listener() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, GENEROUS).await;
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let req = Request::get(format!("http://{}/over-h2?x=1", gw.public.addr))
        .header("x-api-key", "h2")
        .body(Empty::new())
        .unwrap();
    let res = within("the h2 answer", h2.request(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert!(res.headers().contains_key("ratelimit"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["path"], "/over-h2");
    assert_eq!(json["query"], "x=1");
    // The HTTP/2 client's :authority is the Host the HTTP/1.1 backend sees.
    assert_eq!(json["headers"]["host"], gw.public.addr.to_string());
    let r = get(
        "127.0.0.2",
        &format!("http://{}/over-h1", gw.public.addr),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/over-h1");
}

#[tokio::test]
async fn http1_requests_reach_an_h2c_backend() {
    let backend = health_server().await;
    let gw = grpc_gateway("", backend.addr).await;
    // tonic answers a path it does not serve with UNIMPLEMENTED.
    let text = raw(
        gw.public.addr,
        "GET /no.such.Service/Method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("grpc-status: 12"),
        "{text}"
    );
}
