//! The accept loop and the per-request work: optional bucket decision,
//! URI rewrite, `X-Forwarded-For`, forward through this runtime's pool.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::bucket::Bucket;

/// A response: the upstream's, streamed, or an empty one of our own.
type Body = Either<Incoming, Empty<Bytes>>;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One runtime's proxy: its upstream pool and, optionally, its bucket.
pub(crate) struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: Authority,
    api_key_header: HeaderName,
    bucket: Option<Bucket>,
}

impl Proxy {
    /// Must be called on the runtime that will use it: the pool's
    /// connection tasks are spawned there.
    pub(crate) fn new(
        upstream: Authority,
        api_key_header: HeaderName,
        bucket: Option<Bucket>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self {
            client,
            upstream,
            api_key_header,
            bucket,
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
        if let Some(bucket) = &self.bucket {
            let key = req
                .headers()
                .get(&self.api_key_header)
                .map_or(&b"anonymous"[..], HeaderValue::as_bytes);
            match bucket.allow(key).await {
                Ok(true) => {}
                Ok(false) => return status(StatusCode::TOO_MANY_REQUESTS),
                Err(_) => return status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        let (mut parts, body) = req.into_parts();
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.upstream.clone());
        uri.path_and_query = Some(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        parts.uri = Uri::from_parts(uri).expect("scheme, authority and path make a URI");
        if let Ok(peer) = HeaderValue::try_from(peer.to_string()) {
            parts.headers.append(X_FORWARDED_FOR, peer);
        }
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(res) => res.map(Either::Left),
            Err(_) => status(StatusCode::BAD_GATEWAY),
        }
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut res = Response::new(Either::Right(Empty::new()));
    *res.status_mut() = code;
    res
}

/// Accepts on `listener` forever, one task per connection (HTTP/1.1 keep-alive).
pub(crate) async fn serve(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, ip(peer)).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}
