//! [`Nginx`]: a real nginx, round robin over given upstreams, rendered from
//! the deployment's own `compose/nginx.conf.template`.
//!
//! The template is the file Docker Compose mounts into the official nginx
//! image; here its `${NAME}` placeholders are filled in the same envsubst
//! style, and nginx runs from a temp dir as
//! `nginx -p <dir> -c <dir>/nginx.conf -g 'daemon off; master_process on;'`
//! with its pid file and logs in that dir. It is stopped by its master's pid:
//! SIGTERM (so the workers exit too), then SIGKILL if it lingers.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, wait_for_port, Binary, ChildGuard, TestkitError};

/// `nginx`, overridable with `RATEGUARD_NGINX`; Debian installs it in
/// `/usr/sbin`, which is not always on PATH.
pub const NGINX: Binary = Binary {
    name: "nginx",
    env: "RATEGUARD_NGINX",
    package: "nginx",
};

/// The deployment's template, compiled in so tests need no path at run time.
pub const TEMPLATE: &str = include_str!("../../../compose/nginx.conf.template");

const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the master may take to stop its workers after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: usize = 5;

/// A running nginx on 127.0.0.1.
#[derive(Debug)]
pub struct Nginx {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

/// Fills `${NAME}` placeholders from `vars`; fails on any placeholder left.
pub fn render(template: &str, vars: &[(&str, String)]) -> Result<String, TestkitError> {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    match out.find("${") {
        Some(at) => Err(TestkitError::Invalid(format!(
            "unfilled placeholder in nginx template: {}",
            out[at..].lines().next().unwrap_or("")
        ))),
        None => Ok(out),
    }
}

/// The nginx to run: `$RATEGUARD_NGINX`, else Debian's `/usr/sbin/nginx`
/// (not always on PATH), else `nginx` on PATH.
pub fn program() -> PathBuf {
    if let Some(path) = std::env::var_os(NGINX.env) {
        return PathBuf::from(path);
    }
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.exists() {
        sbin.to_owned()
    } else {
        PathBuf::from(NGINX.name)
    }
}

impl Nginx {
    /// Starts nginx balancing round robin over `upstreams` on a free port and
    /// waits until it accepts.
    pub fn start(upstreams: &[SocketAddr]) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_on(free_port(), upstreams) {
                // Port taken between free_port and bind: retry on another.
                Err(err @ TestkitError::AddrInUse { .. }) => last = Some(err),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no port attempts".into())))
    }

    /// Starts nginx on 127.0.0.1:`port` (a port the caller chose) and waits
    /// until it accepts; [`TestkitError::AddrInUse`] if the port is taken.
    pub fn start_on(port: u16, upstreams: &[SocketAddr]) -> Result<Self, TestkitError> {
        if upstreams.is_empty() {
            return Err(TestkitError::Invalid(
                "nginx needs at least one upstream".into(),
            ));
        }
        let servers: Vec<String> = upstreams
            .iter()
            .map(|a| format!("server {a} max_fails=3 fail_timeout=5s;"))
            .collect();
        let conf = render(
            TEMPLATE,
            &[
                ("NGINX_LISTEN", format!("127.0.0.1:{port}")),
                ("NGINX_UPSTREAM_SERVERS", servers.join("\n        ")),
                ("NGINX_RESOLVER", "127.0.0.1".into()),
                ("NGINX_WORKER_PROCESSES", "1".into()),
            ],
        )?;
        Self::launch(port, &conf)
    }

    /// Starts nginx with a config of the caller's (`conf(port)` must listen
    /// on 127.0.0.1:`port` and keep its pid file, logs and temp paths
    /// relative to the prefix, as the template does) on a free port.
    pub fn start_conf(conf: impl Fn(u16) -> String) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match Self::launch(port, &conf(port)) {
                Err(err @ TestkitError::AddrInUse { .. }) => last = Some(err),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no port attempts".into())))
    }

    /// Runs nginx with `conf` from a fresh prefix dir until it accepts on `port`.
    fn launch(port: u16, conf: &str) -> Result<Self, TestkitError> {
        let dir = prefix_dir()?;
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf)?;
        let log = fs::File::create(dir.path().join("error.log"))?;
        let mut cmd = Command::new(program());
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg("daemon off; master_process on;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .map(ChildGuard::new)
            .map_err(|e| NGINX.spawn_error(e))?;
        let mut nginx = Nginx { child, port, dir };
        match wait_for_port(nginx.addr(), START_TIMEOUT) {
            Ok(()) if nginx.child.is_running() => Ok(nginx),
            _ => {
                let log = nginx.error_log();
                nginx.stop();
                if log.contains("Address already in use") {
                    return Err(TestkitError::AddrInUse {
                        what: format!("nginx on 127.0.0.1:{port}"),
                    });
                }
                Err(TestkitError::NotReady {
                    what: format!("nginx on 127.0.0.1:{port}"),
                    timeout: START_TIMEOUT,
                    detail: format!("; error.log: {}", log.trim()),
                })
            }
        }
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The prefix dir (conf, pid file, error.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// SIGTERM to the master (by pid) so workers exit with it; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        self.child.terminate(STOP_TIMEOUT);
    }
}

/// A temp dir nginx's workers can traverse, with `tmp/` for their buffers.
fn prefix_dir() -> Result<TempDir, TestkitError> {
    let dir = tempfile::Builder::new()
        .prefix("rateguard-nginx")
        .tempdir()?;
    // Run as root, nginx's workers run as `nobody` and must reach tmp/.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
    }
    fs::create_dir_all(dir.path().join("tmp"))?;
    Ok(dir)
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_renders_with_every_placeholder_filled() {
        let vars = [
            ("NGINX_LISTEN", "127.0.0.1:1".to_owned()),
            ("NGINX_UPSTREAM_SERVERS", "server 127.0.0.1:2;".to_owned()),
            ("NGINX_RESOLVER", "127.0.0.11".to_owned()),
            ("NGINX_WORKER_PROCESSES", "auto".to_owned()),
        ];
        let conf = render(TEMPLATE, &vars).unwrap();
        assert!(conf.contains("listen 127.0.0.1:1 backlog=4096;"));
        assert!(conf.contains("server 127.0.0.1:2;"));
        assert!(conf.contains("$proxy_add_x_forwarded_for"));
        assert!(conf.contains("proxy_set_header Upgrade $http_upgrade;"));
        assert!(conf.contains("proxy_set_header Connection $connection_upgrade;"));
        assert!(render(TEMPLATE, &vars[..3]).is_err());
    }
}
