//! [`SentinelMaster`]: the master that the sentinels in `store.urls` name
//! under `store.sentinel_master`, followed across failovers.
//!
//! A lookup asks every sentinel (`SENTINEL MASTER <name>`, in parallel)
//! and takes the newest view: the highest `config-epoch` among those not
//! flagging the master down, as the sentinels themselves converge. Then the
//! node's `ROLE` must say master. (redis-rs's `sentinel` module takes the
//! *first* sentinel's answer instead: for a publish period after a failover
//! a sentinel that has not heard of it names the old master, which, if it
//! still runs, passes the `ROLE` check until the sentinels demote it, 10-20
//! s later with the default timers; the store would stay there, and what it
//! spends there is lost when the old master resyncs as a replica.)
//!
//! Lookups happen at start; whenever a call finds the master unreachable,
//! slow or read-only (it was demoted); and when a sentinel announces
//! `+switch-master` on its pub/sub channel. A new master
//! gets a new `ConnectionManager`, swapped in atomically. Calls that were on
//! the old master fail like any failing call (the gateway applies
//! `on_error`), and the breaker's cooldown ends, so enforcement resumes on
//! the new master at once.
//!
//! The sentinels and the master are reached with the same user and
//! password (the first URL's) and the same TLS settings (`rediss://`
//! sentinel URLs mean TLS to the master too).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError,
    RedisResult, Role,
};
use tokio::sync::{watch, Notify};

use super::{client_for, connection_manager, refusal};
use crate::access::redact_url;
use crate::breaker::Breaker;
use crate::{RedisOptions, StoreError};

/// The pub/sub channel on which sentinels announce a new master:
/// `<name> <old-ip> <old-port> <new-ip> <new-port>`.
const SWITCH_MASTER: &str = "+switch-master";

/// The current master of one Sentinel-monitored set, and the background
/// tasks that keep it current (they end when this is dropped).
pub(crate) struct SentinelMaster {
    sentinels: Arc<Sentinels>,
    current: ArcSwapOption<Master>,
    wake: Arc<Notify>,
    /// Dropping it ends the background tasks.
    _stop: watch::Sender<()>,
}

struct Master {
    /// `host:port`, as the sentinels name it.
    addr: String,
    conn: ConnectionManager,
}

impl SentinelMaster {
    /// Starts following the master `name`; the first lookup is
    /// [`resolve_at_start`](Self::resolve_at_start)'s.
    pub(super) fn new(
        name: &str,
        opts: &RedisOptions,
        breaker: &Arc<Breaker>,
    ) -> Result<Arc<Self>, StoreError> {
        let sentinels = Arc::new(Sentinels::new(name, opts)?);
        let (stop, stopped) = watch::channel(());
        let master = Arc::new(Self {
            sentinels: sentinels.clone(),
            current: ArcSwapOption::empty(),
            wake: Arc::new(Notify::new()),
            _stop: stop,
        });
        let follower = Follower {
            master: Arc::downgrade(&master),
            sentinels: sentinels.clone(),
            breaker: Arc::downgrade(breaker),
            stopped: stopped.clone(),
        };
        tokio::spawn(follower.run(master.wake.clone()));
        tokio::spawn(watch_switches(sentinels, master.wake.clone(), stopped));
        Ok(master)
    }

    /// The connection to the current master; unavailable until one is known.
    pub(super) fn current(&self) -> Result<ConnectionManager, StoreError> {
        self.current
            .load()
            .as_ref()
            .map(|m| m.conn.clone())
            .ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "no master {:?} known yet from the sentinels",
                    self.sentinels.name
                ))
            })
    }

    /// Asks the sentinels again, in the background (coalesced).
    pub(super) fn recheck(&self) {
        self.wake.notify_one();
    }

    /// The first lookup, bounded by the store's set-up time. Sentinels or a
    /// master that refuse us for good (credentials, certificate) are an
    /// error; anything else (sentinels down, master down, a failover under
    /// way, an unknown name) is logged and left to the background lookups.
    pub(super) async fn resolve_at_start(&self) -> Result<(), StoreError> {
        let sentinels = &self.sentinels;
        match sentinels.lookup().await {
            Ok(client) => self.install(client, &Weak::new()),
            Err(e) => {
                if let Lookup::Redis(e) = &e {
                    let at = format!(
                        "master {:?} via sentinels {}",
                        sentinels.name, sentinels.shown
                    );
                    if let Some(cause) = refusal(e, &at) {
                        return Err(StoreError::Backend(cause));
                    }
                }
                tracing::warn!(
                    error = %e,
                    master = %sentinels.name,
                    sentinels = %sentinels.shown,
                    "Sentinel: no usable master at start; will keep asking."
                );
                self.recheck();
                Ok(())
            }
        }
    }

    /// Makes `client`'s node the master, unless it already is.
    fn install(&self, client: redis::Client, breaker: &Weak<Breaker>) -> Result<(), StoreError> {
        let addr = client.get_connection_info().addr().to_string();
        let current = self.current.load();
        if current.as_ref().is_some_and(|m| m.addr == addr) {
            return Ok(());
        }
        let conn = connection_manager(client, &self.sentinels.opts)?;
        let previous = current.as_ref().map(|m| m.addr.clone());
        self.current.store(Some(Arc::new(Master {
            addr: addr.clone(),
            conn,
        })));
        let name = &self.sentinels.name;
        match previous {
            None => tracing::info!(master = %name, %addr, "Sentinel: using the master."),
            Some(from) => tracing::warn!(
                master = %name,
                %from,
                to = %addr,
                "Sentinel: the master moved (failover); following it."
            ),
        }
        if let Some(breaker) = breaker.upgrade() {
            breaker.probe_now();
        }
        Ok(())
    }
}

/// The background lookups: one at a time, after each wake-up, retried
/// with the breaker's backoff until a master is found.
struct Follower {
    master: Weak<SentinelMaster>,
    sentinels: Arc<Sentinels>,
    breaker: Weak<Breaker>,
    stopped: watch::Receiver<()>,
}

impl Follower {
    async fn run(mut self, wake: Arc<Notify>) {
        let min = self.sentinels.opts.breaker_cooldown;
        let max = self.sentinels.opts.breaker_max_cooldown.max(min);
        loop {
            tokio::select! {
                () = wake.notified() => {}
                _ = self.stopped.changed() => return,
            }
            let mut pause = min;
            let mut failures = 0_u32;
            loop {
                let found = self.sentinels.lookup().await;
                let Some(master) = self.master.upgrade() else {
                    return;
                };
                let error = match found {
                    Ok(client) => match master.install(client, &self.breaker) {
                        Ok(()) => break,
                        Err(e) => e.to_string(),
                    },
                    Err(e) => e.to_string(),
                };
                if failures == 0 {
                    tracing::warn!(
                        %error,
                        master = %self.sentinels.name,
                        sentinels = %self.sentinels.shown,
                        "Sentinel: no usable master yet; asking again until there is one."
                    );
                }
                failures += 1;
                drop(master);
                if !self.pause(pause).await {
                    return;
                }
                pause = (pause * 2).min(max);
            }
            // Bursts of failing calls ask at most once per cooldown.
            if !self.pause(min).await {
                return;
            }
        }
    }

    /// Sleeps `pause`; false if the store was dropped meanwhile.
    async fn pause(&mut self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            _ = self.stopped.changed() => false,
        }
    }
}

/// Listens for `+switch-master` on one sentinel at a time (the next one
/// when it goes away) and wakes the lookups when it names our master. Also
/// wakes them after each (re)subscription, in case a switch was missed.
async fn watch_switches(
    sentinels: Arc<Sentinels>,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<()>,
) {
    let pause = sentinels.opts.breaker_max_cooldown;
    for sentinel in sentinels.nodes.iter().cycle() {
        let subscribed = tokio::time::timeout(sentinels.setup, async {
            let mut pubsub = client_for(sentinel.clone(), &sentinels.opts)?
                .get_async_pubsub()
                .await?;
            pubsub.subscribe(SWITCH_MASTER).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        if let Ok(Ok(mut pubsub)) = subscribed {
            wake.notify_one();
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(m) => {
                            let payload: String = m.get_payload().unwrap_or_default();
                            if payload.split(' ').next() == Some(sentinels.name.as_str()) {
                                tracing::info!(%payload, "Sentinel: +switch-master.");
                                wake.notify_one();
                            }
                        }
                        None => break,
                    },
                    _ = stopped.changed() => return,
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Why a lookup found no master.
#[derive(Debug, thiserror::Error)]
enum Lookup {
    /// A sentinel or the master answered with this error (or none answered).
    #[error(transparent)]
    Redis(RedisError),
    /// The sentinels answered, but name no usable master.
    #[error("{0}")]
    NoMaster(String),
}

/// One sentinel's view of the master.
struct View {
    epoch: u64,
    host: String,
    port: u16,
    /// Flagged subjectively or objectively down by this sentinel.
    down: bool,
}

/// The sentinels of `store.urls`, and how to reach them and the master:
/// the first URL's user, password and database, TLS when the URLs are
/// `rediss://`.
struct Sentinels {
    name: String,
    nodes: Vec<ConnectionInfo>,
    /// The URLs as logs show them (passwords redacted).
    shown: String,
    tls: bool,
    opts: RedisOptions,
    /// Bound of one lookup.
    setup: Duration,
}

impl Sentinels {
    fn new(name: &str, opts: &RedisOptions) -> Result<Self, StoreError> {
        let mut nodes = Vec::new();
        for url in &opts.urls {
            let info = url.as_str().into_connection_info().map_err(|e| {
                StoreError::Backend(format!("invalid sentinel URL {:?}: {e}", redact_url(url)))
            })?;
            nodes.push(info);
        }
        let tls = nodes
            .iter()
            .any(|n| matches!(n.addr(), ConnectionAddr::TcpTls { .. }));
        Ok(Self {
            name: name.to_owned(),
            nodes,
            shown: opts
                .urls
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(", "),
            tls,
            opts: opts.clone(),
            setup: opts.timeout.max(Duration::from_secs(1)),
        })
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.setup))
            .set_response_timeout(Some(self.setup))
    }

    /// The master per the newest view among the sentinels that answer,
    /// once its `ROLE` confirms it; the client to reach it.
    async fn lookup(&self) -> Result<redis::Client, Lookup> {
        let views = futures_util::future::join_all(self.nodes.iter().map(|n| self.view(n))).await;
        let mut newest: Option<View> = None;
        let mut failure = None;
        for view in views {
            match view {
                Ok(Some(view)) => {
                    let newer = |n: &View| (view.epoch, !view.down) > (n.epoch, !n.down);
                    if newest.as_ref().is_none_or(newer) {
                        newest = Some(view);
                    }
                }
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
        }
        let Some(view) = newest else {
            return Err(match failure {
                Some(e) => Lookup::Redis(e),
                None => Lookup::NoMaster(format!("no sentinel knows a master {:?}", self.name)),
            });
        };
        if view.down {
            return Err(Lookup::NoMaster(format!(
                "the sentinels flag master {:?} at {}:{} down (a failover is due)",
                self.name, view.host, view.port
            )));
        }
        let addr = match self.tls {
            true => ConnectionAddr::TcpTls {
                host: view.host,
                port: view.port,
                insecure: false,
                tls_params: None,
            },
            false => ConnectionAddr::Tcp(view.host, view.port),
        };
        let settings = self.nodes[0].redis_settings().clone();
        let info = addr
            .into_connection_info()
            .map(|i| i.set_redis_settings(settings))
            .map_err(Lookup::Redis)?;
        let client = client_for(info, &self.opts).map_err(Lookup::Redis)?;
        let role = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&self.connection_config())
                .await?;
            redis::cmd("ROLE").query_async::<Role>(&mut conn).await
        };
        match role.await.map_err(Lookup::Redis)? {
            Role::Primary { .. } => Ok(client),
            _ => Err(Lookup::NoMaster(format!(
                "{} is not a master (yet)",
                client.get_connection_info().addr()
            ))),
        }
    }

    /// What the sentinel at `node` says of the master: `None` if it does
    /// not know the name.
    async fn view(&self, node: &ConnectionInfo) -> RedisResult<Option<View>> {
        let client = client_for(node.clone(), &self.opts)?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&self.connection_config())
            .await?;
        let reply = redis::cmd("SENTINEL")
            .arg("MASTER")
            .arg(&self.name)
            .query_async::<HashMap<String, String>>(&mut conn)
            .await;
        let fields = match reply {
            Ok(fields) => fields,
            // "ERR No such master with that name"
            Err(e) if e.code() == Some("ERR") => return Ok(None),
            Err(e) => return Err(e),
        };
        let field = |k: &str| fields.get(k).map(String::as_str);
        let down = field("flags").is_some_and(|f| f.contains("s_down") || f.contains("o_down"));
        let parsed = (
            field("config-epoch").and_then(|e| e.parse().ok()),
            field("ip"),
            field("port").and_then(|p| p.parse().ok()),
        );
        Ok(match parsed {
            (Some(epoch), Some(host), Some(port)) => Some(View {
                epoch,
                host: host.to_owned(),
                port,
                down,
            }),
            _ => None,
        })
    }
}
