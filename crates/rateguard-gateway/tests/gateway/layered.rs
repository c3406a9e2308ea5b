//! Layered limits in-process (memory store): several limits per policy,
//! each with its own key, applied all or nothing; methods, cost, the
//! headers, the 429 body and the metric labels.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::*;

/// Identity behind a trusted local proxy, [`GENEROUS`], and issue 9's
/// example: `login` on `/api/login`, per-client 5 and per-ip 8.
fn login() -> String {
    let login = include_str!("../fixtures/login.toml");
    format!("[identity]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{GENEROUS}{login}")
}

/// `n` concurrent `GET url` from `source`, key `key(i)` for request `i`
/// (none when empty): status → count.
async fn concurrent(
    source: &'static str,
    url: &str,
    n: usize,
    key: impl Fn(usize) -> String,
) -> BTreeMap<u16, usize> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = url.to_owned();
            let key = key(i);
            tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = if key.is_empty() {
                    Vec::new()
                } else {
                    vec![("x-api-key", key.as_str())]
                };
                get(source, &url, &headers).await.status.as_u16()
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_default() += 1;
    }
    statuses
}

#[tokio::test]
async fn a_denial_by_one_limit_spends_nothing_on_the_other_under_concurrency() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, &login()).await;
    let url = format!("http://{}/api/login", gw.public.addr);
    // Key A: 100 at once, 5 allowed by its per-client limit; the 95
    // denials spend nothing on the per-ip bucket.
    let a = concurrent("127.0.0.2", &url, 100, |_| "A".into()).await;
    assert_eq!(a, BTreeMap::from([(200, 5), (429, 95)]));
    // Key B from the same address: the per-ip bucket has exactly 3 left.
    let b_ = concurrent("127.0.0.2", &url, 100, |_| "B".into()).await;
    assert_eq!(b_, BTreeMap::from([(200, 3), (429, 97)]));
    assert_eq!(b.backend.stats().received, 8);
    assert_metrics(
        &gw,
        &[
            decisions("login", "per-client", "allowed", 5),
            decisions("login", "per-client", "denied", 95),
            decisions("login", "per-ip", "allowed", 3),
            decisions("login", "per-ip", "denied", 97),
            decisions("login", "", "failed_open", 0),
            "rateguard_deny_cache_hits_total{policy=\"login\"} 0".into(),
        ],
    )
    .await;
}

#[tokio::test]
async fn headers_list_every_limit_and_report_the_tightest_one() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, &login()).await;
    let url = format!("http://{}/api/login", gw.public.addr);
    let policy = "\"login.per-client\";q=5;w=5000, \"login.per-ip\";q=8;w=8000";
    let mut a = Vec::new();
    for _ in 0..6 {
        a.push(get("127.0.0.2", &url, &[("x-api-key", "A")]).await);
    }
    for (i, r) in a[..5].iter().enumerate() {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-policy"), Some(policy));
        // per-client has the fewest tokens left: 4, 3, .., 0.
        let t = (i + 1) * 1000;
        let expected = format!("\"login.per-client\";r={};t={t}", 4 - i);
        assert_eq!(
            r.header("ratelimit"),
            Some(expected.as_str()),
            "request {i}"
        );
    }
    let denied = &a[5];
    assert_eq!(denied.status, 429);
    assert_eq!(denied.header("ratelimit-policy"), Some(policy));
    assert_eq!(denied.header("retry-after"), Some("1000"));
    assert_eq!(
        denied.header("ratelimit"),
        Some("\"login.per-client\";r=0;t=1000")
    );
    let body = denied.json();
    let names = ["error", "policy", "limit"].map(|k| body[k].as_str().unwrap().to_owned());
    assert_eq!(names, ["rate_limited", "login", "login.per-client"]);
    // Key B: per-ip has 3 left and reports (2, 1, 0 left vs 4, 3, 2).
    let mut b_ = Vec::new();
    for _ in 0..4 {
        b_.push(get("127.0.0.2", &url, &[("x-api-key", "B")]).await);
    }
    assert_eq!(
        b_[0].header("ratelimit"),
        Some("\"login.per-ip\";r=2;t=6000")
    );
    assert_eq!(
        b_[2].header("ratelimit"),
        Some("\"login.per-ip\";r=0;t=8000")
    );
    let denied = &b_[3];
    assert_eq!(denied.status, 429);
    assert_eq!(denied.json()["limit"], "login.per-ip");
    assert_eq!(
        denied.header("ratelimit"),
        Some("\"login.per-ip\";r=0;t=1000")
    );
    // The single-limit default policy reads as before layered limits.
    let r = get(
        "127.0.0.2",
        &format!("http://{}/other", gw.public.addr),
        &[],
    )
    .await;
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"default\";q=1000;w=10")
    );
    assert_eq!(r.header("ratelimit"), Some("\"default\";r=999;t=1"));
}

#[tokio::test]
async fn invented_keys_from_one_address_share_its_per_ip_bucket() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, &login()).await;
    let url = format!("http://{}/api/login", gw.public.addr);
    let statuses = concurrent("127.0.0.3", &url, 30, |i| format!("invented-{i}")).await;
    assert_eq!(statuses, BTreeMap::from([(200, 8), (429, 22)]));
    // Another address has its own per-ip bucket.
    let other = concurrent("127.0.0.4", &url, 10, |i| format!("invented-{i}")).await;
    assert_eq!(other, BTreeMap::from([(200, 8), (429, 2)]));
}

#[tokio::test]
async fn a_cost_of_five_fits_twice_in_twelve() {
    let b = backend("b1").await;
    let config = format!(
        "{GENEROUS}[[policies]]\nname = \"export\"\npath_prefix = \"/export\"\ncost = 5\n\
         [[policies.limits]]\nkey = \"ip\"\ncapacity = 12\nrefill_per_sec = 0.001\n"
    );
    let gw = gateway(b.addr, &config).await;
    let url = format!("http://{}/export", gw.public.addr);
    let mut out = Vec::new();
    for _ in 0..3 {
        let r = get("127.0.0.2", &url, &[]).await;
        out.push((r.status.as_u16(), r.header("ratelimit").unwrap().to_owned()));
    }
    assert_eq!(
        out,
        [
            (200, "\"export\";r=7;t=5000".to_owned()),
            (200, "\"export\";r=2;t=10000".to_owned()),
            // 2 tokens left, 5 needed: 3 more at one per 1000 s.
            (429, "\"export\";r=2;t=3000".to_owned()),
        ]
    );
}

fn request(method: &str, url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header("x-api-key", "m")
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn methods_pick_among_policies_sharing_a_prefix() {
    let b = backend("b1").await;
    let config = format!(
        "{GENEROUS}\
         [[policies]]\nname = \"login-post\"\npath_prefix = \"/api/login\"\nmethods = [\"POST\"]\ncapacity = 1\nrefill_per_sec = 0.001\n\
         [[policies]]\nname = \"login\"\npath_prefix = \"/api/login\"\ncapacity = 50\nrefill_per_sec = 0.001\n"
    );
    let gw = gateway(b.addr, &config).await;
    let url = format!("http://{}/api/login", gw.public.addr);
    let client = client_from("127.0.0.2");
    let policy_of = |r: &Reply| r.header("ratelimit-policy").unwrap().to_owned();
    let post = send(&client, request("POST", &url)).await;
    assert_eq!(post.status, 200);
    assert_eq!(post.json()["method"], "POST", "forwarded as sent");
    assert_eq!(policy_of(&post), "\"login-post\";q=1;w=1000");
    assert_eq!(send(&client, request("POST", &url)).await.status, 429);
    // Other methods on the same path take the policy without a list.
    for method in ["GET", "PUT", "HEAD"] {
        let r = send(&client, request(method, &url)).await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(policy_of(&r), "\"login\";q=50;w=50000", "{method}");
    }
    // Elsewhere, the default.
    let r = send(
        &client,
        request("POST", &format!("http://{}/x", gw.public.addr)),
    )
    .await;
    assert_eq!(policy_of(&r), "\"default\";q=1000;w=10");
}

#[tokio::test]
async fn header_and_global_limits_apply_as_documented() {
    let b = backend("b1").await;
    let config = format!(
        "{GENEROUS}[[policies]]\nname = \"tenant\"\npath_prefix = \"/t\"\n\
         [[policies.limits]]\nkey = \"header:X-Tenant\"\ncapacity = 2\nrefill_per_sec = 0.001\n\
         [[policies]]\nname = \"all\"\npath_prefix = \"/all\"\n\
         [[policies.limits]]\nkey = \"global\"\ncapacity = 3\nrefill_per_sec = 0.001\n"
    );
    let gw = gateway(b.addr, &config).await;
    let base = format!("http://{}", gw.public.addr);
    // Without the header, the limit does not apply: forwarded, no headers.
    for _ in 0..4 {
        let r = get("127.0.0.2", &format!("{base}/t"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit"), None);
        assert_eq!(r.header("ratelimit-policy"), None);
    }
    // With it, one bucket per tenant, whatever the client.
    let tenant = |source: &'static str, t: &'static str| {
        let url = format!("{base}/t");
        async move { get(source, &url, &[("x-tenant", t)]).await.status.as_u16() }
    };
    assert_eq!(tenant("127.0.0.2", "acme").await, 200);
    assert_eq!(tenant("127.0.0.3", "acme").await, 200);
    assert_eq!(tenant("127.0.0.4", "acme").await, 429);
    assert_eq!(tenant("127.0.0.4", "other").await, 200);
    // A global limit: every client together.
    let mut statuses = Vec::new();
    for (i, source) in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        .iter()
        .enumerate()
    {
        let key = format!("k{i}");
        statuses.push(
            get(source, &format!("{base}/all"), &[("x-api-key", &key)])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_metrics(
        &gw,
        &[
            decisions("tenant", "", "allowed", 4),
            decisions("tenant", "header-x-tenant", "denied", 1),
            decisions("all", "global", "denied", 1),
        ],
    )
    .await;
}

#[tokio::test]
async fn with_an_api_keys_file_an_invented_key_is_limited_as_its_ip() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(
        &keys,
        format!("{}\n", hex::encode(Sha256::digest("real-key"))),
    )
    .unwrap();
    let b = backend("b1").await;
    let config = format!(
        "[identity]\napi_keys_file = {:?}\n[[policies]]\nname = \"default\"\ncapacity = 2\nrefill_per_sec = 0.001\n",
        keys.to_str().unwrap()
    );
    let gw = gateway(b.addr, &config).await;
    let url = format!("http://{}/x", gw.public.addr);
    // Invented keys share the address's bucket: 2 in all.
    let invented = concurrent("127.0.0.2", &url, 6, |i| format!("made-up-{i}")).await;
    assert_eq!(invented, BTreeMap::from([(200, 2), (429, 4)]));
    let keyless = get("127.0.0.2", &url, &[]).await;
    assert_eq!(keyless.status, 429, "the same bucket as the address");
    // The known key has its own.
    let real = concurrent("127.0.0.2", &url, 3, |_| "real-key".into()).await;
    assert_eq!(real, BTreeMap::from([(200, 2), (429, 1)]));
}
