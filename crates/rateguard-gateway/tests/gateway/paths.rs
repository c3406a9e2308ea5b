//! The canonical path: chosen policy, forwarded path, refused paths.
//! (The ten spellings of issue 9 against real processes are in the
//! `rateguard` crate's end-to-end tests.)

use crate::support::*;

/// [`GENEROUS`] and a `login` policy of 3 tokens on `/api/login`.
fn login() -> String {
    format!("{GENEROUS}[[policies]]\nname = \"login\"\npath_prefix = \"/api/login\"\ncapacity = 3\nrefill_per_sec = 0.001\n")
}

#[tokio::test]
async fn the_normalized_path_picks_the_policy_and_is_forwarded_with_the_query_unchanged() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, &login()).await;
    let url = format!(
        "http://{}/%61pi//./x/../%6cogin/caf%c3%a9?next=%2e%2e/a//b&x=%6c",
        gw.public.addr
    );
    let r = get("127.0.0.2", &url, &[("x-api-key", "p1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), Some("\"login\";q=3;w=3000"));
    let json = r.json();
    assert_eq!(json["path"], "/api/login/caf%C3%A9");
    assert_eq!(json["query"], "next=%2e%2e/a//b&x=%6c");
    // A canonical path is forwarded byte for byte.
    let url = format!("http://{}/a%C3%A9/b%3B~?q=%2F", gw.public.addr);
    let json = get("127.0.0.2", &url, &[("x-api-key", "p1")]).await.json();
    assert_eq!(
        (json["path"].as_str(), json["query"].as_str()),
        (Some("/a%C3%A9/b%3B~"), Some("q=%2F"))
    );
}

#[tokio::test]
async fn the_upstream_base_path_goes_before_the_normalized_path() {
    let b = backend("b1").await;
    let gw = gateway_to(&format!("http://{}/base/", b.addr), &login()).await;
    for path in ["/api/login?a=1", "/api/./login?a=1"] {
        let url = format!("http://{}{path}", gw.public.addr);
        let json = get("127.0.0.2", &url, &[("x-api-key", "p2")]).await.json();
        assert_eq!(json["path"], "/base/api/login", "{path}");
        assert_eq!(json["query"], "a=1");
    }
}

#[tokio::test]
async fn a_path_that_cannot_be_normalized_is_a_400_that_reaches_nothing() {
    let b = backend("b1").await;
    let gw = gateway(b.addr, &login()).await;
    for (path, message) in [
        ("/api/login;a=b", "invalid path: ';' at byte 10: path parameters are refused"),
        (
            "/api%2Flogin",
            "invalid path: \"%2F\" at byte 4: encoded slashes and backslashes are refused (server.encoded_slashes = \"reject\")",
        ),
        ("/api/%5clogin", "invalid path: \"%5c\" at byte 5: encoded slashes and backslashes are refused (server.encoded_slashes = \"reject\")"),
        ("/api/login%00", "invalid path: encoded NUL (%00) at byte 10"),
        ("/../api/login", "invalid path: '..' climbs above the root"),
        (
            "/api/%zzlogin",
            "invalid path: invalid percent-encoding at byte 5: '%' must be followed by two hex digits",
        ),
    ] {
        let text = raw(
            gw.public.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nx-api-key: bad\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 400"), "{path}: {text}");
        assert!(text.to_ascii_lowercase().contains("x-rateguard-replica: gw-test"), "{text}");
        let body: serde_json::Value =
            serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "bad_request", "message": message}),
            "{path}"
        );
    }
    assert_eq!(b.backend.stats().received, 0, "nothing was forwarded");
    // Refused requests spend no tokens.
    let text = metrics_text(&gw).await;
    assert!(
        text.contains(
            "rateguard_decisions_total{policy=\"login\",limit=\"client\",decision=\"allowed\"} 0"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "rateguard_decisions_total{policy=\"default\",limit=\"client\",decision=\"allowed\"} 0"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn encoded_slashes_keep_forwards_them_as_data() {
    let b = backend("b1").await;
    let gw = gateway_with(
        &format!("http://{}", b.addr),
        "encoded_slashes = \"keep\"",
        &login(),
    )
    .await;
    let url = format!("http://{}/api/login%2fx/%5c/./y", gw.public.addr);
    let r = get("127.0.0.2", &url, &[("x-api-key", "k1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/api/login%2Fx/%5C/y");
    // `/api/login%2Fx` is one segment, not `/api/login/x`: the default policy.
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"default\";q=1000;w=10")
    );
    let url = format!("http://{}/api/login;a", gw.public.addr);
    assert_eq!(
        get("127.0.0.2", &url, &[("x-api-key", "k1")]).await.status,
        400
    );
}

#[test]
fn encoded_slashes_names_its_values_when_misspelt() {
    let text = "[server]\nencoded_slashes = \"decode\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n[[policies]]\nname = \"d\"\ncapacity = 1\nrefill_per_sec = 1.0\n";
    let err = rateguard_gateway::config::load_str(text)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "server.encoded_slashes: unknown value \"decode\", expected one of reject, keep"
    );
}
