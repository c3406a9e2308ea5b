//! [`http_get`]: one `GET` through hyper-util's client, for admin endpoints
//! and readiness probes.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::TestkitError;

/// How long one `GET` may take, connect to last body byte.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET http://<addr><path>` (HTTP/1.1, no pooling): (status, body as text).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), TestkitError> {
    let url = format!("http://{addr}{path}");
    let fail = |detail: String| TestkitError::Query {
        what: format!("GET {url}"),
        detail,
    };
    let uri: http::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Empty<Bytes>>();
    let exchange = async {
        let response = client.get(uri).await.map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {HTTP_TIMEOUT:?}")))?
}
