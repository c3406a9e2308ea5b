//! The deployment in miniature: a mock backend, N `rateguard serve`
//! processes sharing one store, and real nginx round robin in front.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisServer};

pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rateguard"))
}

/// A config for one replica: `store` is the `[store]` body, and one default
/// policy of `capacity` tokens refilling so slowly that a test never sees a refill.
pub(crate) fn config(upstream: SocketAddr, store: &str, capacity: u32) -> String {
    config_text(
        upstream,
        "shutdown_grace_ms = 2000",
        store,
        &default_policy(capacity),
    )
}

/// The one default policy of [`config`].
pub(crate) fn default_policy(capacity: u32) -> String {
    policy("default", None, capacity, 0.001)
}

/// One `[[policies]]` entry.
pub(crate) fn policy(
    name: &str,
    prefix: Option<&str>,
    capacity: u32,
    refill_per_sec: f64,
) -> String {
    let prefix = prefix.map_or(String::new(), |p| format!("path_prefix = {p:?}\n"));
    format!("[[policies]]\nname = {name:?}\n{prefix}capacity = {capacity}\nrefill_per_sec = {refill_per_sec:?}\n")
}

/// A `[[policies]]` entry with `extra` policy keys (`path_prefix = ...`)
/// and one `[[policies.limits]]` per `(name, key, capacity)`, each
/// refilling so slowly that a test never sees a refill.
pub(crate) fn layered_policy(name: &str, extra: &str, limits: &[(&str, &str, u32)]) -> String {
    let limits: String = limits
        .iter()
        .map(|(limit, key, capacity)| {
            format!("[[policies.limits]]\nname = {limit:?}\nkey = {key:?}\ncapacity = {capacity}\nrefill_per_sec = 0.001\n")
        })
        .collect();
    format!("[[policies]]\nname = {name:?}\n{extra}{limits}")
}

/// A config for one replica from its `[server]`, `[store]` and
/// `[[policies]]` bodies; the upstream is `upstream`, 127.0.0.1 is trusted.
pub(crate) fn config_text(
    upstream: SocketAddr,
    server: &str,
    store: &str,
    policies: &str,
) -> String {
    format!(
        r#"
[server]
{server}

[upstream]
url = "http://{upstream}"
timeout_ms = 5000

[store]
{store}

[identity]
trusted_proxies = ["127.0.0.1/32"]

{policies}"#
    )
}

/// Store budget of tests about exactness: generous, so that one slow
/// decision on a loaded 2-core CI is never mistaken for a store failure.
pub(crate) const EXACT_BUDGET_MS: u64 = 5000;

/// Store budget of tests that make the store fail: a request bounded by it
/// must still be quick, and a decision with Redis up must never exceed it.
pub(crate) const FAILURE_BUDGET_MS: u64 = 1000;

/// `[store]` body for a Redis kind, deciding within `budget_ms`.
pub(crate) fn redis_store(kind: &str, urls: &[String], on_error: &str, budget_ms: u64) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "kind = \"{kind}\"\nurls = [{}]\ntimeout_ms = {budget_ms}\non_error = \"{on_error}\"",
        urls.join(", ")
    )
}

/// Backend, replicas and nginx; dropped in reverse order of start.
pub(crate) struct Stack {
    pub(crate) nginx: Nginx,
    pub(crate) gateways: Vec<GatewayProcess>,
    /// The replicas' upstream.
    pub(crate) backend: MockBackend,
}

pub(crate) fn stack(store: &str, replicas: usize, capacity: u32) -> Stack {
    stack_with(store, replicas, &default_policy(capacity))
}

/// [`stack`] with the given `[[policies]]` text.
pub(crate) fn stack_with(store: &str, replicas: usize, policies: &str) -> Stack {
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let gateways: Vec<GatewayProcess> = (0..replicas)
        .map(|i| {
            let text = config_text(backend.addr(), "shutdown_grace_ms = 2000", store, policies);
            let id = format!("gw-{}", i + 1);
            GatewayProcess::start_with_env(binary(), &text, &[("RATEGUARD_SERVER_REPLICA_ID", &id)])
                .expect("gateway replica")
        })
        .collect();
    let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
    let nginx = Nginx::start(&addrs).expect("nginx");
    Stack {
        nginx,
        gateways,
        backend,
    }
}

pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A pooled client whose connections come from `source` (127.0.0.2 and up
/// are loopback addresses that the gateways do not trust).
pub(crate) fn client_from(source: &str) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(source.parse::<IpAddr>().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A collected response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

pub(crate) async fn get(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Reply {
    try_get(client, url, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// [`get`] that reports a failed exchange (refused, cut, 10 s without an
/// answer) instead of panicking.
pub(crate) async fn try_get(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let exchange = async {
        let res = client
            .request(req.body(Empty::new()).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
}

/// `n` concurrent `GET url` with `x-api-key: key` from 127.0.0.2; returns
/// (status → count, replica → count).
pub(crate) async fn burst(
    url: &str,
    key: &str,
    n: usize,
) -> (BTreeMap<u16, usize>, BTreeMap<String, usize>) {
    burst_from("127.0.0.2", url, n, |_| key.to_owned()).await
}

/// [`burst`] from `source`, request `i` with `x-api-key: key(i)`.
pub(crate) async fn burst_from(
    source: &str,
    url: &str,
    n: usize,
    key: impl Fn(usize) -> String,
) -> (BTreeMap<u16, usize>, BTreeMap<String, usize>) {
    let client = client_from(source);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url, key) = (client.clone(), url.to_owned(), key(i));
            tokio::spawn(async move { get(&client, &url, &[("x-api-key", &key)]).await })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        *statuses.entry(r.status.as_u16()).or_default() += 1;
        let replica = r.header("x-rateguard-replica").unwrap_or("none").to_owned();
        *replicas.entry(replica).or_default() += 1;
    }
    (statuses, replicas)
}

/// Reads one sample from a replica's `/metrics` (0 if absent).
pub(crate) async fn metric(gw: &GatewayProcess, line_prefix: &str) -> f64 {
    let (_, text) = gw.admin_get("/metrics").await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// One request on a fresh connection, written as is (no client library
/// rewrites the path): (status, body).
pub(crate) async fn raw_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr}: no answer within 10 s"))
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The mock backend's counters (`GET /_mock/stats`), or waits for them
/// (`GET /_mock/wait?...`, answered once every named counter is reached).
pub(crate) async fn backend_stats(backend: &MockBackend, wait: &str) -> serde_json::Value {
    let path = if wait.is_empty() {
        "/_mock/stats".to_owned()
    } else {
        format!("/_mock/wait?{wait}")
    };
    let (status, body) = raw_get(backend.addr(), &path, &[]).await;
    assert_eq!(status, 200, "backend {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Releases the mock backend's hold `id`.
pub(crate) async fn release(backend: &MockBackend, id: &str) {
    let (status, body) = raw_get(backend.addr(), &format!("/_mock/release?hold={id}"), &[]).await;
    assert_eq!(status, 200, "{body}");
}

/// `calls` of `cmdstat_<command>` in `INFO commandstats` (0 if never run).
pub(crate) async fn command_calls(redis: &RedisServer, command: &str) -> u64 {
    let info = redis.cli(&["INFO", "commandstats"]).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}
