//! The two nginx roles of a perf run: the static JSON backend every target
//! forwards to, and `proxy_pass` with upstream keep-alive (the ceiling).
//!
//! Each runs `worker_processes auto` (one per core, like the gateway's
//! per-core runtimes) from a temp prefix dir, and is stopped by its
//! master's pid: SIGTERM, so the workers exit with it.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rateguard_testkit::{free_port, wait_for_port, ChildGuard, TestkitError};
use tempfile::TempDir;

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

/// A running nginx on 127.0.0.1.
#[derive(Debug)]
pub struct NginxProcess {
    child: ChildGuard,
    addr: SocketAddr,
    _dir: TempDir,
}

impl NginxProcess {
    /// Starts nginx as `role` on a free port and waits until it accepts.
    pub fn start(role: Role) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-perf-nginx")
            .tempdir()?;
        // Run as root, the workers run as `nobody` and must reach the dir.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, config(role, addr))?;
        let log = fs::File::create(dir.path().join("error.log"))?;
        let child = Command::new(nginx_path())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process on;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(ChildGuard::new)
            .map_err(|e| rateguard_testkit::nginx::NGINX.spawn_error(e))?;
        let mut nginx = Self {
            child,
            addr,
            _dir: dir,
        };
        match wait_for_port(addr, Duration::from_secs(10)) {
            Ok(()) if nginx.child.is_running() => Ok(nginx),
            _ => {
                let log = fs::read_to_string(nginx._dir.path().join("error.log"));
                Err(TestkitError::NotReady {
                    what: format!("nginx ({role:?}) on {addr}"),
                    timeout: Duration::from_secs(10),
                    detail: format!("; error.log: {}", log.unwrap_or_default().trim()),
                })
            }
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The master's pid (its workers are its children).
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        if !self.child.is_running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// nginx's config for `role` on `addr`.
fn config(role: Role, addr: SocketAddr) -> String {
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
         client_body_temp_path tmp_body;\n  proxy_temp_path tmp_proxy;\n  \
         fastcgi_temp_path tmp_fastcgi;\n  uwsgi_temp_path tmp_uwsgi;\n  scgi_temp_path tmp_scgi;\n  \
         {upstream}\n  \
         server {{\n    listen {addr} reuseport backlog=4096;\n    \
         location / {{\n        {location}\n    }}\n  }}\n}}\n"
    )
}

/// `$RATEGUARD_NGINX`, else Debian's `/usr/sbin/nginx`, else `nginx` on PATH.
fn nginx_path() -> PathBuf {
    let nginx = rateguard_testkit::nginx::NGINX;
    if std::env::var_os(nginx.env).is_some() {
        return nginx.path();
    }
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() {
        sbin.to_owned()
    } else {
        nginx.path()
    }
}
