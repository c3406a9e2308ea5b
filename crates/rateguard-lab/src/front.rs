//! The front nginx of a deployment: on a free port (the testkit's [`Nginx`])
//! or pinned to a port the user asked for (`rateguard-lab up --port 8080`).
//!
//! The pinned variant renders the same `compose/nginx.conf.template` with
//! the testkit's [`render`], runs nginx under a [`ChildGuard`] and stops it
//! by its master's pid, like [`Nginx`]; it exists only because the testkit
//! always picks the port itself.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rateguard_testkit::nginx::{render, NGINX, TEMPLATE};
use rateguard_testkit::{wait_for_port, ChildGuard, Nginx};
use tempfile::TempDir;

use crate::LabError;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running front nginx; dropping it stops it by pid.
#[derive(Debug)]
pub enum Front {
    /// On a port the testkit picked.
    Free(Nginx),
    /// On the port the user asked for.
    Pinned(PinnedNginx),
}

impl Front {
    /// Starts nginx over `upstreams`: on `port`, or on a free port when it is `None` or 0.
    pub fn start(upstreams: &[SocketAddr], port: Option<u16>) -> Result<Self, LabError> {
        match port {
            None | Some(0) => Ok(Self::Free(Nginx::start(upstreams)?)),
            Some(p) => Ok(Self::Pinned(PinnedNginx::start(upstreams, p)?)),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Free(n) => n.port(),
            Self::Pinned(n) => n.port,
        }
    }

    /// The nginx master's pid.
    pub fn pid(&self) -> u32 {
        match self {
            Self::Free(n) => n.pid(),
            Self::Pinned(n) => n.child.pid(),
        }
    }
}

/// nginx on a fixed 127.0.0.1 port.
#[derive(Debug)]
pub struct PinnedNginx {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl PinnedNginx {
    /// Starts nginx on 127.0.0.1:`port`; fails with [`LabError::PortTaken`]
    /// when something already listens there.
    pub fn start(upstreams: &[SocketAddr], port: u16) -> Result<Self, LabError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if let Err(e) = TcpListener::bind(addr) {
            return Err(LabError::PortTaken { port, reason: e });
        }
        let servers: Vec<String> = upstreams
            .iter()
            .map(|a| format!("server {a} max_fails=3 fail_timeout=5s;"))
            .collect();
        let conf = render(
            TEMPLATE,
            &[
                ("NGINX_LISTEN", addr.to_string()),
                ("NGINX_UPSTREAM_SERVERS", servers.join("\n        ")),
                ("NGINX_RESOLVER", "127.0.0.1".into()),
                ("NGINX_WORKER_PROCESSES", "1".into()),
            ],
        )?;
        let dir = tempfile::Builder::new()
            .prefix("rateguard-front")
            .tempdir()?;
        // Run as root, nginx's workers run as `nobody` and must reach tmp/.
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        }
        fs::create_dir_all(dir.path().join("tmp"))?;
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf)?;
        let log = fs::File::create(dir.path().join("error.log"))?;
        let mut cmd = Command::new(nginx_path());
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg("daemon off; master_process on;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = NGINX.spawn(&mut cmd)?;
        let mut nginx = Self { child, port, dir };
        match wait_for_port(addr, START_TIMEOUT) {
            Ok(()) if nginx.child.is_running() => Ok(nginx),
            _ => {
                let log =
                    fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
                nginx.stop();
                if log.contains("Address already in use") {
                    return Err(LabError::PortTaken {
                        port,
                        reason: std::io::Error::from(std::io::ErrorKind::AddrInUse),
                    });
                }
                Err(LabError::Gateway(format!(
                    "nginx on {addr} did not start: {}",
                    log.trim()
                )))
            }
        }
    }

    /// SIGTERM to the master (by pid) so workers exit with it; SIGKILL after 5 s.
    fn stop(&mut self) {
        if !self.child.is_running() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

impl Drop for PinnedNginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$RATEGUARD_NGINX`, else `/usr/sbin/nginx` when present, else `nginx` on PATH.
fn nginx_path() -> PathBuf {
    if std::env::var_os(NGINX.env).is_some() {
        return NGINX.path();
    }
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        sbin
    } else {
        NGINX.path()
    }
}
