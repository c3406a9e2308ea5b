//! The `nginx-limit-req` reference: an nginx config that enforces the
//! lab's policies with NGINX's own `limit_req` (one zone per policy, keyed
//! by the API key) and proxies to the backends' balancer, in place of the
//! gateways.
//!
//! `limit_req` with `burst = B nodelay` admits `B + 1` requests at once and
//! then `rate` per second: the token bucket of capacity `C` is
//! `burst = C - 1`. NGINX takes whole requests per second or per minute, so
//! a refill below 1/s is rounded to whole requests per minute (at least
//! one). Its zones live in one instance's shared memory: N nginx instances
//! would each admit the limit, like the memory store's N replicas.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rateguard_contract::{headers, LimitKey, RawPolicy};

/// `limit_req`'s rate for a refill of `per_sec` tokens per second.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1.0 {
        format!("{}r/s", per_sec.round() as u64)
    } else {
        format!("{}r/m", ((per_sec * 60.0).round() as u64).max(1))
    }
}

/// The zone name of a policy (nginx names: letters, digits, `_`).
fn zone(policy: &RawPolicy) -> String {
    policy
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The whole nginx.conf: listening on 127.0.0.1:`port`, limiting each of
/// `policies` (a policy without a prefix limits `/`), proxying to `upstream`.
pub fn conf(port: u16, policies: &[RawPolicy], upstream: SocketAddr) -> String {
    // nginx variables name headers lowercased with `-` as `_`.
    let key = format!("$http_{}", headers::DEFAULT_API_KEY.replace('-', "_"));
    let mut zones = String::new();
    let mut locations = String::new();
    for p in policies {
        // The reference keys by the API key: it enforces each policy's
        // per-client limit (the lab's policies have exactly one).
        let limits = p.limit_list();
        let Some(limit) = limits
            .iter()
            .find(|l| l.key == LimitKey::Client)
            .or(limits.first())
        else {
            continue;
        };
        let z = zone(p);
        let _ = writeln!(
            zones,
            "    limit_req_zone {key} zone={z}:32m rate={};",
            rate(limit.refill_per_sec)
        );
        let location = match &p.path_prefix {
            Some(prefix) => format!("{}/", prefix.trim_end_matches('/')),
            None => "/".to_owned(),
        };
        let _ = write!(
            locations,
            "        location {location} {{\n            limit_req zone={z} burst={} nodelay;\n            proxy_pass http://backends;\n        }}\n",
            (limit.capacity - 1).max(0)
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

    limit_req_status 429;
{zones}
    upstream backends {{
        server {upstream};
        keepalive 256;
        keepalive_requests 100000;
        keepalive_timeout 60s;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 100000;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Host $http_host;
        proxy_request_buffering off;
        proxy_buffering off;
{locations}    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_becomes_a_zone_with_burst_capacity_minus_one() {
        let policies = [
            RawPolicy::new("default", 1_000_000_000, 1_000_000.0),
            RawPolicy {
                path_prefix: Some("/burst".into()),
                ..RawPolicy::new("burst", 50, 0.01)
            },
        ];
        let conf = conf(8080, &policies, "127.0.0.1:9000".parse().unwrap());
        assert!(
            conf.contains("limit_req_zone $http_x_api_key zone=burst:32m rate=1r/m;"),
            "{conf}"
        );
        assert!(
            conf.contains("location /burst/ {\n            limit_req zone=burst burst=49 nodelay;"),
            "{conf}"
        );
        assert!(conf.contains("zone=default:32m rate=1000000r/s"), "{conf}");
        assert!(conf.contains("location / {"), "{conf}");
        assert!(conf.contains("listen 127.0.0.1:8080"), "{conf}");
        assert_eq!(rate(10.0), "10r/s");
        assert_eq!(rate(0.5), "30r/m");
    }
}
