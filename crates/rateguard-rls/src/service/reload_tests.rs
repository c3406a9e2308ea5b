//! A reload of the limits files: new `requests_per_unit` on the same
//! bucket, restart-only keys, `/config`'s hash, the metrics.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use rateguard_contract::metrics::ReloadResult;
use rateguard_runtime::reload::{reload_once, ReloadSource};
use rateguard_store::MemoryStore;

use super::*;

fn limits_file(requests_per_unit: u32) -> String {
    format!(
        "domain: edge\ndescriptors:\n  - key: client\n    rate_limit: {{ name: per_client, unit: hour, requests_per_unit: {requests_per_unit} }}\n"
    )
}

/// `[rls]` with `edge.yaml` in `dir`, listening on `listen`.
fn load(dir: &std::path::Path, listen: &str) -> Result<RlsConfig, rateguard_runtime::ConfigErrors> {
    let raw = rateguard_runtime::config::from_toml(&format!(
        "[server]\nlisten = \"{listen}\"\n[store]\nurls = [\"redis://:pw@127.0.0.1:1\"]\n\
         [rls]\nlimits = [\"edge.yaml\"]\n"
    ))?;
    crate::config::validate(&raw, dir)
}

fn request(client: &str) -> RateLimitRequest {
    RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![RateLimitDescriptor {
            entries: vec![Entry {
                key: "client".into(),
                value: client.into(),
            }],
            ..Default::default()
        }],
        hits_addend: 0,
    }
}

/// How many of `n` requests of `client` pass.
async fn oks<S: BucketStore>(rl: &RateLimiter<S>, client: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if rl.decide(&request(client)).await.unwrap().overall_code() == Code::Ok {
            ok += 1;
        }
    }
    ok
}

#[tokio::test]
async fn a_changed_limits_file_applies_to_the_same_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.yaml");
    std::fs::write(&file, limits_file(2)).unwrap();
    let rl = RateLimiter::from_config(
        load(dir.path(), "127.0.0.1:8081").unwrap(),
        MemoryStore::new(),
    );
    let before = rl.live();
    let old_hash = before.config().unwrap().hash().to_owned();
    assert_eq!(oks(&rl, "a", 3).await, 2);

    std::fs::write(&file, limits_file(5)).unwrap();
    let dir_path = dir.path().to_owned();
    let source = ReloadSource::new(move || load(&dir_path, "127.0.0.1:8082"));
    assert_eq!(reload_once(&rl, &source).await, ReloadResult::Ok);
    // A new client gets the new limit in full.
    assert_eq!(oks(&rl, "b", 6).await, 5);
    // The client that spent 2 of 2 keeps its bucket: its backlog (one
    // hour, GCRA keeps time, not tokens) is now measured at 5 per hour,
    // so it is still empty but its next token is 12 minutes away, not 30.
    let res = rl.decide(&request("a")).await.unwrap();
    let status = &res.statuses[0];
    assert_eq!(status.code(), Code::OverLimit);
    assert_eq!(status.current_limit.as_ref().unwrap().requests_per_unit, 5);
    assert_eq!(status.duration_until_reset.as_ref().unwrap().seconds, 720);
    let after = rl.live();
    let active = after.config().unwrap();
    assert_ne!(active.hash(), old_hash);
    let json = active.to_json();
    assert_eq!(
        json["config"]["server"]["listen"], "127.0.0.1:8081",
        "needs a restart"
    );
    assert_eq!(
        json["config"]["store"]["urls"][0],
        "redis://:***@127.0.0.1:1"
    );
    let shown = json["config"]["files"]["rls.limits"][file.display().to_string()]
        .as_str()
        .unwrap();
    assert!(shown.contains("requests_per_unit: 5"), "{shown}");

    // A broken file: refused, the 5 per hour stay.
    std::fs::write(&file, "domain: edge\nextra: 1\n").unwrap();
    assert_eq!(reload_once(&rl, &source).await, ReloadResult::Error);
    assert_eq!(rl.live().config().unwrap().hash(), active.hash());
    let metrics = rl.metrics().encode();
    for (result, n) in [("ok", 1), ("error", 1)] {
        assert!(
            metrics.contains(&format!(
                "rateguard_config_reloads_total{{result=\"{result}\"}} {n}"
            )),
            "{metrics}"
        );
    }
    assert!(metrics.contains(&format!(
        "rateguard_config_info{{hash=\"{}\"}} 1",
        active.hash()
    )));
    assert!(!metrics.contains(&old_hash));
}
