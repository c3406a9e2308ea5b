//! [`RefProxy`]: a running `rateguard-refproxy` (crate `benches/refproxy`),
//! one per reference case, on a free loopback port, stopped by pid.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rateguard_testkit::{free_port, wait_for_port, ChildGuard, TestkitError};

use super::case::{Case, Reference, Target};
use super::PerfError;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running reference proxy.
#[derive(Debug)]
pub struct RefProxy {
    child: ChildGuard,
    addr: SocketAddr,
}

impl RefProxy {
    /// Starts `binary` as `case`'s reference proxy forwarding to `upstream`
    /// (the EVALSHA one deciding on the Redis at `redis_url`), once it accepts.
    pub fn start(
        binary: &Path,
        case: Case,
        upstream: SocketAddr,
        redis_url: Option<&str>,
    ) -> Result<Self, PerfError> {
        let Target::Reference(reference) = case.target else {
            return Err(PerfError::Options(format!("{case} is not a reference")));
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut cmd = Command::new(binary);
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--upstream")
            .arg(upstream.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if reference == Reference::ProxyEvalsha {
            let url = redis_url.ok_or_else(|| PerfError::Options(format!("{case} needs Redis")))?;
            let quota = case
                .quota()
                .ok_or_else(|| PerfError::Options(format!("{case} has no bucket")))?;
            cmd.args(["--redis", url, "--key-prefix", &case.to_string()])
                .arg(format!("--capacity={}", quota.capacity))
                .arg(format!("--interval-us={}", quota.interval_us()));
        }
        let child = cmd.spawn().map(ChildGuard::new).map_err(|e| {
            PerfError::Options(format!(
                "cannot run {} ({e}); build it: cargo build --release -p rateguard-refproxy",
                binary.display()
            ))
        })?;
        let mut proxy = Self { child, addr };
        match wait_for_port(addr, START_TIMEOUT) {
            Ok(()) if proxy.child.is_running() => Ok(proxy),
            _ => Err(TestkitError::NotReady {
                what: format!("{case} ({}) on {addr}", binary.display()),
                timeout: START_TIMEOUT,
                detail: String::new(),
            }
            .into()),
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }
}
