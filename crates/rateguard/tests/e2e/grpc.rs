//! gRPC through the deployment: a tonic client → nginx `grpc_pass` → a
//! `rateguard serve` process (h2c listener, `upstream.protocol = "h2c"`) →
//! a tonic `grpc.health.v1` service. The call over the limit is
//! `RESOURCE_EXHAUSTED`, as the gateway answers it, through nginx.

use std::net::SocketAddr;
use std::time::Duration;

use rateguard_testkit::{GatewayProcess, Nginx};
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::*;

/// A tonic `grpc.health.v1` server in this process.
async fn health_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, service) = tonic_health::server::health_reporter();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    addr
}

/// nginx in front of gRPC replicas, as docs/websockets-grpc-ipv6.md shows it.
fn grpc_front(port: u16, replica: SocketAddr) -> String {
    format!(
        r#"worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream rateguard_grpc {{
        server {replica};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://rateguard_grpc;
            grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_through_nginx_grpc_pass_and_the_gateway() {
    let backend = health_server().await;
    let policies = layered_policy("rpc", "", &[("per-ip", "ip", 3)]);
    let text = config_text(backend, "", "kind = \"memory\"", &policies).replace(
        "timeout_ms = 5000\n",
        "timeout_ms = 5000\nprotocol = \"h2c\"\n",
    );
    let gw = GatewayProcess::start(binary(), &text).unwrap();
    let nginx = Nginx::start_conf(|port| grpc_front(port, gw.addr())).expect("nginx");
    let channel = tonic::transport::Channel::from_shared(nginx.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let check = || HealthCheckRequest {
        service: String::new(),
    };
    let call = |client: &mut HealthClient<_>| {
        let mut client = client.clone();
        async move { tokio::time::timeout(Duration::from_secs(10), client.check(check())).await }
    };
    for _ in 0..3 {
        let status = call(&mut client)
            .await
            .expect("answered within 10 s")
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving);
    }
    let denied = call(&mut client)
        .await
        .expect("answered within 10 s")
        .unwrap_err();
    assert_eq!(denied.code(), Code::ResourceExhausted, "{denied:?}");
    assert_eq!(denied.message(), "rate limited by rpc; retry after 1000s");
    assert_eq!(denied.metadata().get("retry-after").unwrap(), "1000");
    assert_eq!(
        metric(
            &gw,
            "rateguard_decisions_total{policy=\"rpc\",limit=\"per-ip\",decision=\"denied\"} "
        )
        .await,
        1.0
    );
    drop(nginx);
}
