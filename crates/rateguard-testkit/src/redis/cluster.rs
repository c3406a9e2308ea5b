//! [`RedisCluster`]: cluster-enabled `redis-server` nodes joined with
//! `redis-cli --cluster create`, in one temp dir.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{query, spawn_redis, wait_ready, RedisTls, PORT_ATTEMPTS, REDIS_CLI, START_TIMEOUT};
use crate::{block_on, free_port, Binary, ChildGuard, TestkitError};

/// How long a cluster may take to report `cluster_state:ok` on every node.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the cluster's state is probed.
const POLL: Duration = Duration::from_millis(50);

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
    /// The TLS port, in a TLS cluster.
    tls_port: Option<u16>,
    /// `--cluster-announce-*` and TLS arguments (empty: the node announces
    /// itself, plain only).
    extra: Vec<String>,
    /// `cluster-node-timeout` in ms.
    node_timeout_ms: u32,
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
        Self::start_inner(masters, replicas, &|_| Ok(None), None)
    }

    /// Like [`start`](Self::start), with TLS between clients and nodes and
    /// on the cluster bus (`tls-cluster yes`): a client on a TLS port learns
    /// the other nodes' TLS ports from `CLUSTER SLOTS`
    /// ([`tls_urls`](Self::tls_urls)). The plain ports stay for the harness.
    pub fn start_tls(masters: usize, tls: &RedisTls) -> Result<Self, TestkitError> {
        Self::start_inner(masters, 0, &|_| Ok(None), Some(tls))
    }

    /// Like [`start`](Self::start), but node `i` on port `p` announces
    /// 127.0.0.1:`announce(p)` to clients (in `CLUSTER SLOTS` and
    /// redirects), e.g. a [`DelayNet`](crate::DelayNet) proxy in front of
    /// it, so clients reach every node through the proxies. The cluster bus
    /// stays direct.
    pub fn start_announcing(
        masters: usize,
        announce: impl Fn(u16) -> Result<u16, TestkitError>,
    ) -> Result<Self, TestkitError> {
        Self::start_inner(masters, 0, &|port| announce(port).map(Some), None)
    }

    fn start_inner(
        masters: usize,
        replicas: usize,
        announce: &dyn Fn(u16) -> Result<Option<u16>, TestkitError>,
        tls: Option<&RedisTls>,
    ) -> Result<Self, TestkitError> {
        if masters < 3 {
            return Err(TestkitError::Invalid(format!(
                "a Redis Cluster needs at least 3 masters, got {masters}"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("rateguard-cluster")
            .tempdir()?;
        let total = masters * (1 + replicas);
        let node_timeout_ms = if replicas == 0 {
            NODE_TIMEOUT_MS
        } else {
            NODE_TIMEOUT_WITH_REPLICAS_MS
        };
        let mut nodes = Vec::with_capacity(total);
        while nodes.len() < total {
            nodes.push(start_cluster_node(
                dir.path(),
                announce,
                tls,
                node_timeout_ms,
            )?);
        }
        let mut create = REDIS_CLI.command();
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        run(&REDIS_CLI, &mut create)?;
        let cluster = Self { nodes, dir };
        block_on(async {
            cluster.wait_ok(CLUSTER_TIMEOUT).await?;
            cluster.wait_replicas_linked(CLUSTER_TIMEOUT).await
        })?;
        Ok(cluster)
    }

    /// Whether node `i` is currently a master (per its `ROLE`).
    pub async fn is_master(&self, i: usize) -> Result<bool, TestkitError> {
        Ok(self.cli(i, &["ROLE"]).await?.starts_with("master"))
    }

    /// Seed URLs, `redis://127.0.0.1:port`, one per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Seed URLs of the TLS ports, `rediss://127.0.0.1:port`, one per node
    /// (empty unless started with [`start_tls`](Self::start_tls)).
    pub fn tls_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| n.tls_port)
            .map(|p| format!("rediss://127.0.0.1:{p}"))
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
        node.child = spawn_redis(&dir, node.port, &node.args())?;
        wait_ready(&mut node.child, node.port, &dir, START_TIMEOUT)?;
        block_on(self.wait_ok(CLUSTER_TIMEOUT))
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
            node.child = spawn_redis(&dir, node.port, &node.args())?;
        }
        for node in &mut self.nodes {
            wait_ready(&mut node.child, node.port, &dir, START_TIMEOUT)?;
        }
        block_on(self.wait_ok(CLUSTER_TIMEOUT))
    }

    /// Sends one command to node `i`; the reply as text, like
    /// [`RedisServer::cli`](super::RedisServer::cli).
    pub async fn cli(&self, i: usize, args: &[&str]) -> Result<String, TestkitError> {
        query::command(self.port(i)?, args).await
    }

    /// [`cli`](Self::cli) for synchronous callers.
    pub fn blocking_cli(&self, i: usize, args: &[&str]) -> Result<String, TestkitError> {
        block_on(self.cli(i, args))
    }

    fn port(&self, i: usize) -> Result<u16, TestkitError> {
        self.nodes.get(i).map(|n| n.port).ok_or_else(|| {
            TestkitError::Invalid(format!("no node {i} in {} nodes", self.nodes.len()))
        })
    }

    fn node(&mut self, i: usize) -> Result<&mut ClusterNode, TestkitError> {
        let len = self.nodes.len();
        self.nodes
            .get_mut(i)
            .ok_or_else(|| TestkitError::Invalid(format!("no node {i} in {len} nodes")))
    }

    /// Waits until every replica's `ROLE` says its link is `connected`.
    async fn wait_replicas_linked(&self, timeout: Duration) -> Result<(), TestkitError> {
        // A replica's ROLE is `slave <host> <port> <state> <offset>`.
        let linked = |role: &str| role.starts_with("master") || role.contains("connected");
        self.wait_each(&["ROLE"], linked, timeout).await
    }

    /// Waits until every node's `CLUSTER INFO` says `cluster_state:ok`.
    async fn wait_ok(&self, timeout: Duration) -> Result<(), TestkitError> {
        let ok = |info: &str| info.contains("cluster_state:ok");
        self.wait_each(&["CLUSTER", "INFO"], ok, timeout).await
    }

    /// Polls `args` on every node, in turn, until `done` holds for its reply.
    async fn wait_each(
        &self,
        args: &[&str],
        done: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        for node in &self.nodes {
            loop {
                let reply = query::command(node.port, args).await;
                if reply.as_deref().is_ok_and(&done) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(TestkitError::NotReady {
                        what: format!("Redis Cluster node 127.0.0.1:{}", node.port),
                        timeout,
                        detail: format!(": {} said {reply:?}", args.join(" ")),
                    });
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }
}

/// How long a node may be silent before the others mark it failed, in a
/// cluster without replicas: fail fast in tests, a killed node is marked
/// failed after 2 s.
const NODE_TIMEOUT_MS: u32 = 2_000;

/// The same, with replicas: a failover is what such tests watch, so a node
/// that is merely slow on a loaded machine must not be failed over behind
/// the test's back (a spurious failover between a write and its check).
const NODE_TIMEOUT_WITH_REPLICAS_MS: u32 = 5_000;

fn cluster_args(port: u16, node_timeout_ms: u32) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
        "--cluster-node-timeout",
        &node_timeout_ms.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

impl ClusterNode {
    /// The node's command-line arguments beyond the standalone server's.
    fn args(&self) -> Vec<String> {
        Self::args_for(self.port, &self.extra, self.node_timeout_ms)
    }

    fn args_for(port: u16, extra: &[String], node_timeout_ms: u32) -> Vec<String> {
        let mut args = cluster_args(port, node_timeout_ms);
        args.extend(extra.iter().cloned());
        args
    }
}

/// `--cluster-announce-*` for a node on `port` announcing `announced`.
fn announce_args(port: u16, announced: Option<u16>) -> Vec<String> {
    let Some(announced) = announced else {
        return Vec::new();
    };
    let bus = u32::from(port) + 10_000;
    [
        "--cluster-announce-ip".to_owned(),
        "127.0.0.1".to_owned(),
        "--cluster-announce-port".to_owned(),
        announced.to_string(),
        "--cluster-announce-bus-port".to_owned(),
        bus.to_string(),
    ]
    .to_vec()
}

/// What a node of a TLS cluster adds to [`RedisTls::args`]: TLS on the
/// cluster bus and for replication too.
const TLS_CLUSTER_ARGS: [&str; 4] = ["--tls-cluster", "yes", "--tls-replication", "yes"];

fn start_cluster_node(
    dir: &Path,
    announce: &dyn Fn(u16) -> Result<Option<u16>, TestkitError>,
    tls: Option<&RedisTls>,
    node_timeout_ms: u32,
) -> Result<ClusterNode, TestkitError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut extra = announce_args(port, announce(port)?);
        let tls_port = tls.map(|_| free_port());
        if let (Some(tls), Some(tls_port)) = (tls, tls_port) {
            extra.extend(tls.args(tls_port));
            extra.extend(TLS_CLUSTER_ARGS.map(str::to_owned));
        }
        let node_args = ClusterNode::args_for(port, &extra, node_timeout_ms);
        let mut child = spawn_redis(dir, port, &node_args)?;
        match wait_ready(&mut child, port, dir, START_TIMEOUT) {
            Ok(()) => {
                return Ok(ClusterNode {
                    child,
                    port,
                    tls_port,
                    extra,
                    node_timeout_ms,
                })
            }
            Err(e) if !child.is_running() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Runs a helper command (`redis-cli --cluster create`) to completion.
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
