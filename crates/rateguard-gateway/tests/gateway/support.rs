//! In-process harness: a mock backend and a gateway on `127.0.0.1:0`,
//! both through the library's serving API (no processes).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rateguard_gateway::{bind_addr, config, Server};
use rateguard_mock_backend::{self as mock_backend, Backend, Stats};
use rateguard_store::MemoryStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server task and the means to stop it.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub(crate) task: JoinHandle<()>,
}

impl Running {
    /// Asks the server to shut down (graceful drain).
    pub(crate) fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
        self.task.abort();
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A mock backend task: its address and its counters and holds.
pub(crate) struct Mock {
    pub(crate) addr: SocketAddr,
    pub(crate) backend: Arc<Backend>,
    _running: Running,
}

impl Mock {
    /// Waits (woken by the backend, no polling) until `ready(stats)`, for at
    /// most 10 s.
    pub(crate) async fn wait_until(&self, what: &str, ready: impl Fn(&Stats) -> bool) -> Stats {
        tokio::time::timeout(Duration::from_secs(10), self.backend.wait_until(ready))
            .await
            .unwrap_or_else(|_| panic!("backend never saw {what}: {:?}", self.backend.stats()))
    }
}

/// Starts the mock backend `name`.
pub(crate) async fn backend(name: &str) -> Mock {
    let listener = bind_addr(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let backend = Backend::new(name);
    let task = tokio::spawn(mock_backend::serve(listener, backend.clone(), async {
        let _ = rx.await;
    }));
    Mock {
        addr,
        backend,
        _running: Running {
            addr,
            stop: Some(tx),
            task,
        },
    }
}

/// A gateway with the memory store; `extra` is TOML appended after
/// `[upstream]` (store, identity, policies sections).
pub(crate) struct Gateway {
    pub(crate) public: Running,
    pub(crate) admin: SocketAddr,
}

pub(crate) async fn gateway(upstream: SocketAddr, extra: &str) -> Gateway {
    gateway_to(&format!("http://{upstream}"), extra).await
}

/// [`gateway`] with the upstream given as a URL (e.g. with a base path).
pub(crate) async fn gateway_to(upstream_url: &str, extra: &str) -> Gateway {
    gateway_with(upstream_url, "", extra).await
}

/// [`gateway_to`] with extra `[server]` lines.
pub(crate) async fn gateway_with(upstream_url: &str, server: &str, extra: &str) -> Gateway {
    let text = format!(
        "[server]\nreplica_id = \"gw-test\"\nshutdown_grace_ms = 5000\n{server}\n[upstream]\nurl = \"{upstream_url}\"\ntimeout_ms = 1000\n{extra}"
    );
    let mut config = config::load_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    config.server.listen = loopback();
    config.server.admin_listen = loopback();
    let server = Server::bind(config).unwrap();
    let addr = server.public_addr();
    let admin = server.admin_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        server
            .run_with_store(MemoryStore::new(), stop)
            .await
            .unwrap();
    });
    Gateway {
        public: Running {
            addr,
            stop: Some(tx),
            task,
        },
        admin,
    }
}

/// A client whose connections come from `source` (e.g. 127.0.0.2, an
/// untrusted peer).
pub(crate) fn client_from(source: &str) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(source.parse::<IpAddr>().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A collected response.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

pub(crate) async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Reply {
    let res: Response<_> = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("response within 10 s")
        .expect("request sent");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET url` with the given headers, from `source`.
pub(crate) async fn get(source: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&client_from(source), req.body(Full::default()).unwrap()).await
}

/// A raw HTTP/1.1 exchange on a fresh connection (for headers a client
/// library would rewrite); returns the whole response text.
pub(crate) async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("response within 10 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Binds and immediately drops a listener: a port with nothing behind it.
pub(crate) async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind(loopback()).await.unwrap();
    l.local_addr().unwrap()
}

/// The value of the sample `line_prefix` (e.g. `name{label="v"}`) in a
/// gateway's `/metrics`, if exported.
pub(crate) async fn metric(gw: &Gateway, line_prefix: &str) -> Option<f64> {
    let r = get("127.0.0.2", &format!("http://{}/metrics", gw.admin), &[]).await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The `rateguard_decisions_total` sample of (`policy`, `limit`, `decision`) reading `n`.
pub(crate) fn decisions(policy: &str, limit: &str, decision: &str, n: u64) -> String {
    format!("rateguard_decisions_total{{policy=\"{policy}\",limit=\"{limit}\",decision=\"{decision}\"}} {n}")
}

/// Asserts that a gateway's `/metrics` has every one of `lines`.
pub(crate) async fn assert_metrics(gw: &Gateway, lines: &[String]) {
    let text = metrics_text(gw).await;
    for line in lines {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// The whole `/metrics` text of a gateway.
pub(crate) async fn metrics_text(gw: &Gateway) -> String {
    let r = get("127.0.0.2", &format!("http://{}/metrics", gw.admin), &[]).await;
    String::from_utf8_lossy(&r.body).into_owned()
}

/// One default policy nothing in a test exhausts.
pub(crate) const GENEROUS: &str =
    "[[policies]]\nname = \"default\"\ncapacity = 1000\nrefill_per_sec = 100.0\n";

pub(crate) const POLICIES: &str = r#"
[identity]
trusted_proxies = ["127.0.0.1/32"]

[[policies]]
name = "default"
capacity = 3
refill_per_sec = 0.01

[[policies]]
name = "data"
path_prefix = "/api/data"
capacity = 20
refill_per_sec = 0.5
"#;

/// Waits until connecting to `addr` is refused (the listener is closed), for
/// at most 5 s.
pub(crate) async fn wait_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
