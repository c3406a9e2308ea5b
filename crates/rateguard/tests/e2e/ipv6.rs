//! IPv6 clients are limited per /64 (`identity.ipv6_prefix`), through a
//! trusted proxy's `X-Forwarded-For`: a client that owns a /64 cannot mint
//! buckets by rotating through its addresses.

use std::collections::BTreeMap;

use rateguard_testkit::{GatewayProcess, MockBackend};

use crate::support::*;

fn per_ip(capacity: u32, identity: &str) -> (MockBackend, GatewayProcess) {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let policies = layered_policy("default", "", &[("per-ip", "ip", capacity)]);
    // 127.0.0.1 is the trusted proxy (config_text); the test sends from it.
    let text = config_text(backend.addr(), "", "kind = \"memory\"", &policies)
        .replace("[identity]\n", &format!("[identity]\n{identity}"));
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    (backend, gw)
}

/// `GET /` for each forwarded client address, sequentially: status → count.
async fn statuses(gw: &GatewayProcess, clients: &[String]) -> BTreeMap<u16, usize> {
    let client = client_from("127.0.0.1");
    let mut out = BTreeMap::new();
    for addr in clients {
        let r = get(&client, &gw.url(), &[("x-forwarded-for", addr)]).await;
        *out.entry(r.status.as_u16()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_addresses_of_one_64_share_one_per_ip_limit() {
    let (_backend, gw) = per_ip(5, "");
    let one_64: Vec<String> = (1..=30)
        .map(|i| format!("2001:db8:aa:1:{i:x}:{:x}:0:{i:x}", i * 7))
        .collect();
    assert_eq!(
        statuses(&gw, &one_64).await,
        BTreeMap::from([(200, 5), (429, 25)])
    );
    // Another /64 is another client.
    let other: Vec<String> = (1..=6).map(|i| format!("2001:db8:aa:2::{i:x}")).collect();
    assert_eq!(
        statuses(&gw, &other).await,
        BTreeMap::from([(200, 5), (429, 1)])
    );
    // IPv4-mapped IPv6 is the IPv4 address.
    let v4: Vec<String> = ["203.0.113.9", "::ffff:203.0.113.9"]
        .iter()
        .cycle()
        .take(6)
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        statuses(&gw, &v4).await,
        BTreeMap::from([(200, 5), (429, 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_prefix_128_counts_every_address_alone() {
    let (_backend, gw) = per_ip(5, "ipv6_prefix = 128\n");
    let addrs: Vec<String> = (1..=30).map(|i| format!("2001:db8:bb:1::{i:x}")).collect();
    assert_eq!(statuses(&gw, &addrs).await, BTreeMap::from([(200, 30)]));
}
