//! [`RedisServer`] and [`RedisCluster`]: real `redis-server` processes on
//! free loopback ports, each in its own temp dir, stopped by pid on drop,
//! queried through redis-rs.
//!
//! A TLS server ([`RedisTls`]) listens on two ports: the TLS port, for the
//! client under test (`tls_url`), and a plain one that only the harness
//! uses (readiness, `cli`), so its queries need no certificates.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{block_on, free_port, Binary, ChildGuard, Signal, TestCerts, TestkitError};

mod cluster;
mod query;
mod sentinel;

pub use cluster::RedisCluster;
pub use sentinel::{SentinelSet, MASTER_NAME};

/// `redis-server`, overridable with `RATEGUARD_REDIS_SERVER`.
pub const REDIS_SERVER: Binary = Binary {
    name: "redis-server",
    env: "RATEGUARD_REDIS_SERVER",
    package: "redis-server",
};

/// `redis-cli`, overridable with `RATEGUARD_REDIS_CLI`; only
/// `redis-cli --cluster create` is run (queries go through redis-rs).
pub const REDIS_CLI: Binary = Binary {
    name: "redis-cli",
    env: "RATEGUARD_REDIS_CLI",
    package: "redis-tools",
};

/// How long a server may take to answer `PING` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is probed.
const POLL: Duration = Duration::from_millis(10);
/// Attempts at picking a free port (another process may grab it first).
const PORT_ATTEMPTS: usize = 5;

/// Whether a TLS server asks its clients for a certificate (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// Verified if presented, not required.
    Optional,
    /// Required: mutual TLS.
    Required,
}

/// TLS for a harness server: the certificates of a [`TestCerts`], and
/// whether clients must present one.
#[derive(Debug, Clone)]
pub struct RedisTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_certs: ClientCerts,
}

impl RedisTls {
    /// Serves `certs`' server certificate, trusting `certs`' CA for clients.
    pub fn new(certs: &TestCerts, client_certs: ClientCerts) -> Self {
        Self {
            ca: certs.ca_file(),
            cert: certs.server_cert_file(),
            key: certs.server_key_file(),
            client_certs,
        }
    }

    /// The server's arguments for TLS on `tls_port` (beside its plain port).
    pub(crate) fn args(&self, tls_port: u16) -> Vec<String> {
        let auth = match self.client_certs {
            ClientCerts::Optional => "optional",
            ClientCerts::Required => "yes",
        };
        let path = |p: &Path| p.display().to_string();
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            path(&self.cert),
            "--tls-key-file".into(),
            path(&self.key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            auth.into(),
        ]
    }
}

/// One standalone `redis-server` on 127.0.0.1, no persistence.
///
/// ```no_run
/// # async fn demo() {
/// let redis = rateguard_testkit::RedisServer::start().unwrap();
/// assert_eq!(redis.cli(&["PING"]).await.unwrap(), "PONG");
/// # }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    port: u16,
    tls_port: Option<u16>,
    /// Arguments beyond the defaults, kept for `restart`.
    args: Vec<String>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(None, &[])
    }

    /// Starts a server that also serves TLS on a second free port
    /// ([`tls_url`](Self::tls_url)).
    pub fn start_tls(tls: &RedisTls) -> Result<Self, TestkitError> {
        Self::start_with(Some(tls), &[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g.
    /// `--replicaof 127.0.0.1 6379`), and TLS if `tls`.
    pub fn start_with(tls: Option<&RedisTls>, extra: &[String]) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-redis")
            .tempdir()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let tls_port = tls.map(|_| free_port());
            let mut args = extra.to_vec();
            if let (Some(tls), Some(tls_port)) = (tls, tls_port) {
                args.extend(tls.args(tls_port));
            }
            let mut child = spawn_redis(dir.path(), port, &args)?;
            match wait_ready(&mut child, port, dir.path(), START_TIMEOUT) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        port,
                        tls_port,
                        args,
                        dir,
                    })
                }
                // The port was taken between `free_port` and the bind: retry.
                Err(e) if !child.is_running() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The TLS port, if the server serves TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The client URL of the TLS port, `rediss://127.0.0.1:port`
    /// (`None` without TLS).
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("rediss://127.0.0.1:{p}"))
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address, `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The client URL, `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The server's working dir (holds `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is still running (a frozen one is).
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Kills the server (SIGKILL by pid) and waits for it to exit.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        Ok(self.child.kill()?)
    }

    /// Freezes the server (SIGSTOP by pid): connections stay open, nothing
    /// answers, until [`thaw`](Self::thaw).
    pub fn freeze(&mut self) -> Result<(), TestkitError> {
        Ok(self.child.signal(Signal::SIGSTOP)?)
    }

    /// Lets a [frozen](Self::freeze) server run again (SIGCONT by pid).
    pub fn thaw(&mut self) -> Result<(), TestkitError> {
        Ok(self.child.signal(Signal::SIGCONT)?)
    }

    /// Starts the server again on the same port and dir (killing it first if
    /// it still runs) and waits until it answers `PING`. Data is not kept.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.child.kill()?;
        self.child = spawn_redis(self.dir.path(), self.port, &self.args)?;
        wait_ready(&mut self.child, self.port, self.dir.path(), START_TIMEOUT)
    }

    /// Sends one command (`["GET", "k"]`) and returns the reply as trimmed
    /// text, the way `redis-cli` prints it (nil: empty; arrays: one item a
    /// line); an error reply is [`TestkitError::Query`].
    pub async fn cli(&self, args: &[&str]) -> Result<String, TestkitError> {
        query::command(self.port, args).await
    }

    /// [`cli`](Self::cli) for synchronous callers.
    pub fn blocking_cli(&self, args: &[&str]) -> Result<String, TestkitError> {
        block_on(self.cli(args))
    }
}

fn log_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("redis-{port}.log"))
}

fn spawn_redis(dir: &Path, port: u16, extra: &[String]) -> Result<ChildGuard, TestkitError> {
    let mut cmd = REDIS_SERVER.command();
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(log_path(dir, port))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    REDIS_SERVER.spawn(&mut cmd)
}

/// Polls `PING` until `PONG`, failing early (with the log's tail) if the
/// process exits.
fn wait_ready(
    child: &mut ChildGuard,
    port: u16,
    dir: &Path,
    timeout: Duration,
) -> Result<(), TestkitError> {
    let deadline = Instant::now() + timeout;
    block_on(async {
        loop {
            if query::command(port, &["PING"])
                .await
                .is_ok_and(|r| r == "PONG")
            {
                return Ok(());
            }
            let exited = !child.is_running();
            if exited || Instant::now() >= deadline {
                let log = std::fs::read_to_string(log_path(dir, port)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let state = if exited { "exited" } else { "running" };
                return Err(TestkitError::NotReady {
                    what: format!("redis-server on 127.0.0.1:{port} ({state})"),
                    timeout,
                    detail: format!("; log tail: {}", tail.join(" | ")),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

#[cfg(test)]
mod tests;
