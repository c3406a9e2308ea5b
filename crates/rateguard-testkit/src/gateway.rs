//! [`GatewayProcess`] and [`MockBackend`]: the built `rateguard` binary run
//! as real processes on free loopback ports, for multi-replica tests and the
//! lab. The caller passes the binary's path (in the `rateguard` crate's
//! tests, `env!("CARGO_BIN_EXE_rateguard")`), so this crate depends on no
//! product crate.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{block_on, free_port, http_get, wait_for_port, ChildGuard, Signal, TestkitError};

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `/healthz` is probed while a replica starts.
const HEALTH_POLL: Duration = Duration::from_millis(20);
const PORT_ATTEMPTS: usize = 5;

/// One `rateguard serve` replica.
#[derive(Debug)]
pub struct GatewayProcess {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    dir: TempDir,
}

impl GatewayProcess {
    /// Runs `binary serve --config <tempfile>` with `config_toml`, on free
    /// ports (`--listen` and `RATEGUARD_SERVER_ADMIN_LISTEN` override the
    /// file's), and waits until `/healthz` answers 200.
    pub fn start(binary: &Path, config_toml: &str) -> Result<Self, TestkitError> {
        Self::start_with_env(binary, config_toml, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub fn start_with_env(
        binary: &Path,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        Self::start_subcommand(binary, "serve", config_toml, env)
    }

    /// Like [`start_with_env`](Self::start_with_env) for another subcommand
    /// that takes `--config` and `--listen` and serves `/healthz` on
    /// `server.admin_listen` (`rls`: the Envoy Rate Limit Service).
    pub fn start_subcommand(
        binary: &Path,
        subcommand: &str,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new().prefix("rateguard-gw").tempdir()?;
            let config = dir.path().join("rateguard.toml");
            fs::write(&config, config_toml)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let admin_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let log = fs::File::create(dir.path().join("gateway.log"))?;
            let mut cmd = Command::new(binary);
            cmd.arg(subcommand)
                .arg("--config")
                .arg(&config)
                .arg("--listen")
                .arg(addr.to_string())
                .env("RATEGUARD_SERVER_ADMIN_LISTEN", admin_addr.to_string())
                .envs(env.iter().copied())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            let child = ChildGuard::new(cmd.spawn()?);
            let mut gw = GatewayProcess {
                child,
                addr,
                admin_addr,
                dir,
            };
            match wait_healthy(&mut gw.child, admin_addr, START_TIMEOUT) {
                Ok(()) => return Ok(gw),
                Err(err) => {
                    let log = gw.log();
                    let err = TestkitError::NotReady {
                        what: format!("rateguard {subcommand} on {addr}"),
                        timeout: START_TIMEOUT,
                        detail: format!("; {err}; log: {}", log.trim()),
                    };
                    if log.contains("Address already in use") {
                        last = Some(err);
                        continue;
                    }
                    return Err(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no port attempts".into())))
    }

    /// Public address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<public address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Admin address (`/healthz`, `/metrics`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// The config file the process was started with (rewrite it and send
    /// `SIGHUP` to reload).
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("rateguard.toml")
    }

    /// Everything the process logged (stderr) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// `GET path` on the admin port: (status, body).
    pub async fn admin_get(&self, path: &str) -> Result<(u16, String), TestkitError> {
        http_get(self.admin_addr, path).await
    }

    /// Sends `signal` to the process by its pid (e.g. SIGINT, SIGSTOP).
    pub fn signal(&mut self, signal: Signal) -> io::Result<()> {
        self.child.signal(signal)
    }

    /// Waits up to `timeout` for the process to exit; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.child.wait_exit(timeout)
    }

    /// Sends SIGTERM (by pid) and waits up to `timeout` for a clean exit;
    /// returns whether it exited by itself (else it is killed).
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.child.terminate(timeout)
    }

    /// Kills the process (SIGKILL by pid).
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }
}

/// One `rateguard mock-backend` process.
#[derive(Debug)]
pub struct MockBackend {
    child: ChildGuard,
    addr: SocketAddr,
}

impl MockBackend {
    /// Runs `binary mock-backend --listen <free port> --name <name>` and waits
    /// until it accepts connections.
    pub fn start(binary: &Path, name: &str) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let mut cmd = Command::new(binary);
            cmd.arg("mock-backend")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--name")
                .arg(name)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = ChildGuard::new(cmd.spawn()?);
            match wait_for_port(addr, START_TIMEOUT) {
                Ok(()) if child.is_running() => return Ok(Self { child, addr }),
                Ok(()) => {
                    last = Some(TestkitError::NotReady {
                        what: format!("mock backend on {addr}"),
                        timeout: START_TIMEOUT,
                        detail: "; it exited (port taken?)".into(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no port attempts".into())))
    }

    /// Listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Kills the process.
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }
}

/// Polls `/healthz` until it answers 200, failing early if the process exits.
fn wait_healthy(
    child: &mut ChildGuard,
    admin: SocketAddr,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    // `None`: healthy; `Some(why)`: gave up.
    let outcome = block_on(async {
        loop {
            if !child.is_running() {
                return Ok(Some("process exited"));
            }
            if let Ok((200, _)) = http_get(admin, "/healthz").await {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Ok(Some("no 200 from /healthz"));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    });
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(why.to_owned()),
        Err(e) => Err(e.to_string()),
    }
}
