//! Upgrade requests through the gateway (`Connection: upgrade` +
//! `Upgrade: <protocol>`, as a WebSocket handshake sends them).
//!
//! Such a request is matched and limited like any other (a denial is the
//! usual `429` and nothing reaches the backend). When it is allowed,
//! [`Pending`] carries the upgrade across the proxy: `Upgrade` and
//! `Connection: upgrade` are forwarded for that request only (every other
//! hop-by-hop field is still dropped), and a backend `101` is relayed with
//! its `Upgrade` field and a [`Tunnel`] attached, which the accept loop
//! runs once hyper hands over the client's socket: bytes copied both ways,
//! no framing parsed. Any other answer is relayed as an ordinary response.
//!
//! Only HTTP/1.1 upstreams (`upstream.protocol = "http1"`) carry upgrades;
//! with `h2c` the fields are dropped and the backend sees a plain request.

use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use crate::metrics::{Metrics, UpgradeResult};
use crate::proxy::strip_hop_by_hop;
use crate::server::Tunnel;

const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

/// Whether `headers` ask for an upgrade: an `Upgrade` field, and
/// `Connection` naming `upgrade` (RFC 9110 §7.8). One lookup for the
/// requests that have no `Upgrade`, nearly all of them. `Upgrade: h2c`
/// (HTTP/1.1 to cleartext HTTP/2, which needs the connection-specific
/// `HTTP2-Settings`) is not one a proxy can pass on: such a request is
/// forwarded as a plain one (clients speak h2c to the gateway directly).
pub fn requested(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"h2c"))
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The client side of an upgrade request on its way to the backend.
#[derive(Debug)]
pub struct Pending {
    client: OnUpgrade,
    upgrade: HeaderValue,
}

impl Pending {
    /// Takes the upgrade off a request about to be forwarded; `None` when it
    /// asks for none, or hyper cannot hand its connection over (only
    /// HTTP/1.1 connections can be upgraded).
    pub fn take(parts: &mut Parts) -> Option<Self> {
        if !requested(&parts.headers) {
            return None;
        }
        let upgrade = parts.headers.get(UPGRADE)?.clone();
        let client = parts.extensions.remove::<OnUpgrade>()?;
        Some(Self { client, upgrade })
    }

    /// Puts the upgrade's fields back into the forwarded request's
    /// `headers` (after the hop-by-hop ones were dropped).
    pub fn restore(&self, headers: &mut HeaderMap) {
        headers.insert(UPGRADE, self.upgrade.clone());
        headers.insert(CONNECTION, UPGRADE_TOKEN);
    }

    /// The backend's answer `res`: a `101` keeps `Upgrade` (and gets
    /// `Connection: upgrade`) and carries the [`Tunnel`] between the two
    /// sides; any other answer has its hop-by-hop fields dropped, as usual.
    pub fn answer(self, res: &mut Response<Incoming>) {
        let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
        let upgrade = res.headers().get(UPGRADE).cloned();
        strip_hop_by_hop(res.headers_mut());
        if !switching {
            return;
        }
        if let Some(upgrade) = upgrade {
            res.headers_mut().insert(UPGRADE, upgrade);
        }
        res.headers_mut().insert(CONNECTION, UPGRADE_TOKEN);
        let backend = hyper::upgrade::on(&mut *res);
        Tunnel::new(self.client, backend).attach(res);
    }
}

/// Counts `res`, relayed from the backend, when it switched protocols.
pub fn count_accepted<B>(metrics: &Metrics, res: &Response<B>) {
    if res.status() == StatusCode::SWITCHING_PROTOCOLS && res.extensions().get::<Tunnel>().is_some()
    {
        metrics.upgrades().count(UpgradeResult::Accepted);
    }
}

/// Counts a refused request (`429`, or `503` failing closed) that asked for
/// an upgrade.
pub fn count_refused(metrics: &Metrics, headers: &HeaderMap) {
    if requested(headers) {
        metrics.upgrades().count(UpgradeResult::Denied);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn an_upgrade_needs_both_fields() {
        assert!(requested(&headers(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade")
        ])));
        assert!(requested(&headers(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive"),
            ("connection", "upgrade")
        ])));
        assert!(!requested(&headers(&[("upgrade", "websocket")])));
        assert!(!requested(&headers(&[("connection", "upgrade")])));
        assert!(!requested(&headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrades")
        ])));
        assert!(!requested(&headers(&[
            ("upgrade", "h2c"),
            ("connection", "Upgrade, HTTP2-Settings")
        ])));
    }

    #[test]
    fn only_the_upgrade_fields_come_back_after_stripping() {
        let mut req = http::Request::get("/ws")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade, x-hop")
            .header("x-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        // hyper puts an `OnUpgrade` on HTTP/1.1 requests with `Upgrade`
        // (`on` of a request without one makes an empty one).
        let handle = hyper::upgrade::on(http::Request::new(()));
        req.extensions_mut().insert(handle);
        let (mut parts, ()) = req.into_parts();
        let pending = Pending::take(&mut parts).expect("an upgrade request");
        assert!(parts.extensions.get::<OnUpgrade>().is_none(), "taken");
        strip_hop_by_hop(&mut parts.headers);
        pending.restore(&mut parts.headers);
        let mut names: Vec<&str> = parts.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["connection", "sec-websocket-key", "upgrade"]);
        assert_eq!(parts.headers[CONNECTION], "upgrade");
        assert_eq!(parts.headers[UPGRADE], "websocket");
    }

    #[test]
    fn without_hypers_upgrade_handle_nothing_is_taken() {
        let req = http::Request::get("/ws")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        assert!(Pending::take(&mut parts).is_none());
    }
}
