//! The binary's own wiring, run by hand (own flags, environment and working
//! directory): config precedence flags > environment > `.env` > file through
//! `load_config`, `--log-format json`, `RATEGUARD_LOG`, and the redacted
//! start-up line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rateguard_testkit::{free_port, http_get, ChildGuard, MockBackend, RedisServer, Signal};
use tempfile::TempDir;

use crate::support::*;

/// A `rateguard` process in `dir` with exactly `env` (nothing inherited but
/// `PATH`), stderr in `dir/stderr.log`.
struct Spawned {
    child: ChildGuard,
    dir: TempDir,
}

impl Spawned {
    fn start(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Self {
            child: ChildGuard::new(cmd.spawn().unwrap()),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits until `GET /healthz` on `admin` answers 200, for at most 15 s.
    async fn healthy(&mut self, admin: SocketAddr) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(self.child.is_running(), "exited: {}", self.log());
            if let Ok((200, body)) = http_get(admin, "/healthz").await {
                return serde_json::from_str(&body).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no /healthz on {admin}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_the_environment_which_beats_dotenv_which_beats_the_file() {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let [l_file, l_dotenv] = [loopback(), loopback()];
    let [a_file, a_dotenv, a_env] = [loopback(), loopback(), loopback()];
    let dir = tempfile::tempdir().unwrap();
    let server =
        format!("replica_id = \"from-file\"\nlisten = \"{l_file}\"\nadmin_listen = \"{a_file}\"");
    let text = config_text(
        backend.addr(),
        &server,
        "kind = \"memory\"",
        &default_policy(5),
    );
    write(dir.path(), "rateguard.toml", &text);
    write(
        dir.path(),
        ".env",
        &format!(
            "RATEGUARD_SERVER_REPLICA_ID=from-dotenv\nRATEGUARD_SERVER_LISTEN={l_dotenv}\n\
             RATEGUARD_SERVER_ADMIN_LISTEN={a_dotenv}\n"
        ),
    );
    let env_admin = a_env.to_string();
    let env = [
        ("RATEGUARD_SERVER_REPLICA_ID", "from-env"),
        ("RATEGUARD_SERVER_ADMIN_LISTEN", env_admin.as_str()),
    ];
    let args = [
        "serve",
        "--config",
        "rateguard.toml",
        "--replica-id",
        "from-flag",
    ];
    let mut gw = Spawned::start(dir, &args, &env);
    // replica_id: flag > env; admin_listen: env > .env; listen: .env > file.
    let health = gw.healthy(a_env).await;
    assert_eq!(health["replica"], "from-flag", "{}", gw.log());
    let r = get(
        &client_from("127.0.0.2"),
        &format!("http://{l_dotenv}/p"),
        &[],
    )
    .await;
    assert_eq!(r.header("x-rateguard-replica"), Some("from-flag"));
    for unused in [l_file, a_file, a_dotenv] {
        assert!(
            tokio::net::TcpStream::connect(unused).await.is_err(),
            "{unused} is listening: {}",
            gw.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_follow_rateguard_log_and_redact_the_store_password() {
    let backend = MockBackend::start(binary(), "b1").unwrap();
    let mut redis = RedisServer::start().unwrap();
    redis.kill().unwrap(); // the replica starts (and fails open) without it
    let (public, admin) = (loopback(), loopback());
    let url = format!("redis://:s3cret-pw@127.0.0.1:{}", redis.port());
    let store = redis_store("redis-lua", &[url], "allow", FAILURE_BUDGET_MS);
    let server = format!("listen = \"{public}\"\nadmin_listen = \"{admin}\"");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rateguard.toml",
        &config_text(backend.addr(), &server, &store, &default_policy(5)),
    );
    let env = [
        // Gateway and replica-runtime events down to debug, nothing from
        // other targets (the binary's own info lines included); RUST_LOG
        // is the fallback only.
        (
            "RATEGUARD_LOG",
            "rateguard_gateway=debug,rateguard_runtime=debug",
        ),
        ("RUST_LOG", "error"),
    ];
    let args = [
        "--log-format",
        "json",
        "serve",
        "--config",
        "rateguard.toml",
    ];
    let mut gw = Spawned::start(dir, &args, &env);
    gw.healthy(admin).await;
    let (status, _) = http_get(admin, "/readyz").await.unwrap();
    assert_eq!(status, 503, "a debug event: the failed readiness ping");
    let r = get(
        &client_from("127.0.0.2"),
        &format!("http://{public}/x"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "fails open: a warn event");
    assert!(gw.child.stop_with(Signal::SIGTERM, Duration::from_secs(10)));

    let log = gw.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let event = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in\n{log}"))
    };
    let started = event("Gateway started.");
    assert_eq!(started["level"], "INFO");
    let urls = started["fields"]["store_urls"].as_str().unwrap();
    assert!(
        urls.contains(&format!("redis://:***@127.0.0.1:{}", redis.port())),
        "{urls}"
    );
    assert!(!log.contains("s3cret-pw"), "the password leaked:\n{log}");
    assert_eq!(event("Not ready: store ping failed.")["level"], "DEBUG");
    assert_eq!(
        event("Rate-limit store failed; applying on_error.")["level"],
        "WARN"
    );
    let target = |l: &serde_json::Value, prefix: &str| {
        l["target"].as_str().is_some_and(|t| t.starts_with(prefix))
    };
    assert!(
        lines
            .iter()
            .all(|l| target(l, "rateguard_gateway") || target(l, "rateguard_runtime")),
        "RATEGUARD_LOG keeps only rateguard_gateway and rateguard_runtime:\n{log}"
    );
    assert!(target(started, "rateguard_gateway"), "{started}");
}
