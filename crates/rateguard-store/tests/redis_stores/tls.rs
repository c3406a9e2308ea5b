//! The three Redis stores over TLS (`rediss://`), against real TLS servers
//! the testkit starts with a CA generated in the test: exact limits (a
//! `tls-cluster yes` Redis Cluster for `fred-cluster`, reached through one
//! seed, so the other nodes come from `CLUSTER SLOTS`), mutual TLS, a wrong
//! CA refused at connect with a clear message, and the explicit opt-out.

use rateguard_store::conformance;
use rateguard_store::{
    BucketStore, FredClusterStore, Quota, RedisLuaStore, RedisOptions, RedisPipelinedStore,
    StoreError, TlsOptions,
};
use rateguard_testkit::{ClientCerts, RedisCluster, RedisServer, RedisTls, TestCerts};

use crate::relaxed;

/// Options for `urls`, trusting `certs`' CA (and presenting its client
/// certificate when `mutual`).
fn tls_opts(urls: Vec<String>, certs: &TestCerts, mutual: bool) -> RedisOptions {
    let (cert, key) = (certs.client_cert_file(), certs.client_key_file());
    let identity = mutual.then_some((cert.as_path(), key.as_path()));
    let mut opts = relaxed(urls);
    opts.access.tls = TlsOptions::from_files(
        Some(&certs.ca_file()),
        identity.map(|(c, _)| c),
        identity.map(|(_, k)| k),
    )
    .expect("the generated files are valid");
    opts
}

fn tls_server(certs: &TestCerts, client_certs: ClientCerts) -> (RedisServer, String) {
    let redis = RedisServer::start_tls(&RedisTls::new(certs, client_certs))
        .expect("start redis-server with TLS (Debian's is built with it)");
    let url = redis.tls_url().expect("a TLS port");
    (redis, url)
}

async fn three<S, Fut>(connect: impl Fn() -> Fut) -> Vec<S>
where
    Fut: std::future::Future<Output = Result<S, StoreError>>,
{
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(connect().await.expect("connect over TLS"));
    }
    stores
}

fn refused(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Backend(message)) => message,
        other => panic!("expected a refusal at connect, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_stores_are_exact_over_tls_and_over_mutual_tls() {
    let certs = TestCerts::generate().unwrap();
    for (client_certs, mutual) in [
        (ClientCerts::Optional, false),
        (ClientCerts::Required, true),
    ] {
        let (_redis, url) = tls_server(&certs, client_certs);
        let opts = tls_opts(vec![url], &certs, mutual);
        let lua = three(|| RedisLuaStore::connect(&opts)).await;
        lua[0].ping().await.unwrap();
        conformance::exact_under_concurrency(&lua, 60).await;
        let pipelined = three(|| RedisPipelinedStore::connect(&opts)).await;
        conformance::exact_under_concurrency(&pipelined, 60).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_a_missing_client_certificate_fails_at_connect_naming_tls() {
    let certs = TestCerts::generate().unwrap();
    let other = TestCerts::generate().unwrap();
    let (_redis, url) = tls_server(&certs, ClientCerts::Optional);
    let wrong_ca = tls_opts(vec![url.clone()], &other, false);
    for message in [
        refused(RedisLuaStore::connect(&wrong_ca).await),
        refused(RedisPipelinedStore::connect(&wrong_ca).await),
    ] {
        assert!(
            message.contains("TLS handshake with rediss://127.0.0.1:"),
            "{message}"
        );
        assert!(message.contains("UnknownIssuer"), "{message}");
        assert!(message.contains("store.tls_ca_file"), "{message}");
    }

    // `tls_insecure_skip_verify` is the explicit way around it.
    let mut insecure = wrong_ca.clone();
    insecure.access.tls = insecure.access.tls.clone().skip_verify(true);
    let store = RedisLuaStore::connect(&insecure).await.unwrap();
    let quota = Quota::new(1, 0.001).unwrap();
    let key = conformance::unique_key("insecure");
    assert!(store.acquire(&key, &quota, 1).await.unwrap().allowed);

    let (_mtls, mtls_url) = tls_server(&certs, ClientCerts::Required);
    let without_cert = tls_opts(vec![mtls_url], &certs, false);
    let message = refused(RedisLuaStore::connect(&without_cert).await);
    assert!(message.contains("TLS handshake"), "{message}");
    assert!(message.contains("store.tls_cert_file"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fred_cluster_is_exact_over_mutual_tls_to_every_node_as_an_acl_user() {
    let certs = TestCerts::generate().unwrap();
    let cluster = RedisCluster::start_tls(3, &RedisTls::new(&certs, ClientCerts::Required))
        .expect("start a 3-master Redis Cluster with tls-cluster yes");
    for i in 0..3 {
        let setuser = ["ACL", "SETUSER", "app", "on", ">pw-1", "~*", "&*", "+@all"];
        cluster.cli(i, &setuser).await.unwrap();
    }
    // One seed: the other two nodes are learnt from `CLUSTER SLOTS` (their
    // TLS ports, since the seed is asked over TLS), and authenticated as
    // the seed URL's user.
    let seed_url = cluster.tls_urls()[0].replace("rediss://", "rediss://app:pw-1@");
    let seed = vec![seed_url.clone()];
    let opts = tls_opts(seed.clone(), &certs, true);
    let stores = three(|| FredClusterStore::connect(&opts)).await;
    conformance::exact_under_concurrency(&stores, 60).await;
    let quota = Quota::new(3, 0.001).unwrap();
    for i in 0..12 {
        let key = conformance::unique_key(&format!("tls-slot{i}"));
        for n in 0..4 {
            let allowed = stores[n % 3]
                .acquire(&key, &quota, 1)
                .await
                .unwrap()
                .allowed;
            assert_eq!(allowed, n < 3, "key {i}, request {n}");
        }
    }
    let mut holding = 0;
    for i in 0..3 {
        let keys = cluster.cli(i, &["DBSIZE"]).await.unwrap();
        holding += usize::from(keys.parse::<u64>().unwrap() > 0);
    }
    assert_eq!(holding, 3, "every master decided keys, over TLS");

    for i in 0..3 {
        let clients = cluster.cli(i, &["CLIENT", "LIST"]).await.unwrap();
        assert!(clients.contains("user=app"), "node {i}: {clients}");
    }

    let other = TestCerts::generate().unwrap();
    let message = refused(FredClusterStore::connect(&tls_opts(seed, &other, true)).await);
    assert!(message.contains("TLS handshake"), "{message}");
    assert!(message.contains("store.tls_ca_file"), "{message}");
    let wrong = vec![seed_url.replace("pw-1", "pw-2")];
    let message = refused(FredClusterStore::connect(&tls_opts(wrong, &certs, true)).await);
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(message.contains("rediss://app:***@"), "{message}");
    assert!(!message.contains("pw-2"), "{message}");
}
