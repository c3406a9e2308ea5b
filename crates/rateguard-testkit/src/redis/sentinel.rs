//! [`SentinelSet`]: Redis's own high-availability setup on 127.0.0.1: a
//! master, one replica and three sentinels (`redis-server --sentinel`)
//! monitoring them with quorum 2, tuned to fail over within seconds.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{query, RedisServer, PORT_ATTEMPTS, REDIS_SERVER, START_TIMEOUT};
use crate::{block_on, free_port, ChildGuard, TestkitError};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";
/// Sentinels in the set (a majority of them, 2, authorises a failover).
const SENTINELS: usize = 3;
/// How long a silent master takes to count as down (`down-after-milliseconds`).
const DOWN_AFTER_MS: u32 = 1_000;
/// How long the set may take to be ready: the replica in sync and every
/// sentinel aware of the replica and of the other two (hellos every 2 s).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Sentinel's timers, shortened for tests (`SENTINEL DEBUG`, Redis 7+):
/// how often it sends `INFO` to the servers and hellos to the other
/// sentinels. With the defaults (10 s, 2 s), a demoted master running on is
/// converted to a replica only after 10-20 s.
const SENTINEL_DEBUG: [&str; 6] = [
    "SENTINEL",
    "DEBUG",
    "info-period",
    "250",
    "publish-period",
    "250",
];
/// A full resync starts at once (the default waits 5 s for more replicas),
/// so a demoted master is back in sync within a second.
const NO_SYNC_DELAY: [&str; 2] = ["--repl-diskless-sync-delay", "0"];
/// How often the sentinels' view is polled.
const POLL: Duration = Duration::from_millis(50);

/// A master, a replica of it, and three sentinels monitoring it as
/// [`MASTER_NAME`]; every process stopped by pid on drop.
///
/// ```no_run
/// # async fn demo() {
/// let mut set = rateguard_testkit::SentinelSet::start().unwrap();
/// let old = set.kill_master().await.unwrap();
/// let new = set.wait_failover(old, std::time::Duration::from_secs(30)).await.unwrap();
/// assert_ne!(old, new);
/// # }
/// ```
#[derive(Debug)]
pub struct SentinelSet {
    // Declared first: sentinels stop before the servers they watch.
    sentinels: Vec<Sentinel>,
    master: RedisServer,
    replica: RedisServer,
    dir: TempDir,
}

#[derive(Debug)]
struct Sentinel {
    child: ChildGuard,
    port: u16,
}

impl SentinelSet {
    /// Starts the master, the replica (waiting until it is in sync), then
    /// the sentinels, and waits until each sentinel knows the replica and
    /// the other sentinels, so that a failover can happen.
    pub fn start() -> Result<Self, TestkitError> {
        let master = RedisServer::start_with(None, &NO_SYNC_DELAY.map(str::to_owned))?;
        let mut args = NO_SYNC_DELAY.map(str::to_owned).to_vec();
        args.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned()]);
        args.push(master.port().to_string());
        let replica = RedisServer::start_with(None, &args)?;
        let dir = tempfile::Builder::new()
            .prefix("rateguard-sentinel")
            .tempdir()?;
        let mut set = Self {
            sentinels: Vec::new(),
            master,
            replica,
            dir,
        };
        block_on(set.wait_replica_in_sync(READY_TIMEOUT))?;
        for _ in 0..SENTINELS {
            let sentinel = start_sentinel(set.dir.path(), set.master.port())?;
            block_on(query::command(sentinel.port, &SENTINEL_DEBUG))?;
            set.sentinels.push(sentinel);
        }
        block_on(set.wait_sentinels_ready(READY_TIMEOUT))?;
        Ok(set)
    }

    /// The sentinels' URLs, `redis://127.0.0.1:port`.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    /// The server that started as the master.
    pub fn master(&self) -> &RedisServer {
        &self.master
    }

    /// The server that started as its replica.
    pub fn replica(&self) -> &RedisServer {
        &self.replica
    }

    /// Kills the current master (SIGKILL by its pid), whichever of the two
    /// servers that is now; returns its port.
    pub async fn kill_master(&mut self) -> Result<u16, TestkitError> {
        let port = self.master_port().await?;
        let server = if self.master.port() == port {
            &mut self.master
        } else {
            &mut self.replica
        };
        server.kill()?;
        Ok(port)
    }

    /// The server on `port` (the one that started as the master, or the
    /// one that started as its replica).
    pub fn server(&self, port: u16) -> Option<&RedisServer> {
        [&self.master, &self.replica]
            .into_iter()
            .find(|s| s.port() == port)
    }

    /// Waits until the sentinels agree on a master and the other server
    /// (unless killed) is its replica with the link up, i.e. a failover is
    /// over, the demoted master converted; returns the master's port.
    pub async fn wait_settled(&self, timeout: Duration) -> Result<u16, TestkitError> {
        let deadline = Instant::now() + timeout;
        let master = poll(timeout, "the sentinels agreeing on a master", || async {
            let mut ports = Vec::new();
            for sentinel in &self.sentinels {
                ports.push(master_port_per(sentinel.port).await?);
            }
            ports.dedup();
            Ok((ports.len() == 1).then(|| ports[0]))
        })
        .await?;
        let other = [&self.master, &self.replica]
            .into_iter()
            .find(|s| s.port() != master)
            .ok_or_else(|| TestkitError::Invalid(format!("no server on {master}")))?;
        let expected = format!("master_port:{master}");
        let left = deadline.saturating_duration_since(Instant::now());
        poll(left, "the other server a replica in sync", || async {
            let Ok(info) = other.cli(&["INFO", "replication"]).await else {
                // Killed: nothing to wait for.
                return Ok(Some(()));
            };
            let synced = info.contains(&expected) && info.contains("master_link_status:up");
            Ok(synced.then_some(()))
        })
        .await?;
        Ok(master)
    }

    /// Waits until the replica has processed every write the master had
    /// when this was called (its `slave_repl_offset` reaches the master's
    /// `master_repl_offset`), so a failover loses nothing. (`WAIT` would not
    /// do: it counts the acks of its own connection's writes.)
    pub async fn wait_replicated(&self, timeout: Duration) -> Result<(), TestkitError> {
        let master_port = self.master_port().await?;
        let (master, replica) = match self.server(master_port) {
            Some(m) if m.port() == self.master.port() => (&self.master, &self.replica),
            _ => (&self.replica, &self.master),
        };
        let offset = |info: &str, field: &str| -> Option<u64> {
            info.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.parse().ok())
        };
        let info = master.cli(&["INFO", "replication"]).await?;
        let target = offset(&info, "master_repl_offset").ok_or_else(|| TestkitError::Query {
            what: "INFO replication".into(),
            detail: format!("no master_repl_offset in {info:?}"),
        })?;
        poll(timeout, "the replica caught up", || async {
            let info = replica.cli(&["INFO", "replication"]).await?;
            Ok(offset(&info, "slave_repl_offset")
                .is_some_and(|o| o >= target)
                .then_some(()))
        })
        .await
    }

    /// Asks a sentinel for a failover now (`SENTINEL FAILOVER`), with the
    /// master still running: it is demoted to a replica of the new master.
    pub async fn failover(&self) -> Result<(), TestkitError> {
        let port = self.sentinels.first().map(|s| s.port);
        let port = port.ok_or_else(|| TestkitError::Invalid("no sentinels".into()))?;
        query::command(port, &["SENTINEL", "FAILOVER", MASTER_NAME])
            .await
            .map(drop)
    }

    /// The sentinels' process ids.
    pub fn sentinel_pids(&self) -> Vec<u32> {
        self.sentinels.iter().map(|s| s.child.pid()).collect()
    }

    /// The master's port, as the first sentinel that answers names it.
    pub async fn master_port(&self) -> Result<u16, TestkitError> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match master_port_per(sentinel.port).await {
                Ok(port) => return Ok(port),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Invalid("no sentinels".into())))
    }

    /// Waits until every sentinel names a master other than `old_port`
    /// (the failover is done); returns the new master's port.
    pub async fn wait_failover(
        &self,
        old_port: u16,
        timeout: Duration,
    ) -> Result<u16, TestkitError> {
        let deadline = Instant::now() + timeout;
        'poll: loop {
            let mut new = None;
            for sentinel in &self.sentinels {
                match master_port_per(sentinel.port).await {
                    Ok(port) if port != old_port && new.is_none_or(|n| n == port) => {
                        new = Some(port);
                    }
                    _ => {
                        if Instant::now() >= deadline {
                            return Err(TestkitError::NotReady {
                                what: format!("a Sentinel failover away from port {old_port}"),
                                timeout,
                                detail: String::new(),
                            });
                        }
                        tokio::time::sleep(POLL).await;
                        continue 'poll;
                    }
                }
            }
            return new.ok_or_else(|| TestkitError::Invalid("no sentinels".into()));
        }
    }

    async fn wait_replica_in_sync(&self, timeout: Duration) -> Result<(), TestkitError> {
        let synced = |info: &str| info.contains("master_link_status:up");
        poll(timeout, "the replica in sync", || async {
            let info = self.replica.cli(&["INFO", "replication"]).await?;
            Ok(synced(&info).then_some(()))
        })
        .await
    }

    async fn wait_sentinels_ready(&self, timeout: Duration) -> Result<(), TestkitError> {
        for sentinel in &self.sentinels {
            let what = format!("sentinel on 127.0.0.1:{} ready", sentinel.port);
            poll(timeout, &what, || async {
                let view =
                    query::command(sentinel.port, &["SENTINEL", "MASTER", MASTER_NAME]).await?;
                let field = |name: &str| {
                    let mut lines = view.lines();
                    lines.find(|l| *l == name).and_then(|_| lines.next())
                };
                let ready = field("num-slaves") == Some("1")
                    && field("num-other-sentinels") == Some(&(SENTINELS - 1).to_string());
                Ok(ready.then_some(()))
            })
            .await?;
        }
        Ok(())
    }
}

/// The master's port per the sentinel on `port`.
async fn master_port_per(port: u16) -> Result<u16, TestkitError> {
    let reply = query::command(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]).await?;
    reply
        .lines()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| TestkitError::Query {
            what: format!("sentinel 127.0.0.1:{port} GET-MASTER-ADDR-BY-NAME"),
            detail: format!("unexpected reply {reply:?}"),
        })
}

/// Polls `check` every [`POLL`] until it yields `Some`, for at most `timeout`.
async fn poll<T, F, Fut>(timeout: Duration, what: &str, check: F) -> Result<T, TestkitError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, TestkitError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = check().await;
        if let Ok(Some(done)) = last {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            return Err(TestkitError::NotReady {
                what: what.to_owned(),
                timeout,
                detail: format!(": last {:?}", last.err()),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Writes a sentinel's config (it rewrites the file as it learns) and
/// starts it on a free port, retried if the port was taken meanwhile.
fn start_sentinel(dir: &Path, master_port: u16) -> Result<Sentinel, TestkitError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let conf = dir.join(format!("sentinel-{port}.conf"));
        let log = dir.join(format!("sentinel-{port}.log"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile {log}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.display(),
            log = log.display(),
        );
        std::fs::write(&conf, text)?;
        let mut cmd = REDIS_SERVER.command();
        cmd.arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = REDIS_SERVER.spawn(&mut cmd)?;
        match wait_sentinel(&mut child, port, &log) {
            Ok(()) => return Ok(Sentinel { child, port }),
            // The port was taken between `free_port` and the bind: retry.
            Err(e) if !child.is_running() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Polls `PING` until `PONG`, failing early (with the log) if it exits.
fn wait_sentinel(child: &mut ChildGuard, port: u16, log: &Path) -> Result<(), TestkitError> {
    let deadline = Instant::now() + START_TIMEOUT;
    block_on(async {
        loop {
            let pong = query::command(port, &["PING"]).await;
            if pong.is_ok_and(|p| p == "PONG") {
                return Ok(());
            }
            let exited = !child.is_running();
            if exited || Instant::now() >= deadline {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(TestkitError::NotReady {
                    what: format!("sentinel on 127.0.0.1:{port} (exited: {exited})"),
                    timeout: START_TIMEOUT,
                    detail: format!("; log tail: {}", tail.join(" | ")),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    })
}
