//! SIGTERM and SIGINT: stop accepting, let in-flight requests finish, and
//! never wait longer than `server.shutdown_grace_ms`. Synchronised on the
//! mock backend's counters (a request it holds), never on sleeps.

use std::time::{Duration, Instant};

use rateguard_testkit::{GatewayProcess, MockBackend, Signal};

use crate::support::*;

fn replica(grace_ms: u64) -> (MockBackend, GatewayProcess) {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let server = format!("shutdown_grace_ms = {grace_ms}");
    let text = config_text(
        backend.addr(),
        &server,
        "kind = \"memory\"",
        &default_policy(5),
    );
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    (backend, gw)
}

/// Starts `GET /held?hold=<id>` through `gw` and waits until the backend holds it.
async fn held_request(
    gw: &GatewayProcess,
    backend: &MockBackend,
    id: &str,
) -> tokio::task::JoinHandle<Result<Reply, String>> {
    let url = format!("{}/held?hold={id}", gw.url());
    let task = tokio::spawn(async move {
        try_get(&client_from("127.0.0.2"), &url, &[("x-api-key", "d")]).await
    });
    backend_stats(backend, "held=1").await;
    task
}

/// Waits until `addr` refuses connections, for at most 5 s.
pub(crate) async fn wait_refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn drains_in_flight_requests_on(signal: Signal) {
    let (backend, mut gw) = replica(10_000);
    let in_flight = held_request(&gw, &backend, "drain").await;
    gw.signal(signal).unwrap();
    wait_refused(gw.addr()).await;
    assert!(gw.is_running(), "{signal}: still draining the held request");
    release(&backend, "drain").await;
    let reply = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(reply.status, 200, "{signal}");
    assert!(
        gw.wait_exit(Duration::from_secs(5)),
        "{signal}: exits by itself after draining"
    );
    let log = gw.log();
    assert!(
        log.contains("Shutdown requested; draining in-flight requests."),
        "{log}"
    );
    assert!(log.contains("Gateway stopped."), "{log}");
    assert!(!log.contains("grace period over"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    drains_in_flight_requests_on(Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_requests() {
    drains_in_flight_requests_on(Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_the_drain() {
    const GRACE_MS: u64 = 500;
    let (backend, mut gw) = replica(GRACE_MS);
    // Never released: only the grace period ends it.
    let in_flight = held_request(&gw, &backend, "forever").await;
    let start = Instant::now();
    gw.signal(Signal::SIGTERM).unwrap();
    assert!(
        gw.wait_exit(Duration::from_secs(10)),
        "exits once the grace period is over"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(GRACE_MS),
        "left after {elapsed:?}, before the grace period"
    );
    assert!(
        in_flight.await.unwrap().is_err(),
        "the held request is cut, not answered"
    );
    let log = gw.log();
    assert!(
        log.contains("Shutdown grace period over; dropping open connections."),
        "{log}"
    );
}
