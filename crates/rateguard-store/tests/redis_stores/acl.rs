//! Redis 6+ ACL users: `redis://user:password@host` and `rediss://…`
//! authenticate every connection with `AUTH user password`; a wrong
//! password or a user without the permissions the store needs fails at
//! connect with a message naming the cause and never the password.

use rateguard_store::conformance;
use rateguard_store::{
    BucketStore, Quota, RedisLuaStore, RedisOptions, RedisPipelinedStore, StoreError, TlsOptions,
};
use rateguard_testkit::{ClientCerts, RedisServer, RedisTls, TestCerts};

use crate::relaxed;

const PASSWORD: &str = "s3cret-Pa55";

/// `url` (`redis://127.0.0.1:port`) with `user:password@` added.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{user}:{password}@{rest}")
}

/// Whose connections the server holds, per `CLIENT LIST` (`user=...`).
async fn users(redis: &RedisServer) -> Vec<String> {
    let list = redis.cli(&["CLIENT", "LIST"]).await.unwrap();
    list.lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("user=")))
        .map(str::to_owned)
        .collect()
}

fn refusal(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Backend(message)) => message,
        other => panic!("expected a refusal at connect, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_works_over_plain_and_tls_urls_and_a_wrong_password_fails_clearly() {
    let certs = TestCerts::generate().unwrap();
    let redis = RedisServer::start_tls(&RedisTls::new(&certs, ClientCerts::Optional)).unwrap();
    let password = format!(">{PASSWORD}");
    let setuser = [
        "ACL", "SETUSER", "app", "on", &password, "~*", "&*", "+@all",
    ];
    redis.cli(&setuser).await.unwrap();
    let tls = TlsOptions::from_files(Some(&certs.ca_file()), None, None).unwrap();
    let plain = with_user(&redis.url(), "app", PASSWORD);
    let secure = with_user(&redis.tls_url().unwrap(), "app", PASSWORD);
    for url in [plain, secure] {
        let mut opts = relaxed(vec![url.clone()]);
        opts.access.tls = tls.clone();
        let mut lua = Vec::new();
        let mut pipelined = Vec::new();
        for _ in 0..2 {
            lua.push(RedisLuaStore::connect(&opts).await.unwrap());
            pipelined.push(RedisPipelinedStore::connect(&opts).await.unwrap());
        }
        conformance::exact_under_concurrency(&lua, 60).await;
        conformance::exact_under_concurrency(&pipelined, 60).await;
        let users = users(&redis).await;
        assert!(
            users.iter().filter(|u| *u == "app").count() >= 4,
            "{url}: {users:?}"
        );

        let wrong = RedisOptions {
            urls: vec![url.replace(PASSWORD, "not-the-password")],
            ..opts.clone()
        };
        for message in [
            refusal(RedisLuaStore::connect(&wrong).await),
            refusal(RedisPipelinedStore::connect(&wrong).await),
        ] {
            assert!(message.contains("refused the credentials"), "{message}");
            assert!(message.contains("://app:***@127.0.0.1:"), "{message}");
            assert!(message.contains("store.urls"), "{message}");
            assert!(!message.contains("not-the-password"), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_scripting_is_refused_at_connect_and_a_revoked_one_fails_calls() {
    let redis = RedisServer::start().unwrap();
    let setuser = [
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+ping",
    ];
    redis.cli(&setuser).await.unwrap();
    let reader = relaxed(vec![with_user(&redis.url(), "reader", "pw")]);
    let message = refusal(RedisLuaStore::connect(&reader).await);
    assert!(message.contains("lacks a permission"), "{message}");
    assert!(message.contains("script|load"), "{message}");

    // The password changes while the store runs: calls fail as
    // unavailable (so the breaker backs off and `on_error` applies), and
    // the error never shows a password.
    let password = format!(">{PASSWORD}");
    let setuser = [
        "ACL", "SETUSER", "app", "on", &password, "~*", "&*", "+@all",
    ];
    redis.cli(&setuser).await.unwrap();
    let opts = relaxed(vec![with_user(&redis.url(), "app", PASSWORD)]);
    let store = RedisLuaStore::connect(&opts).await.unwrap();
    let quota = Quota::new(10, 1.0).unwrap();
    let key = conformance::unique_key("rotated");
    assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);
    let rotate = ["ACL", "SETUSER", "app", "resetpass", ">rotated"];
    redis.cli(&rotate).await.unwrap();
    redis.cli(&["CLIENT", "KILL", "USER", "app"]).await.unwrap();
    // The first call may see the killed connection; the reconnects are refused.
    let mut refused = 0;
    for _ in 0..3 {
        match store.acquire(&key, &quota, 1).await {
            Err(StoreError::Unavailable(e)) => {
                refused += usize::from(e.contains("authentication failed"));
                assert!(!e.contains(PASSWORD) && !e.contains("rotated"), "{e}");
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    assert!(refused >= 2, "{refused} of 3 calls named the refused login");
}
