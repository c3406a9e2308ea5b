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
use rateguard_testkit::{GatewayProcess, MockBackend, Nginx};

pub(crate) fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rateguard"))
}

/// A config for one replica: `store` is the `[store]` body, and one default
/// policy of `capacity` tokens refilling so slowly that a test never sees a refill.
pub(crate) fn config(upstream: SocketAddr, store: &str, capacity: u32) -> String {
    format!(
        r#"
[server]
shutdown_grace_ms = 2000

[upstream]
url = "http://{upstream}"
timeout_ms = 5000

[store]
{store}

[identity]
trusted_proxies = ["127.0.0.1/32"]

[[policies]]
name = "default"
capacity = {capacity}
refill_per_sec = 0.001
"#
    )
}

/// `[store]` body for a Redis kind.
pub(crate) fn redis_store(kind: &str, urls: &[String], on_error: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "kind = \"{kind}\"\nurls = [{}]\ntimeout_ms = 200\non_error = \"{on_error}\"",
        urls.join(", ")
    )
}

/// Backend, replicas and nginx; dropped in reverse order of start.
pub(crate) struct Stack {
    pub(crate) nginx: Nginx,
    pub(crate) gateways: Vec<GatewayProcess>,
    /// Kept alive for the replicas.
    pub(crate) _backend: MockBackend,
}

pub(crate) fn stack(store: &str, replicas: usize, capacity: u32) -> Stack {
    let backend = MockBackend::start(binary(), "b1").expect("mock backend");
    let gateways: Vec<GatewayProcess> = (0..replicas)
        .map(|i| {
            let text = config(backend.addr(), store, capacity);
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
        _backend: backend,
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
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(req.body(Empty::new()).unwrap()),
    )
    .await
    .expect("answer within 10 s")
    .expect("request sent");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// `n` concurrent `GET url` with `x-api-key: key`; returns (status → count,
/// replica → count).
pub(crate) async fn burst(
    url: &str,
    key: &str,
    n: usize,
) -> (BTreeMap<u16, usize>, BTreeMap<String, usize>) {
    let client = client_from("127.0.0.2");
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            let key = key.to_owned();
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
