//! The NGINX behind the limiter: it answers the scenarios whose backend is
//! [`BackendKind::Return200`] itself (a fixed JSON body, as `just perf`'s
//! backend does), so a request there costs the backend side little and the
//! limiter's own cost dominates capacity and CPU; every other path it
//! balances round robin over the mock backends, whose replies name them.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rateguard_contract::headers;
use rateguard_lab_model::{BackendKind, ScenarioId};

/// What the `return 200` locations answer.
pub const RETURN_200_BODY: &str = r#"{"ok":true,"backend":"nginx-return-200"}"#;

/// The whole nginx.conf on 127.0.0.1:`port` over the mock backends `mocks`.
pub fn conf(port: u16, mocks: &[SocketAddr]) -> String {
    let mut servers = String::new();
    for addr in mocks {
        let _ = writeln!(
            servers,
            "        server {addr} max_fails=3 fail_timeout=5s;"
        );
    }
    let mut cheap = String::new();
    for scenario in ScenarioId::ALL
        .into_iter()
        .filter(|s| s.backend() == BackendKind::Return200)
    {
        let _ = write!(
            cheap,
            "        location {}/ {{\n            default_type application/json;\n            add_header {} {} always;\n            return 200 '{RETURN_200_BODY}';\n        }}\n",
            scenario.path_prefix(),
            headers::X_BACKEND,
            BackendKind::Return200,
        );
    }
    format!(
        "worker_processes 1;
worker_rlimit_nofile 65536;
pid nginx.pid;
error_log stderr warn;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    server_tokens off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    upstream mocks {{
{servers}        keepalive 256;
        keepalive_requests 100000;
        keepalive_timeout 60s;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 100000;

        location = /nginx-health {{
            return 200 \"ok\\n\";
        }}

{cheap}
        location / {{
            proxy_pass http://mocks;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_paths_answer_themselves_the_rest_goes_to_the_mocks() {
        let conf = conf(
            8081,
            &[
                "127.0.0.1:9001".parse().unwrap(),
                "127.0.0.1:9002".parse().unwrap(),
            ],
        );
        for cheap in [ScenarioId::Capacity, ScenarioId::Throughput] {
            assert!(
                conf.contains(&format!("location {}/ {{", cheap.path_prefix())),
                "{conf}"
            );
        }
        for mock in [ScenarioId::Burst, ScenarioId::Distribution] {
            assert!(!conf.contains(&format!("location {}/", mock.path_prefix())));
        }
        assert!(conf.contains("server 127.0.0.1:9002 max_fails=3"), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:8081"), "{conf}");
        assert!(conf.contains("proxy_pass http://mocks;"));
    }
}
