//! The two nginx roles of a perf run, run by the testkit's [`Nginx`]: the
//! static JSON backend every target forwards to, and `proxy_pass` with
//! upstream keep-alive (the ceiling). Each runs `worker_processes auto`
//! (one per core, like the gateway's per-core runtimes).

use std::net::SocketAddr;

use rateguard_testkit::{Nginx, TestkitError};

/// The body the backend answers every request with.
pub const BODY: &str = r#"{"ok":true,"backend":"nginx"}"#;

/// What an nginx of the run does.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// `return 200` with [`BODY`].
    Backend,
    /// `proxy_pass` to the backend at this address, pooled keep-alive.
    Proxy(SocketAddr),
}

/// Starts nginx as `role` on a free port, once it accepts.
pub fn start(role: Role) -> Result<Nginx, TestkitError> {
    Nginx::start_conf(|port| config(role, port))
}

/// nginx's config for `role` on 127.0.0.1:`port` (paths relative to the
/// testkit's prefix dir).
fn config(role: Role, port: u16) -> String {
    let location = match role {
        Role::Backend => format!("default_type application/json;\n        return 200 '{BODY}';"),
        Role::Proxy(_) => "proxy_pass http://backend;\n        \
             proxy_http_version 1.1;\n        \
             proxy_set_header Connection \"\";\n        \
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
            .to_owned(),
    };
    let upstream = match role {
        Role::Backend => String::new(),
        Role::Proxy(backend) => format!(
            "upstream backend {{\n    server {backend};\n    \
             keepalive 512;\n    keepalive_requests 1000000;\n  }}"
        ),
    };
    format!(
        "worker_processes auto;\n\
         worker_rlimit_nofile 65536;\n\
         pid nginx.pid;\n\
         error_log error.log warn;\n\
         events {{ worker_connections 32768; }}\n\
         http {{\n  access_log off;\n  server_tokens off;\n  \
         keepalive_requests 1000000;\n  \
         client_body_temp_path tmp/body;\n  proxy_temp_path tmp/proxy;\n  \
         fastcgi_temp_path tmp/fastcgi;\n  uwsgi_temp_path tmp/uwsgi;\n  scgi_temp_path tmp/scgi;\n  \
         {upstream}\n  \
         server {{\n    listen 127.0.0.1:{port} reuseport backlog=4096;\n    \
         location / {{\n        {location}\n    }}\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_keeps_upstream_connections_alive() {
        let backend = "127.0.0.1:9".parse().unwrap();
        let conf = config(Role::Proxy(backend), 8);
        assert!(conf.contains("listen 127.0.0.1:8 reuseport"), "{conf}");
        assert!(conf.contains("server 127.0.0.1:9;") && conf.contains("keepalive 512;"));
        assert!(config(Role::Backend, 8).contains(BODY));
    }
}
