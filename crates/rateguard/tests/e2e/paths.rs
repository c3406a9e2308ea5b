//! Issue 9 §1 against real processes: every spelling of `/api/login` shares
//! its bucket or is refused, and the backend sees the normalized path.

use std::collections::BTreeMap;

use rateguard_testkit::{GatewayProcess, MockBackend};

use crate::support::*;

/// `/api/login` and nine other spellings of it.
const SPELLINGS: [&str; 10] = [
    "/api/login",
    "/api//login",
    "/api/./login",
    "//api/login",
    "/api/%6cogin",
    "/api/%6Cogin",
    "/%61pi/login",
    "/api/x/../login",
    "/api/login;a=b",
    "/api/x/%2E%2e/login",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_path_escapes_its_policy() {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    // A generous default, and 3 tokens for the login route.
    let policies =
        policy("default", None, 1000, 100.0) + &policy("login", Some("/api/login"), 3, 0.001);
    let text = config_text(backend.addr(), "", "kind = \"memory\"", &policies);
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for spelling in SPELLINGS {
        for _ in 0..4 {
            let (status, body) = raw_get(gw.addr(), spelling, &[("x-api-key", "one-key")]).await;
            *statuses.entry(status).or_default() += 1;
            match status {
                200 => {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(
                        json["path"], "/api/login",
                        "{spelling} reached the backend as {json}"
                    );
                }
                429 => assert!(body.contains("\"policy\":\"login\""), "{spelling}: {body}"),
                400 => assert!(
                    body.contains("\"error\":\"bad_request\""),
                    "{spelling}: {body}"
                ),
                other => panic!("{spelling}: unexpected {other}: {body}"),
            }
        }
    }
    // 3 tokens for 40 requests; the `;` spelling is refused (4 × 400).
    assert_eq!(statuses, BTreeMap::from([(200, 3), (400, 4), (429, 33)]));
    assert_eq!(backend_stats(&backend, "").await["received"], 3);
}
