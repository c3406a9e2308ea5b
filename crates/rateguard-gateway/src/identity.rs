//! Who is the client? The API key if the request names one; otherwise its
//! IP address, taken from `X-Forwarded-For` only when the peer is a trusted
//! proxy, counted as its network: the leading `identity.ipv6_prefix` bits
//! of an IPv6 address (64 by default: one customer's allocation, so the
//! 2^64 addresses a client can pick from its own /64 are one bucket) and
//! `identity.ipv4_prefix` bits of an IPv4 one (32: the address itself);
//! IPv4-mapped IPv6 addresses count as IPv4. With `identity.api_keys_file`, only a key whose SHA-256 is in the
//! file counts: any other key is limited as its IP (an invented key buys no
//! bucket of its own). The file may also put a key on a plan
//! ([`Requester::plan`]): its quotas replace the policies' for the limits
//! the plan names ([`crate::policy::Tier`]).
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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;
use rateguard_contract::{headers, LimitKey};
use rateguard_runtime::admin::{BucketError, Who};
use sha2::{Digest, Sha256};

use crate::config::{IdentityConfig, IpPrefixes, KnownKeys};
use crate::registry::KeyRegistry;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static(headers::X_FORWARDED_FOR);

/// A client identity, borrowed from the request where possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client<'a> {
    /// The value of the API-key header.
    ApiKey(&'a str),
    /// The client's network ([`network`]): its address when the prefix is
    /// the whole address.
    Ip(IpNet),
}

impl fmt::Display for Client<'_> {
    /// The bucket-key identifier: `key:<key>`, `ip:<address>` (a whole
    /// address, so IPv4 keys read as before prefixes) or
    /// `ip:<network>/<bits>`. The prefixes keep an API key that looks like
    /// an address from sharing that address's bucket.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::ApiKey(key) => write!(f, "key:{key}"),
            Client::Ip(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "ip:{}", net.addr())
            }
            Client::Ip(net) => write!(f, "ip:{net}"),
        }
    }
}

/// `ip`'s network under `prefixes`, normalised: IPv4-mapped IPv6
/// addresses (`::ffff:1.2.3.4`) count as IPv4, and host bits are zero.
pub fn network(ip: IpAddr, prefixes: IpPrefixes) -> IpNet {
    let ip = ip.to_canonical();
    let bits = match ip {
        IpAddr::V4(_) => prefixes.v4,
        IpAddr::V6(_) => prefixes.v6,
    };
    // Lengths are validated (at most the address's bits); a wrong one
    // would keep the whole address rather than panic.
    IpNet::new(ip, bits).map_or_else(|_| IpNet::from(ip), |net| net.trunc())
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
    known_keys: Option<Arc<KnownKeys>>,
    /// `identity.keys = "redis"`: the registry's copy and the config's
    /// plan names (its plans are names; a key's plan is their index).
    registry: Option<(Arc<KeyRegistry>, Arc<[String]>)>,
    prefixes: IpPrefixes,
}

impl Identifier {
    /// Rules from the config.
    pub fn new(config: &IdentityConfig) -> Self {
        Self {
            api_key_header: config.api_key_header.clone(),
            trusted: config.trusted_proxies.clone(),
            known_keys: config.known_api_keys.clone(),
            registry: None,
            prefixes: config.ip_prefixes,
        }
    }

    /// The same rules with the known keys from `registry` (`identity.keys
    /// = "redis"`), their plans named as in `plans`.
    pub fn with_registry(self, registry: Arc<KeyRegistry>, plans: &[String]) -> Self {
        Self {
            registry: Some((registry, plans.into())),
            ..self
        }
    }

    /// Whether `headers` carry an API key that cannot be checked now: the
    /// key registry has not been read for `identity.keys_max_stale_ms`
    /// (`store.on_error = "deny"` refuses such a request).
    pub fn key_unverifiable(&self, headers: &HeaderMap) -> bool {
        let Some((registry, _)) = &self.registry else {
            return false;
        };
        !registry.is_fresh()
            && headers
                .get(&self.api_key_header)
                .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty())
    }

    /// The request's API key, checked against the known keys if any.
    pub fn api_key<'a>(&self, headers: &'a HeaderMap) -> ApiKey<'a> {
        self.api_key_and_plan(headers).0
    }

    /// The request's API key and, for a known key on a plan, the plan (an
    /// index into the config's plans).
    pub fn api_key_and_plan<'a>(&self, headers: &'a HeaderMap) -> (ApiKey<'a>, Option<usize>) {
        let Some(key) = headers
            .get(&self.api_key_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            return (ApiKey::Absent, None);
        };
        self.check_key(key)
    }

    /// `key` checked against the known keys, with its plan.
    fn check_key<'a>(&self, key: &'a str) -> (ApiKey<'a>, Option<usize>) {
        if let Some((registry, plans)) = &self.registry {
            return match registry.plan_of(&Sha256::digest(key).into(), plans) {
                Some(plan) => (ApiKey::Known(key), plan),
                None => (ApiKey::Unknown, None),
            };
        }
        let Some(known) = &self.known_keys else {
            return (ApiKey::Known(key), None);
        };
        match known.get(&<[u8; 32]>::from(Sha256::digest(key))) {
            Some(plan) => (ApiKey::Known(key), *plan),
            None => (ApiKey::Unknown, None),
        }
    }

    /// The identity a limit keyed by `key` counts `who` under (as
    /// [`Requester::identity`] would for a request of theirs) and their
    /// plan: the admin API's view of a bucket. Error messages never show
    /// a key.
    pub fn admin_identity(
        &self,
        key: &LimitKey,
        who: &Who,
    ) -> Result<(String, Option<usize>), BucketError> {
        let mismatch = || {
            let give = match key {
                LimitKey::Client => "key= or ip=",
                LimitKey::ApiKey => "key=",
                LimitKey::Ip => "ip=",
                LimitKey::Header(_) => "header=",
                LimitKey::Global => "neither key=, ip= nor header=",
            };
            BucketError::Invalid(format!("the limit counts by {key}: give {give}"))
        };
        match (key, who) {
            (LimitKey::Client | LimitKey::ApiKey, Who::ApiKey(k)) => match self.check_key(k.trim())
            {
                (ApiKey::Known(k), plan) => Ok((Client::ApiKey(k).to_string(), plan)),
                _ => Err(BucketError::NotFound(
                    "this API key is not in identity.api_keys_file: its requests are limited \
                     as their IP (ask with ip=)"
                        .to_owned(),
                )),
            },
            (LimitKey::Client | LimitKey::Ip, Who::Ip(ip)) => {
                Ok((Client::Ip(network(*ip, self.prefixes)).to_string(), None))
            }
            (LimitKey::Header(_), Who::Header(value)) if !value.trim().is_empty() => {
                Ok((format!("header:{}", value.trim()), None))
            }
            (LimitKey::Global, Who::Global) => Ok(("global".to_owned(), None)),
            _ => Err(mismatch()),
        }
    }

    /// What the limits of a request from `peer` with `headers` key on.
    pub fn requester<'a>(&'a self, headers: &'a HeaderMap, peer: IpAddr) -> Requester<'a> {
        let (api_key, plan) = self.api_key_and_plan(headers);
        Requester {
            identifier: self,
            headers,
            peer,
            api_key,
            plan,
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
            ApiKey::Absent | ApiKey::Unknown => Client::Ip(self.client_network(headers, peer)),
        }
    }

    /// The client's network: [`client_ip`](Self::client_ip) under
    /// `identity.ipv4_prefix`/`ipv6_prefix`.
    pub fn client_network(&self, headers: &HeaderMap, peer: IpAddr) -> IpNet {
        network(self.client_ip(headers, peer), self.prefixes)
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
    plan: Option<usize>,
}

impl Requester<'_> {
    /// The request's API key.
    pub fn api_key(&self) -> ApiKey<'_> {
        self.api_key
    }

    /// The plan of the request's (known) API key, an index into the
    /// config's plans; `None` without a key, for an unknown key, or a key
    /// on no plan.
    pub fn plan(&self) -> Option<usize> {
        self.plan
    }

    /// The client address (trusted-proxy rules applied).
    pub fn ip(&self) -> IpAddr {
        self.identifier.client_ip(self.headers, self.peer)
    }

    /// The client's network, which `ip` limits count by.
    pub fn network(&self) -> IpNet {
        self.identifier.client_network(self.headers, self.peer)
    }

    /// The identity a limit keyed by `key` counts this request under (the
    /// input of its bucket key; `ip:` and `key:` prefixes keep an API key
    /// that looks like an address apart from that address), or `None`
    /// when the limit does not apply: `api_key` without a key, a header
    /// limit without the header. An unknown API key is limited as its IP.
    pub fn identity(&self, key: &LimitKey) -> Option<String> {
        let ip = || Client::Ip(self.network()).to_string();
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
            ip_prefixes: IpPrefixes::default(),
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
        assert_eq!(
            id.identify(&h, ip("9.9.9.9")),
            Client::Ip(ip("9.9.9.9").into())
        );
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
    fn the_admin_api_sees_a_bucket_as_a_request_would() {
        let mut known = KnownKeys::new();
        known.insert(Sha256::digest("pro-key").into(), Some(1));
        let id = Identifier::new(&IdentityConfig {
            api_key_header: HeaderName::from_static(headers::DEFAULT_API_KEY),
            trusted_proxies: Vec::new(),
            known_api_keys: Some(Arc::new(known)),
            ip_prefixes: IpPrefixes::default(),
        });
        let who = |k: &str| Who::ApiKey(k.to_owned());
        let h = headers(&[("x-api-key", "pro-key")]);
        let request = id.requester(&h, ip("192.0.2.1"));
        assert_eq!(
            id.admin_identity(&LimitKey::Client, &who("pro-key")),
            Ok((request.identity(&LimitKey::Client).unwrap(), Some(1)))
        );
        let unknown = id.admin_identity(&LimitKey::ApiKey, &who("invented"));
        assert!(matches!(unknown, Err(BucketError::NotFound(m)) if !m.contains("invented")));
        let v6 = Who::Ip(ip("2001:db8:1:2::9"));
        assert_eq!(
            id.admin_identity(&LimitKey::Ip, &v6),
            Ok(("ip:2001:db8:1:2::/64".to_owned(), None))
        );
        assert!(matches!(
            id.admin_identity(&LimitKey::Ip, &who("pro-key")),
            Err(BucketError::Invalid(_))
        ));
        assert_eq!(
            id.admin_identity(&LimitKey::Global, &Who::Global),
            Ok(("global".to_owned(), None))
        );
    }

    #[test]
    fn keys_come_from_the_registry_and_a_stale_one_cannot_verify_them() {
        let registry = Arc::new(KeyRegistry::new(std::time::Duration::from_secs(60)));
        let plans = ["free".to_owned(), "pro".to_owned()];
        let id = identifier(&[]).with_registry(registry.clone(), &plans);
        let h = headers(&[("x-api-key", "pro-key")]);
        assert_eq!(
            id.api_key_and_plan(&h),
            (ApiKey::Unknown, None),
            "never read"
        );
        assert!(id.key_unverifiable(&h), "never read: cannot check");
        assert!(
            !id.key_unverifiable(&HeaderMap::new()),
            "no key, nothing to check"
        );
        let digest: [u8; 32] = Sha256::digest("pro-key").into();
        registry.replace(1, [(digest, Some("pro".to_owned()))].into());
        assert_eq!(id.api_key_and_plan(&h), (ApiKey::Known("pro-key"), Some(1)));
        assert!(!id.key_unverifiable(&h));
    }

    #[test]
    fn display_separates_keys_from_addresses() {
        assert_eq!(Client::ApiKey("1.2.3.4").to_string(), "key:1.2.3.4");
        assert_eq!(Client::Ip(ip("1.2.3.4").into()).to_string(), "ip:1.2.3.4");
        let net = "2001:db8:1:2::/64".parse().unwrap();
        assert_eq!(Client::Ip(net).to_string(), "ip:2001:db8:1:2::/64");
    }

    fn net(s: &str) -> String {
        Client::Ip(network(ip(s), IpPrefixes::default())).to_string()
    }

    #[test]
    fn ipv6_clients_count_as_their_64_and_ipv4_ones_as_their_address() {
        assert_eq!(
            net("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "ip:2001:db8:1:2::/64"
        );
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:2:ffff::9"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("203.0.113.7"), "ip:203.0.113.7");
        // IPv4-mapped IPv6 is IPv4, under the IPv4 prefix.
        assert_eq!(net("::ffff:203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(net("::1"), "ip:::/64");
    }

    #[test]
    fn prefixes_can_be_loosened_or_tightened() {
        let wide = IpPrefixes { v4: 24, v6: 48 };
        let show = |s: &str, p| Client::Ip(network(ip(s), p)).to_string();
        assert_eq!(show("2001:db8:1:2::1", wide), "ip:2001:db8:1::/48");
        assert_eq!(show("203.0.113.7", wide), "ip:203.0.113.0/24");
        assert_eq!(show("::ffff:203.0.113.7", wide), "ip:203.0.113.0/24");
        let exact = IpPrefixes { v4: 32, v6: 128 };
        assert_eq!(show("2001:db8::1", exact), "ip:2001:db8::1");
    }

    #[test]
    fn the_network_is_taken_after_the_trusted_proxy_walk() {
        let id = identifier(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "2001:db8:7:7::42, 10.0.0.3")]);
        assert_eq!(
            id.identify(&h, ip("10.0.0.2")).to_string(),
            "ip:2001:db8:7:7::/64"
        );
        // Trusted-proxy matching is on whole addresses, not prefixes.
        let id = identifier(&["2001:db8:7:7::1/128"]);
        let h = headers(&[("x-forwarded-for", "2001:db8:9::5")]);
        assert_eq!(
            id.client_ip(&h, ip("2001:db8:7:7::2")),
            ip("2001:db8:7:7::2")
        );
        assert_eq!(id.client_ip(&h, ip("2001:db8:7:7::1")), ip("2001:db8:9::5"));
    }
}

#[cfg(test)]
mod limit_tests;
