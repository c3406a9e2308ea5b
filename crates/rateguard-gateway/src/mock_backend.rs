//! The demo backend (`rateguard mock-backend`): answers every request with
//! JSON saying which backend answered and what it received, so the
//! load-balancing demo and the tests can see the request as it arrived.
//!
//! ```json
//! {"message":"Hello from b1","backend":"b1","path":"/x","method":"GET",
//!  "query":"a=1","body_bytes":0,"body_sha256":"e3b0…","headers":{"host":"…"}}
//! ```
//! plus the response header `X-Backend: <name>`. The body is hashed as it
//! streams in, never held whole. Test hooks in the query string:
//! `delay_ms=N` waits before answering, `status=N` answers with that status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::response::Body;

/// `X-Backend`.
pub const X_BACKEND: HeaderName = HeaderName::from_static(rateguard_contract::headers::X_BACKEND);

fn query_param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

/// Answers one request as backend `name`.
pub async fn handle(name: Arc<str>, req: Request<Incoming>) -> Response<Body> {
    let (parts, mut body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("");
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    bytes += data.len() as u64;
                    hasher.update(&data);
                }
            }
            Err(_) => break,
        }
    }
    if let Some(ms) = query_param(query, "delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers = Map::new();
    for (k, v) in &parts.headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_owned(), Value::String(v));
            }
        }
    }
    let json = serde_json::json!({
        "message": format!("Hello from {name}"),
        "backend": &*name,
        "path": parts.uri.path(),
        "method": parts.method.as_str(),
        "query": query,
        "body_bytes": bytes,
        "body_sha256": hex::encode(hasher.finalize()),
        "headers": headers,
    });
    let status = query_param(query, "status")
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(json.to_string()))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::try_from(&*name) {
        h.insert(X_BACKEND, v);
    }
    res
}
