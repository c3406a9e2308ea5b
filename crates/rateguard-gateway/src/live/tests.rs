//! A reload of a replica's [`LiveSlot`]: the snapshot a request holds,
//! buckets that survive, keys that need a restart, the hash, and the deny
//! cache.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::{HeaderMap, Method};
use rateguard_core::Quota;
use rateguard_store::{BucketStore, MemoryStore};

use super::*;
use crate::config::{self, OnError, PolicyConfig};
use crate::enforce::{Enforcer, Verdict};
use crate::service::Shared;

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// A config with one default policy of `capacity` and a slow refill (one
/// token per 1 000 s: nothing refills during a test, so counts are exact).
fn config(capacity: u32, listen: &str) -> ValidConfig {
    config::load_str(&format!(
        "[server]\nlisten = \"{listen}\"\n\
         [upstream]\nurl = \"http://user:upw@127.0.0.1:9\"\n\
         [store]\nkind = \"memory\"\n\
         [[policies]]\nname = \"default\"\ncapacity = {capacity}\nrefill_per_sec = 0.001\n"
    ))
    .unwrap()
}

/// Whether one request from [`PEER`] under the live policies is allowed.
async fn allowed<S: BucketStore>(shared: &Shared<S>, live: &Live) -> bool {
    let policy = live.policies().select("/", &Method::GET).unwrap();
    let headers = HeaderMap::new();
    let requester = live.identity().requester(&headers, PEER);
    match shared.enforcer.check(policy, &requester).await {
        Verdict::Allowed(_) => true,
        Verdict::Denied(_) => false,
        other => panic!("unexpected verdict {other:?}"),
    }
}

#[tokio::test]
async fn a_reload_keeps_buckets_and_in_flight_snapshots() {
    let shared = Shared::new(&config(2, "127.0.0.1:8080"), MemoryStore::new());
    let before = shared.live();
    let old_hash = before.config().hash().to_owned();
    for _ in 0..2 {
        assert!(allowed(&shared, &shared.live()).await);
    }
    assert!(!allowed(&shared, &shared.live()).await);

    let restart = shared.live_slot().apply(config(4, "127.0.0.1:8081"));
    assert_eq!(restart, ["server.listen"]);
    let after = shared.live();
    // The same bucket, now of capacity 4: two more tokens, not four.
    assert!(allowed(&shared, &after).await);
    assert!(allowed(&shared, &after).await);
    assert!(!allowed(&shared, &after).await);
    // A request that started before the reload still sees its policy.
    let old_policy = before.policies().select("/", &Method::GET).unwrap();
    assert_eq!(old_policy.limits()[0].quota().capacity(), 2);
    let new_policy = after.policies().select("/", &Method::GET).unwrap();
    assert_eq!(new_policy.limits()[0].quota().capacity(), 4);

    // `/config` shows the new policies and the listen address still in use.
    let json = after.config().to_json();
    assert_eq!(json["config"]["policies"][0]["capacity"], 4);
    assert_eq!(json["config"]["server"]["listen"], "127.0.0.1:8080");
    assert_eq!(
        json["config"]["upstream"]["url"],
        "http://user:***@127.0.0.1:9"
    );
    let new_hash = after.config().hash();
    assert_ne!(new_hash, old_hash);
    let metrics = shared.metrics().encode();
    assert!(
        metrics.contains(&format!("rateguard_config_info{{hash=\"{new_hash}\"}} 1")),
        "{metrics}"
    );
    assert!(!metrics.contains(&old_hash), "stale hash series removed");
}

#[tokio::test]
async fn a_denial_cached_under_the_old_quota_is_not_served_after_a_reload() {
    let metrics = Arc::new(Metrics::new());
    let enforcer = Enforcer::new(
        MemoryStore::new(),
        Duration::from_secs(1),
        OnError::Allow,
        metrics.clone(),
    )
    .with_deny_cache(100);
    let slow = |capacity| PolicyConfig::single("p", Quota::new(capacity, 0.001).unwrap());
    let old = PolicyTable::new(&[slow(2)], &metrics);
    let new = PolicyTable::new(&[slow(4)], &metrics);
    let id = Identifier::new(&config(2, "127.0.0.1:0").identity);
    let headers = HeaderMap::new();
    let requester = id.requester(&headers, PEER);
    let check = |table| verdict(&enforcer, table, &requester);
    assert!(matches!(check(&old).await, Verdict::Allowed(_)));
    assert!(matches!(check(&old).await, Verdict::Allowed(_)));
    assert!(matches!(check(&old).await, Verdict::Denied(_)));
    // The second denial comes from the cache (same key, same quota).
    assert!(matches!(check(&old).await, Verdict::Denied(_)));
    let hits = |table: &PolicyTable| {
        table
            .select("/", &Method::GET)
            .unwrap()
            .counters
            .deny_cache_hits
            .get()
    };
    assert_eq!(hits(&old), 1);
    // The cache keys on the quota too: the new capacity goes to the store.
    assert!(matches!(check(&new).await, Verdict::Allowed(_)));
    assert!(matches!(check(&new).await, Verdict::Allowed(_)));
    assert!(matches!(check(&new).await, Verdict::Denied(_)));
}

async fn verdict<S: BucketStore>(
    enforcer: &Enforcer<S>,
    table: &PolicyTable,
    requester: &crate::identity::Requester<'_>,
) -> Verdict {
    let policy = table.select("/", &Method::GET).unwrap();
    enforcer.check(policy, requester).await
}

#[tokio::test]
async fn an_invalid_config_is_refused_and_counted() {
    use rateguard_contract::metrics::ReloadResult;
    use rateguard_runtime::reload::{reload_once, ReloadSource};
    let shared = Shared::new(&config(2, "127.0.0.1:8080"), MemoryStore::new());
    let hash = shared.live().config().hash().to_owned();
    let bad = ReloadSource::new(|| {
        config::load_str(
            "[upstream]\nurl = \"http://127.0.0.1:9\"\n\
             [[policies]]\nname = \"default\"\ncapacity = -5\nrefill_per_sec = 1.0\n",
        )
    });
    assert_eq!(
        reload_once(&**shared.live_slot(), &bad).await,
        ReloadResult::Error
    );
    assert_eq!(shared.live().config().hash(), hash);
    let good = ReloadSource::new(|| Ok(config(3, "127.0.0.1:8080")));
    assert_eq!(
        reload_once(&**shared.live_slot(), &good).await,
        ReloadResult::Ok
    );
    assert_ne!(shared.live().config().hash(), hash);
    let metrics = shared.metrics().encode();
    for result in ["ok", "error"] {
        assert!(
            metrics.contains(&format!(
                "rateguard_config_reloads_total{{result=\"{result}\"}} 1"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_reload_reads_the_api_keys_file_again() {
    use sha2::{Digest, Sha256};
    let digest = |key: &str| hex::encode(Sha256::digest(key.as_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    let load = || {
        config::load_str(&format!(
            "[upstream]\nurl = \"http://127.0.0.1:9\"\n\
             [identity]\napi_keys_file = {:?}\n\
             [[policies]]\nname = \"default\"\ncapacity = 1\nrefill_per_sec = 0.001\n",
            keys.to_str().unwrap()
        ))
        .unwrap()
    };
    std::fs::write(&keys, format!("{}\n", digest("abc"))).unwrap();
    let shared = Shared::new(&load(), MemoryStore::new());
    let first = shared.live().config().to_json();
    let shown = &first["config"]["files"]["identity.api_keys_file"];
    assert_eq!(shown["keys"], 1);
    assert!(!first.to_string().contains(&digest("abc")), "{first}");

    let decide = |key: &'static str| {
        let shared = &shared;
        async move {
            let live = shared.live();
            let policy = live.policies().select("/", &Method::GET).unwrap();
            let mut headers = HeaderMap::new();
            if !key.is_empty() {
                headers.insert("x-api-key", key.parse().unwrap());
            }
            let requester = live.identity().requester(&headers, PEER);
            matches!(
                shared.enforcer.check(policy, &requester).await,
                Verdict::Allowed(_)
            )
        }
    };
    assert!(decide("").await, "the IP's token");
    // An unknown key is limited as its IP: no token left.
    assert!(!decide("xyz").await);

    std::fs::write(&keys, format!("{}\n{}\n", digest("abc"), digest("xyz"))).unwrap();
    shared.live_slot().apply(load());
    // Known now: a bucket of its own.
    assert!(decide("xyz").await);
    let second = shared.live().config().to_json();
    assert_eq!(
        second["config"]["files"]["identity.api_keys_file"]["keys"],
        2
    );
    assert_ne!(
        second["hash"], first["hash"],
        "same TOML, another keys file"
    );
}
