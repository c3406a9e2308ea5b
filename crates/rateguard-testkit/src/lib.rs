//! Real processes for tests: `redis-server`, a Redis Cluster (and, later,
//! `nginx` and gateway replicas), each on free loopback ports in a temp dir.
//!
//! # Layout
//! - this file: the shared helpers ([`free_port`], [`wait_for_port`],
//!   [`ChildGuard`], [`Binary`], [`TestkitError`]);
//! - [`redis`]: [`RedisServer`] and [`RedisCluster`];
//! - [`nginx`]: [`Nginx`], rendered from `compose/nginx.conf.template`;
//! - [`gateway`]: [`GatewayProcess`] and [`MockBackend`] (the `rateguard` binary).
//! - [`envoy`]: [`Envoy`], a real Envoy rate-limiting through `rateguard rls`.
//!
//! # Rules
//! Every process is spawned by this crate and stopped by *its own pid* (the
//! [`ChildGuard`] kills and reaps its child on drop), never by name. All
//! servers bind 127.0.0.1 only. The API is synchronous (std::process), so sync
//! and async tests can use it alike.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub mod envoy;
pub mod gateway;
pub mod nginx;
pub mod redis;

pub use envoy::{Envoy, EnvoyOptions};
pub use gateway::{GatewayProcess, MockBackend};
pub use nginx::Nginx;
pub use redis::{RedisCluster, RedisServer};

/// Why the harness could not provide a process.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A required program is not installed (or the override points nowhere).
    #[error("{binary} not found on PATH; install it with: apt-get install {package} (or set {env} to its path)")]
    BinaryNotFound {
        /// The program looked for.
        binary: String,
        /// The Debian package that provides it.
        package: &'static str,
        /// The environment variable that overrides its path.
        env: &'static str,
    },
    /// A process did not become ready in time.
    #[error("{what} not ready after {timeout:?}{detail}")]
    NotReady {
        /// What was waited for (e.g. `redis-server on 127.0.0.1:6379`).
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// Extra context (e.g. the tail of the server's log), may be empty.
        detail: String,
    },
    /// The port a process was asked to listen on is taken.
    #[error("{what}: address already in use")]
    AddrInUse {
        /// What could not bind (e.g. `nginx on 127.0.0.1:8080`).
        what: String,
    },
    /// A helper command ran but failed.
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr/stdout.
        output: String,
    },
    /// The caller asked for something the harness cannot do.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Any other I/O error (temp dirs, sockets, spawning).
    #[error("testkit I/O error: {0}")]
    Io(#[from] io::Error),
}

/// An external program the harness runs, overridable by an environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// Program name looked up on PATH.
    pub name: &'static str,
    /// Environment variable holding an explicit path instead.
    pub env: &'static str,
    /// Debian package to install when it is missing.
    pub package: &'static str,
}

impl Binary {
    /// The program to run: `$env` if set, else `name` (looked up on PATH).
    pub fn path(&self) -> PathBuf {
        std::env::var_os(self.env).map_or_else(|| PathBuf::from(self.name), PathBuf::from)
    }

    /// A [`Command`] for this program.
    pub fn command(&self) -> Command {
        Command::new(self.path())
    }

    /// Maps a spawn error to [`TestkitError::BinaryNotFound`] when the
    /// program is missing, and to [`TestkitError::Io`] otherwise.
    pub fn spawn_error(&self, err: io::Error) -> TestkitError {
        if err.kind() == io::ErrorKind::NotFound {
            TestkitError::BinaryNotFound {
                binary: self.path().display().to_string(),
                package: self.package,
                env: self.env,
            }
        } else {
            TestkitError::Io(err)
        }
    }

    /// Spawns `cmd` (built from [`command`](Self::command)) under a [`ChildGuard`].
    pub fn spawn(&self, cmd: &mut Command) -> Result<ChildGuard, TestkitError> {
        cmd.spawn()
            .map(ChildGuard::new)
            .map_err(|e| self.spawn_error(e))
    }
}

/// A port that was free on 127.0.0.1 a moment ago (bind `:0`, read, drop).
///
/// Another process may take it before the caller binds it; harness servers
/// that fail to start on it are retried on a new port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls a TCP connect to `addr` every 10 ms until it succeeds or `timeout` passes.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<(), TestkitError> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TestkitError::NotReady {
                what: format!("TCP port {addr}"),
                timeout,
                detail: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Owns a child process; kills it (SIGKILL, by its pid) and reaps it on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self {
            child,
            reaped: false,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        if self.reaped {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            _ => {
                self.reaped = true;
                false
            }
        }
    }

    /// Sends SIGKILL to the child and waits for it to exit. Idempotent.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        // Fails only if it already exited; `wait` reaps it either way.
        let _ = self.child.kill();
        self.child.wait()?;
        self.reaped = true;
        Ok(())
    }

    /// The guarded child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
