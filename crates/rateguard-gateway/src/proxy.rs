//! Forwarding to the upstream: a pooled keep-alive hyper client, bodies
//! streamed both ways (never buffered whole), reverse-proxy header rules.
//!
//! Header rules (RFC 9110 §7.6.1):
//! - hop-by-hop fields are dropped in both directions: `Connection` and every
//!   field it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//!   `Transfer-Encoding`, `Upgrade`, `Proxy-Authenticate`,
//!   `Proxy-Authorization`; also `Expect`, which the server side has already
//!   answered; except, for an upgrade request ([`crate::upgrade`]),
//!   `Upgrade` and `Connection: upgrade`, and towards an h2c upstream,
//!   `TE: trailers` (which gRPC sends);
//! - the peer's address is appended to `X-Forwarded-For`;
//! - `Host` is passed through as the client sent it (so virtual hosts behind
//!   the gateway keep working; an HTTP/2 client's `:authority` becomes
//!   `Host`); a request without one gets the upstream's. An h2c upstream
//!   gets none: its `:authority` is the upstream URL's, which an HTTP/2
//!   request's `Host` must not contradict (RFC 9113 §8.3.1);
//! - the path sent is the normalized one the policy was chosen on
//!   ([`crate::path`]), after the upstream URL's base path; the query string
//!   is passed through unchanged.

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{UpstreamConfig, UpstreamProtocol};
use crate::error::ProxyError;
use crate::identity::X_FORWARDED_FOR;
use crate::upgrade::Pending;

/// Fields that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::EXPECT,
];

const TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

/// The upstream and the pooled client that reaches it.
#[derive(Debug, Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Incoming>,
    authority: Authority,
    base_path: String,
    timeout: Duration,
    /// `upstream.protocol = "h2c"`.
    http2: bool,
}

impl Proxy {
    /// A proxy to `config.url`. Must be called inside a Tokio runtime.
    pub fn new(config: &UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let http2 = config.protocol == UpstreamProtocol::H2c;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(config.pool_max_idle)
            .http2_only(http2)
            .build(connector);
        Self {
            client,
            authority: config.authority.clone(),
            base_path: config.base_path.clone(),
            timeout: config.timeout,
            http2,
        }
    }

    /// Sends `req` from `peer` upstream, with its path replaced by `path`
    /// when given (the normalized path; `None`: the request's own path is
    /// canonical); returns the response as soon as its headers arrive (the
    /// body streams on; its trailers follow it). A backend `101` to an
    /// upgrade request comes back with the [`Tunnel`](crate::server::Tunnel)
    /// that relays the upgraded connection.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        peer: IpAddr,
        path: Option<&str>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        if parts.version == Version::HTTP_2 && !parts.headers.contains_key(header::HOST) {
            if let Some(authority) = parts.uri.authority() {
                if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(header::HOST, host);
                }
            }
        }
        parts.uri = self.upstream_uri(&parts.uri, path)?;
        let upgrade = if self.http2 {
            None
        } else {
            Pending::take(&mut parts)
        };
        let trailers = self.http2 && parts.headers.get(header::TE) == Some(&TRAILERS);
        strip_hop_by_hop(&mut parts.headers);
        if self.http2 {
            parts.version = Version::HTTP_2;
            parts.headers.remove(header::HOST);
            if trailers {
                parts.headers.insert(header::TE, TRAILERS);
            }
        } else {
            parts.version = Version::HTTP_11;
            if let Some(upgrade) = &upgrade {
                upgrade.restore(&mut parts.headers);
            }
        }
        append_forwarded_for(&mut parts.headers, peer);
        let req = Request::from_parts(parts, body);
        let mut res = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(res)) => res,
            Ok(Err(err)) => return Err(ProxyError::Unreachable(err)),
            Err(_) => return Err(ProxyError::Timeout(self.timeout)),
        };
        match upgrade {
            Some(upgrade) => upgrade.answer(&mut res),
            None => strip_hop_by_hop(res.headers_mut()),
        }
        Ok(res)
    }

    fn upstream_uri(&self, uri: &Uri, path: Option<&str>) -> Result<Uri, ProxyError> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(match (self.base_path.is_empty(), path) {
            // The common case: nothing to rewrite, the original is shared.
            (true, None) => match uri.path_and_query() {
                Some(pq) => pq.clone(),
                None => PathAndQuery::from_static("/"),
            },
            _ => {
                let path = path.unwrap_or(uri.path());
                let text = match uri.query() {
                    Some(query) => format!("{}{path}?{query}", self.base_path),
                    None => format!("{}{path}", self.base_path),
                };
                PathAndQuery::try_from(text).map_err(http::Error::from)?
            }
        });
        Ok(Uri::from_parts(parts).map_err(http::Error::from)?)
    }
}

/// Removes hop-by-hop fields, including those named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over their few names is cheaper
    // than ten hashed removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Appends `peer` to `X-Forwarded-For`, folding several lines into one.
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let peer = peer_value(peer.to_canonical());
    if !headers.contains_key(&X_FORWARDED_FOR) {
        headers.insert(X_FORWARDED_FOR, peer);
        return;
    }
    let mut value = String::new();
    for line in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(text) = line.to_str() {
            value.push_str(text.trim());
            value.push_str(", ");
        }
    }
    value.push_str(peer.to_str().unwrap_or_default());
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}

thread_local! {
    /// The last peer address formatted on this thread: behind a load
    /// balancer, or with keep-alive clients, nearly every request comes
    /// from the same peer as the one before.
    static LAST_PEER: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
}

/// `peer` as a header value, formatted once per change of peer per thread.
fn peer_value(peer: IpAddr) -> HeaderValue {
    LAST_PEER.with_borrow_mut(|last| match last {
        Some((ip, value)) if *ip == peer => value.clone(),
        _ => {
            let value = HeaderValue::try_from(peer.to_string())
                .expect("an IP address is a valid header value");
            *last = Some((peer, value.clone()));
            value
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_and_those_named_in_connection_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("yes"));
        h.insert(header::HOST, HeaderValue::from_static("example.test"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-keep"]);
        let unchanged = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, unchanged, "nothing hop-by-hop: nothing removed");
    }

    #[test]
    fn forwarded_for_is_appended_and_folded() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "127.0.0.1".parse().unwrap());
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.1");
        let mut h = HeaderMap::new();
        h.append(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("1.1.1.1, 2.2.2.2"),
        );
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("3.3.3.3"));
        append_forwarded_for(&mut h, "::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[&X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1");
        // The cached peer is the one asked for, whichever came before.
        for peer in ["10.0.0.1", "::1", "10.0.0.1", "10.0.0.2"] {
            let mut h = HeaderMap::new();
            append_forwarded_for(&mut h, peer.parse().unwrap());
            assert_eq!(h[&X_FORWARDED_FOR], peer);
        }
    }
}
