//! Who is the client? The API key if the request names one; otherwise its
//! IP address, taken from `X-Forwarded-For` only when the peer is a trusted
//! proxy. With `identity.api_keys_file`, only a key whose SHA-256 is in the
//! file counts: any other key is limited as its IP (an invented key buys no
//! bucket of its own).
//!
//! Each limit of a policy keys on one part of that ([`Requester::identity`]):
//! `client` (the key, else the IP), `ip`, `api_key` (absent without a
//! key), `header:<name>` (absent without the header) or `global` (one
//! value for everyone). A limit whose identity is absent does not apply to
//! the request.
//!
//! The rule for `X-Forwarded-For` (as in nginx's `real_ip_recursive on`):
//! walk the list from the right, skipping addresses that are themselves
//! trusted proxies; the first one that is not is the client. Entries to the
//! left of it were written by the client and are never believed, so a client
//! cannot pick its own bucket by sending the header itself.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;
use rateguard_contract::{headers, LimitKey};
use sha2::{Digest, Sha256};

use crate::config::IdentityConfig;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static(headers::X_FORWARDED_FOR);

/// A client identity, borrowed from the request where possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client<'a> {
    /// The value of the API-key header.
    ApiKey(&'a str),
    /// The client's IP address.
    Ip(IpAddr),
}

impl fmt::Display for Client<'_> {
    /// The bucket-key identifier. The prefixes keep an API key that looks
    /// like an address from sharing that address's bucket.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::ApiKey(key) => write!(f, "key:{key}"),
            Client::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// The API key of a request, as the identification rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKey<'a> {
    /// No key header (or an empty one).
    Absent,
    /// A key to believe: every key without `identity.api_keys_file`, else
    /// one whose SHA-256 is in the file.
    Known(&'a str),
    /// A key not in `identity.api_keys_file`: limited as its IP.
    Unknown,
}

/// The identification rules from `[identity]`.
#[derive(Debug, Clone)]
pub struct Identifier {
    api_key_header: HeaderName,
    trusted: Vec<IpNet>,
    known_keys: Option<Arc<HashSet<[u8; 32]>>>,
}

impl Identifier {
    /// Rules from the config.
    pub fn new(config: &IdentityConfig) -> Self {
        Self {
            api_key_header: config.api_key_header.clone(),
            trusted: config.trusted_proxies.clone(),
            known_keys: config.known_api_keys.clone(),
        }
    }

    /// The request's API key, checked against the known keys if any.
    pub fn api_key<'a>(&self, headers: &'a HeaderMap) -> ApiKey<'a> {
        let Some(key) = headers
            .get(&self.api_key_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            return ApiKey::Absent;
        };
        match &self.known_keys {
            Some(known) if !known.contains(&<[u8; 32]>::from(Sha256::digest(key))) => {
                ApiKey::Unknown
            }
            _ => ApiKey::Known(key),
        }
    }

    /// What the limits of a request from `peer` with `headers` key on.
    pub fn requester<'a>(&'a self, headers: &'a HeaderMap, peer: IpAddr) -> Requester<'a> {
        Requester {
            identifier: self,
            headers,
            peer,
            api_key: self.api_key(headers),
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Identifies the client of a request from `headers` received from
    /// `peer`: its (known) API key, else its address.
    pub fn identify<'a>(&self, headers: &'a HeaderMap, peer: IpAddr) -> Client<'a> {
        match self.api_key(headers) {
            ApiKey::Known(key) => Client::ApiKey(key),
            ApiKey::Absent | ApiKey::Unknown => Client::Ip(self.client_ip(headers, peer)),
        }
    }

    /// The client address: `peer`, or the forwarded address when `peer` is trusted.
    pub fn client_ip(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        // Several X-Forwarded-For lines are one list, in order.
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all(X_FORWARDED_FOR) {
            let Ok(text) = value.to_str() else {
                return peer;
            };
            hops.extend(text.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage where a trusted proxy should have written an
                // address: trust nothing further left.
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// One request as its policy's limits see it; the client address is
/// worked out only for the limits that key on it.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    identifier: &'a Identifier,
    headers: &'a HeaderMap,
    peer: IpAddr,
    api_key: ApiKey<'a>,
}

impl Requester<'_> {
    /// The request's API key.
    pub fn api_key(&self) -> ApiKey<'_> {
        self.api_key
    }

    /// The client address (trusted-proxy rules applied).
    pub fn ip(&self) -> IpAddr {
        self.identifier.client_ip(self.headers, self.peer)
    }

    /// The identity a limit keyed by `key` counts this request under (the
    /// input of its bucket key; `ip:` and `key:` prefixes keep an API key
    /// that looks like an address apart from that address), or `None`
    /// when the limit does not apply: `api_key` without a key, a header
    /// limit without the header. An unknown API key is limited as its IP.
    pub fn identity(&self, key: &LimitKey) -> Option<String> {
        let ip = || Client::Ip(self.ip()).to_string();
        Some(match (key, self.api_key) {
            (LimitKey::Client | LimitKey::ApiKey, ApiKey::Known(k)) => {
                Client::ApiKey(k).to_string()
            }
            (LimitKey::Client | LimitKey::ApiKey, ApiKey::Unknown) => ip(),
            (LimitKey::Client | LimitKey::Ip, _) => ip(),
            (LimitKey::ApiKey, ApiKey::Absent) => return None,
            (LimitKey::Header(name), _) => {
                let value = self.headers.get(name.as_str())?.as_bytes().trim_ascii();
                if value.is_empty() {
                    return None;
                }
                format!("header:{}", String::from_utf8_lossy(value))
            }
            (LimitKey::Global, _) => "global".to_owned(),
        })
    }
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn identifier(trusted: &[&str]) -> Identifier {
        Identifier::new(&IdentityConfig {
            api_key_header: HeaderName::from_static(headers::DEFAULT_API_KEY),
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            known_api_keys: None,
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn api_key_wins_over_addresses() {
        let id = identifier(&["10.0.0.0/8"]);
        let h = headers(&[("x-api-key", " k1 "), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(id.identify(&h, ip("10.0.0.1")), Client::ApiKey("k1"));
        let h = headers(&[("x-api-key", "")]);
        assert_eq!(id.identify(&h, ip("9.9.9.9")), Client::Ip(ip("9.9.9.9")));
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let id = identifier(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(id.client_ip(&h, ip("8.8.8.8")), ip("8.8.8.8"));
        let none = identifier(&[]);
        assert_eq!(none.client_ip(&h, ip("10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let id = identifier(&["10.0.0.0/8", "192.168.1.1/32"]);
        // The client sent "6.6.6.6" itself; nginx (10.0.0.2) appended 5.5.5.5.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5")]);
        assert_eq!(id.client_ip(&h, ip("10.0.0.2")), ip("5.5.5.5"));
        // Two proxies: skip the trusted inner hop.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 5.5.5.5"),
            ("x-forwarded-for", "192.168.1.1"),
        ]);
        assert_eq!(id.client_ip(&h, ip("10.0.0.2")), ip("5.5.5.5"));
        // Every hop trusted: the leftmost one.
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(id.client_ip(&h, ip("10.0.0.2")), ip("10.1.1.1"));
        // No header from a trusted proxy: the proxy itself.
        assert_eq!(
            id.client_ip(&HeaderMap::new(), ip("10.0.0.2")),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn garbage_stops_the_walk_and_ports_and_mapped_addresses_are_normalised() {
        let id = identifier(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, nonsense")]);
        assert_eq!(id.client_ip(&h, ip("127.0.0.1")), ip("127.0.0.1"));
        let h = headers(&[("x-forwarded-for", "1.1.1.1:4444")]);
        assert_eq!(id.client_ip(&h, ip("::ffff:127.0.0.1")), ip("1.1.1.1"));
    }

    #[test]
    fn display_separates_keys_from_addresses() {
        assert_eq!(Client::ApiKey("1.2.3.4").to_string(), "key:1.2.3.4");
        assert_eq!(Client::Ip(ip("1.2.3.4")).to_string(), "ip:1.2.3.4");
    }
}

#[cfg(test)]
mod limit_tests;
