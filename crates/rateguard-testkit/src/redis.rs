//! [`RedisServer`] and [`RedisCluster`]: real `redis-server` processes on
//! free loopback ports, each in its own temp dir, stopped by pid on drop.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{free_port, Binary, ChildGuard, TestkitError};

/// `redis-server`, overridable with `RATEGUARD_REDIS_SERVER`.
pub const REDIS_SERVER: Binary = Binary {
    name: "redis-server",
    env: "RATEGUARD_REDIS_SERVER",
    package: "redis-server",
};

/// `redis-cli`, overridable with `RATEGUARD_REDIS_CLI`.
pub const REDIS_CLI: Binary = Binary {
    name: "redis-cli",
    env: "RATEGUARD_REDIS_CLI",
    package: "redis-tools",
};

/// How long a server may take to answer `PING` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster may take to report `cluster_state:ok` on every node.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at picking a free port (another process may grab it first).
const PORT_ATTEMPTS: usize = 5;

/// One standalone `redis-server` on 127.0.0.1, no persistence.
///
/// ```no_run
/// let redis = rateguard_testkit::RedisServer::start().unwrap();
/// assert_eq!(redis.cli(&["PING"]).unwrap(), "PONG");
/// ```
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir` so the process dies before its dir is removed.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-redis")
            .tempdir()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut child = spawn_redis(dir.path(), port, &[])?;
            match wait_ready(&mut child, port, dir.path(), START_TIMEOUT) {
                Ok(()) => return Ok(Self { child, port, dir }),
                // The port was taken between `free_port` and the bind: retry.
                Err(e) if !child.is_running() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
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

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Kills the server (SIGKILL by pid) and waits for it to exit.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        Ok(self.child.kill()?)
    }

    /// Starts the server again on the same port and dir (killing it first if
    /// it still runs) and waits until it answers `PING`. Data is not kept.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.child.kill()?;
        self.child = spawn_redis(self.dir.path(), self.port, &[])?;
        wait_ready(&mut self.child, self.port, self.dir.path(), START_TIMEOUT)
    }

    /// Runs `redis-cli -p <port> <args>` and returns its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String, TestkitError> {
        redis_cli(self.port, args)
    }
}

/// A Redis Cluster on 127.0.0.1: `masters` masters, optionally with replicas.
#[derive(Debug)]
pub struct RedisCluster {
    // Declared before `dir` so the processes die before their dir is removed.
    nodes: Vec<ClusterNode>,
    dir: TempDir,
}

#[derive(Debug)]
struct ClusterNode {
    child: ChildGuard,
    port: u16,
}

impl RedisCluster {
    /// Starts `masters` (at least 3) cluster-enabled nodes, joins them with
    /// `redis-cli --cluster create`, and waits until every node reports
    /// `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<Self, TestkitError> {
        Self::start_with_replicas(masters, 0)
    }

    /// Like [`start`](Self::start), with `replicas` replicas per master
    /// (`masters × (1 + replicas)` nodes), and waits until every replica's
    /// link to its master is up, so a killed master can fail over.
    pub fn start_with_replicas(masters: usize, replicas: usize) -> Result<Self, TestkitError> {
        if masters < 3 {
            return Err(TestkitError::Invalid(format!(
                "a Redis Cluster needs at least 3 masters, got {masters}"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("rateguard-cluster")
            .tempdir()?;
        let total = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(total);
        while nodes.len() < total {
            nodes.push(start_cluster_node(dir.path())?);
        }
        let mut create = REDIS_CLI.command();
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        run(&REDIS_CLI, &mut create)?;
        let cluster = Self { nodes, dir };
        cluster.wait_ok(CLUSTER_TIMEOUT)?;
        cluster.wait_replicas_linked(CLUSTER_TIMEOUT)?;
        Ok(cluster)
    }

    /// Whether node `i` is currently a master (per its `ROLE`).
    pub fn is_master(&self, i: usize) -> Result<bool, TestkitError> {
        Ok(self.cli(i, &["ROLE"])?.starts_with("master"))
    }

    /// Seed URLs, `redis://127.0.0.1:port`, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Each node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Each node's process id.
    pub fn node_pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.pid()).collect()
    }

    /// Kills node `i` (SIGKILL by pid). With no replicas, its slots become
    /// unavailable until [`restart_node`](Self::restart_node).
    pub fn kill_node(&mut self, i: usize) -> Result<(), TestkitError> {
        Ok(self.node(i)?.child.kill()?)
    }

    /// Restarts node `i` on its port with its `nodes.conf` (so it keeps its
    /// identity and slots), then waits until the cluster is `ok` again.
    pub fn restart_node(&mut self, i: usize) -> Result<(), TestkitError> {
        let dir = self.dir.path().to_path_buf();
        let node = self.node(i)?;
        node.child.kill()?;
        node.child = spawn_redis(&dir, node.port, &cluster_args(node.port))?;
        wait_ready(&mut node.child, node.port, &dir, START_TIMEOUT)?;
        self.wait_ok(CLUSTER_TIMEOUT)
    }

    /// Kills every node (SIGKILL by pid): the whole cluster is down.
    pub fn kill_all(&mut self) -> Result<(), TestkitError> {
        for node in &mut self.nodes {
            node.child.kill()?;
        }
        Ok(())
    }

    /// Restarts every node on its port with its `nodes.conf`, then waits
    /// until the cluster is `ok` again (after [`kill_all`](Self::kill_all),
    /// one node alone can never report `ok`).
    pub fn restart_all(&mut self) -> Result<(), TestkitError> {
        let dir = self.dir.path().to_path_buf();
        for node in &mut self.nodes {
            node.child.kill()?;
            node.child = spawn_redis(&dir, node.port, &cluster_args(node.port))?;
        }
        for node in &mut self.nodes {
            wait_ready(&mut node.child, node.port, &dir, START_TIMEOUT)?;
        }
        self.wait_ok(CLUSTER_TIMEOUT)
    }

    /// Runs `redis-cli -p <port of node i> <args>` and returns its trimmed stdout.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<String, TestkitError> {
        let port = self.nodes.get(i).map(|n| n.port).ok_or_else(|| {
            TestkitError::Invalid(format!("no node {i} in {} nodes", self.nodes.len()))
        })?;
        redis_cli(port, args)
    }

    fn node(&mut self, i: usize) -> Result<&mut ClusterNode, TestkitError> {
        let len = self.nodes.len();
        self.nodes
            .get_mut(i)
            .ok_or_else(|| TestkitError::Invalid(format!("no node {i} in {len} nodes")))
    }

    fn wait_replicas_linked(&self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.nodes.len() {
            loop {
                // A replica's ROLE is `slave <host> <port> <state> <offset>`.
                let role = self.cli(i, &["ROLE"])?;
                if role.starts_with("master") || role.contains("connected") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(TestkitError::NotReady {
                        what: format!("replica 127.0.0.1:{}", self.nodes[i].port),
                        timeout,
                        detail: format!(": ROLE said {role:?}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn wait_ok(&self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        for node in &self.nodes {
            loop {
                let info = command(node.port, &["CLUSTER", "INFO"]).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(TestkitError::NotReady {
                        what: format!("Redis Cluster node 127.0.0.1:{}", node.port),
                        timeout,
                        detail: format!(": CLUSTER INFO said {info:?}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

fn cluster_args(port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
        // Fail fast in tests: a killed node is marked failed after 2 s.
        "--cluster-node-timeout",
        "2000",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn start_cluster_node(dir: &Path) -> Result<ClusterNode, TestkitError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut child = spawn_redis(dir, port, &cluster_args(port))?;
        match wait_ready(&mut child, port, dir, START_TIMEOUT) {
            Ok(()) => return Ok(ClusterNode { child, port }),
            Err(e) if !child.is_running() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
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

/// Polls `PING` until `+PONG`, failing early (with the log's tail) if the
/// process exits.
fn wait_ready(
    child: &mut ChildGuard,
    port: u16,
    dir: &Path,
    timeout: Duration,
) -> Result<(), TestkitError> {
    let deadline = Instant::now() + timeout;
    loop {
        if command(port, &["PING"]).is_ok_and(|r| r == "PONG") {
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
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends one command over raw RESP and returns a simple, integer or bulk
/// reply as text (errors come back as `io::Error`). Enough for `PING` and
/// `CLUSTER INFO` without a client library.
fn command(port: u16, args: &[&str]) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "$" => {
            let len: usize = rest
                .parse()
                .map_err(|_| io::Error::other(format!("bad bulk length {rest:?}")))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            String::from_utf8(body).map_err(io::Error::other)
        }
        _ => Err(io::Error::other(format!("reply {line:?}"))),
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Result<String, TestkitError> {
    let mut cmd = REDIS_CLI.command();
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    run(&REDIS_CLI, &mut cmd)
}

fn run(binary: &Binary, cmd: &mut std::process::Command) -> Result<String, TestkitError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| binary.spawn_error(e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err(TestkitError::CommandFailed {
            command: format!("{cmd:?}"),
            status: out.status.to_string(),
            output: format!("{} {stdout}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests;
