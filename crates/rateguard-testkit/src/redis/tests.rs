use std::net::TcpStream;

use super::*;

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

#[test]
fn server_starts_answers_and_its_port_closes_when_killed() {
    let mut redis = RedisServer::start().unwrap();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(redis.blocking_cli(&["PING"]).unwrap(), "PONG");
    assert!(redis.pid() > 0);
    redis.kill().unwrap();
    assert!(!redis.is_running());
    assert!(!port_open(redis.port()));
}

#[test]
fn restart_comes_back_on_the_same_port_without_data() {
    let mut redis = RedisServer::start().unwrap();
    let (port, pid) = (redis.port(), redis.pid());
    assert_eq!(redis.blocking_cli(&["SET", "k", "v"]).unwrap(), "OK");
    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), pid);
    assert_eq!(redis.blocking_cli(&["GET", "k"]).unwrap(), "");
    assert_eq!(redis.blocking_cli(&["PING"]).unwrap(), "PONG");
}

#[tokio::test]
async fn a_frozen_server_answers_nothing_until_thawed() {
    let mut redis = RedisServer::start().unwrap();
    redis.freeze().unwrap();
    assert!(redis.is_running(), "stopped, not gone");
    let ping = tokio::time::timeout(Duration::from_millis(300), redis.cli(&["PING"]));
    assert!(ping.await.is_err(), "a frozen server does not answer");
    redis.thaw().unwrap();
    assert_eq!(redis.cli(&["PING"]).await.unwrap(), "PONG");
    redis.kill().unwrap();
    assert!(redis.freeze().is_err(), "no signal to an exited process");
}

#[test]
fn error_replies_are_errors() {
    let redis = RedisServer::start().unwrap();
    let err = redis.blocking_cli(&["NO-SUCH-COMMAND"]).unwrap_err();
    assert!(matches!(err, TestkitError::Query { .. }), "{err}");
    assert!(err.to_string().contains("NO-SUCH-COMMAND"), "{err}");
}

#[test]
fn drop_stops_the_server() {
    let redis = RedisServer::start().unwrap();
    let port = redis.port();
    let dir = redis.dir().to_path_buf();
    drop(redis);
    assert!(!port_open(port));
    assert!(!dir.exists());
}

#[test]
fn missing_binary_error_says_what_to_install() {
    let missing = Binary {
        name: "redis-server-that-does-not-exist",
        env: "RATEGUARD_TESTKIT_NO_SUCH_VAR",
        package: "redis-server",
    };
    let err = missing
        .spawn(&mut missing.command())
        .expect_err("no such binary");
    assert_eq!(
        err.to_string(),
        "redis-server-that-does-not-exist not found on PATH; install it with: \
         apt-get install redis-server (or set RATEGUARD_TESTKIT_NO_SUCH_VAR to its path)"
    );
}

#[test]
fn cluster_of_three_masters_serves_every_slot_and_survives_a_node_restart() {
    assert!(matches!(
        RedisCluster::start(2),
        Err(TestkitError::Invalid(_))
    ));
    let mut cluster = RedisCluster::start(3).unwrap();
    assert_eq!(cluster.urls().len(), 3);
    assert_eq!(cluster.node_pids().len(), 3);
    let info = cluster.blocking_cli(0, &["CLUSTER", "INFO"]).unwrap();
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
    let port = cluster.ports()[1];
    cluster.kill_node(1).unwrap();
    assert!(!port_open(port));
    cluster.restart_node(1).unwrap();
    assert!(port_open(port));
    let info = cluster.blocking_cli(1, &["CLUSTER", "INFO"]).unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
}

#[test]
fn a_cluster_behind_delay_proxies_announces_the_proxies() {
    let net = crate::DelayNet::new(Duration::ZERO);
    let proxied = std::sync::Mutex::new(Vec::new());
    let cluster = RedisCluster::start_announcing(3, |port| {
        let proxy = net.proxy(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        proxied.lock().unwrap().push(proxy.port());
        Ok(proxy.port())
    })
    .unwrap();
    let proxied = proxied.into_inner().unwrap();
    assert_eq!(proxied.len(), 3);
    // Clients learn the proxies' ports from the slot map ...
    let slots = cluster.blocking_cli(0, &["CLUSTER", "SLOTS"]).unwrap();
    for port in &proxied {
        assert!(slots.contains(&port.to_string()), "{slots}");
    }
    for port in cluster.ports() {
        assert!(!slots.lines().any(|l| l == port.to_string()), "{slots}");
    }
    // ... and through a proxy the node answers as itself.
    let via_proxy = block_on(query::command(proxied[0], &["PING"])).unwrap();
    assert_eq!(via_proxy, "PONG");
}
