//! What each kind of limit keys on, and `identity.api_keys_file`.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rateguard_contract::{headers, LimitKey};
use sha2::{Digest, Sha256};

use super::{ApiKey, Client, Identifier};
use crate::config::{IdentityConfig, IpPrefixes};

fn identifier(known: Option<&[&str]>) -> Identifier {
    Identifier::new(&IdentityConfig {
        api_key_header: HeaderName::from_static(headers::DEFAULT_API_KEY),
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        known_api_keys: known.map(|keys| {
            Arc::new(
                keys.iter()
                    .map(|k| (<[u8; 32]>::from(Sha256::digest(k)), None))
                    .collect::<crate::config::KnownKeys>(),
            )
        }),
        ip_prefixes: IpPrefixes::default(),
    })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The identity of every kind of limit, in the order client, ip, api_key,
/// header:x-tenant, global.
fn identities(id: &Identifier, h: &HeaderMap, peer: &str) -> Vec<Option<String>> {
    let requester = id.requester(h, ip(peer));
    [
        LimitKey::Client,
        LimitKey::Ip,
        LimitKey::ApiKey,
        LimitKey::Header("x-tenant".into()),
        LimitKey::Global,
    ]
    .iter()
    .map(|key| requester.identity(key))
    .collect()
}

fn some(values: [&str; 5]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| (!v.is_empty()).then(|| (*v).to_owned()))
        .collect()
}

#[test]
fn each_kind_keys_on_its_own_part_of_the_request() {
    let id = identifier(None);
    // Behind a trusted proxy, with a key and a tenant header.
    let h = headers(&[
        ("x-api-key", "k1"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-tenant", " acme "),
    ]);
    assert_eq!(
        identities(&id, &h, "10.0.0.1"),
        some(["key:k1", "ip:6.6.6.6", "key:k1", "header:acme", "global"])
    );
    // Without key or header: those limits do not apply.
    let h = headers(&[("x-tenant", "  ")]);
    assert_eq!(
        identities(&id, &h, "9.9.9.9"),
        some(["ip:9.9.9.9", "ip:9.9.9.9", "", "", "global"])
    );
    // The client limit's identity is the single-limit one (buckets survive an upgrade).
    let h = headers(&[("x-api-key", "k1")]);
    assert_eq!(
        id.requester(&h, ip("9.9.9.9")).identity(&LimitKey::Client),
        Some(Client::ApiKey("k1").to_string())
    );
}

#[test]
fn an_api_key_not_in_the_file_is_limited_as_its_ip() {
    let id = identifier(Some(&["good"]));
    let good = headers(&[("x-api-key", "good")]);
    assert_eq!(id.api_key(&good), ApiKey::Known("good"));
    assert_eq!(
        identities(&id, &good, "9.9.9.9"),
        some(["key:good", "ip:9.9.9.9", "key:good", "", "global"])
    );
    let invented = headers(&[("x-api-key", "invented")]);
    assert_eq!(id.api_key(&invented), ApiKey::Unknown);
    assert_eq!(
        identities(&id, &invented, "9.9.9.9"),
        some(["ip:9.9.9.9", "ip:9.9.9.9", "ip:9.9.9.9", "", "global"])
    );
    assert_eq!(
        id.identify(&invented, ip("9.9.9.9")),
        Client::Ip(ip("9.9.9.9").into())
    );
    assert_eq!(id.identify(&good, ip("9.9.9.9")), Client::ApiKey("good"));
    assert_eq!(id.api_key(&HeaderMap::new()), ApiKey::Absent);
    // Without a file every key is believed.
    assert_eq!(
        identifier(None).api_key(&invented),
        ApiKey::Known("invented")
    );
}

#[test]
fn a_requester_reports_its_key_and_address() {
    let id = identifier(None);
    let h = headers(&[("x-api-key", "k"), ("x-forwarded-for", "5.5.5.5")]);
    let requester = id.requester(&h, ip("10.1.1.1"));
    assert_eq!(requester.api_key(), ApiKey::Known("k"));
    assert_eq!(requester.ip(), ip("5.5.5.5"));
}
