//! `rateguard-lab up` (`just demo`): the lab's topology for one store, N
//! gateway replicas behind nginx sharing Redis, kept up until a shutdown
//! signal, then stopped by pid.
//!
//! It starts exactly what `run` starts ([`Topology::start`], then
//! [`Topology::deploy`]), with the README's sample policies or the
//! user's own config file, and the front nginx on a port the user picks.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use rateguard_contract::{LimitKey, OnError, RawLimit, RawPolicy, StoreKind};
use rateguard_loadtests::record::API_KEY_HEADER;
use rateguard_loadtests::{BucketShape, Policy};

use crate::topology::{Deployment, Topology};
use crate::{gateway_config, LabError};

/// What `up` brings up.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `rateguard` binary (gateway replicas and mock backends).
    pub gateway_bin: PathBuf,
    /// The bucket store every replica uses.
    pub store: StoreKind,
    /// Gateway replicas behind nginx.
    pub replicas: u32,
    /// Mock backends behind the gateways.
    pub backends: u32,
    /// nginx's public port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// A gateway config to use instead of the generated one (the lab still
    /// fills in listen ports, upstream and store).
    pub config: Option<PathBuf>,
    /// `store.on_error`: fail open or closed; `None` keeps the config
    /// file's (generated config: allow, fail open).
    pub on_error: Option<OnError>,
    /// The generated config's `store.timeout_ms`.
    pub store_timeout_ms: u64,
}

impl DemoOptions {
    /// `redis-lua`, 3 replicas, 2 backends, port 8080, generated config.
    pub fn new(gateway_bin: PathBuf) -> Self {
        Self {
            gateway_bin,
            store: StoreKind::RedisLua,
            replicas: 3,
            backends: 2,
            port: 8080,
            config: None,
            on_error: None,
            store_timeout_ms: 50,
        }
    }

    fn validate(&self) -> Result<(), LabError> {
        let bad = |m: String| Err(LabError::Options(m));
        if self.replicas == 0 || self.backends == 0 {
            return bad("replicas and backends must be at least 1".into());
        }
        Ok(())
    }
}

/// The generated config's policies (the README's sample): everything 100
/// tokens refilling 50/s, `/api/data` 20 tokens refilling 0.5/s.
pub fn demo_policies() -> Vec<Policy> {
    let policy = |name: &str, prefix: Option<&str>, capacity, refill_per_sec| Policy {
        name: name.into(),
        path_prefix: prefix.map(str::to_owned),
        shape: BucketShape {
            capacity,
            refill_per_sec,
        },
    };
    vec![
        policy("default", None, 100, 50.0),
        policy("data", Some("/api/data"), 20, 0.5),
    ]
}

/// The per-IP limit of each generated policy: this many times its
/// per-client capacity and refill rate (one address may hold a few keys;
/// invented keys beyond that gain it nothing).
pub const PER_IP_FACTOR: i64 = 3;

/// `policy` (single-limit form) with a `per-ip` limit of [`PER_IP_FACTOR`]
/// times its per-client one on top; the client limit keeps its name (and
/// so its bucket keys).
fn with_per_ip(policy: RawPolicy) -> RawPolicy {
    let mut limits = policy.limit_list();
    let per_ip = limits.first().map(|client| {
        RawLimit::new(
            LimitKey::Ip,
            client.capacity * PER_IP_FACTOR,
            client.refill_per_sec * PER_IP_FACTOR as f64,
        )
        .named("per-ip")
    });
    limits.extend(per_ip);
    RawPolicy {
        path_prefix: policy.path_prefix.clone(),
        ..RawPolicy::layered(policy.name, limits)
    }
}

/// A running demo topology; dropping it stops every process by pid.
#[derive(Debug)]
pub struct Demo {
    // Field order is drop order: front and replicas, then backends and stores.
    deployment: Deployment,
    topo: Topology,
    store: StoreKind,
    policies: Vec<RawPolicy>,
    on_error: OnError,
}

impl Demo {
    /// Starts the stores `opts.store` needs, the backends, the replicas and
    /// the front nginx (blocking; every replica is healthy when it returns).
    pub fn start(opts: &DemoOptions) -> Result<Self, LabError> {
        opts.validate()?;
        // Fail before anything starts when the public port is taken.
        if opts.port != 0 {
            let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, opts.port));
            if let Err(reason) = std::net::TcpListener::bind(addr) {
                return Err(LabError::PortTaken {
                    port: opts.port,
                    reason,
                });
            }
        }
        // ... and when the user's config file is unusable.
        let mut config = match &opts.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    LabError::Config(format!("cannot read {}: {e}", path.display()))
                })?;
                gateway_config::parse_user(&text)
                    .map_err(|e| LabError::Config(format!("{}: {e}", path.display())))?
            }
            None => {
                let mut config = gateway_config::generated(
                    opts.store_timeout_ms,
                    &demo_policies(),
                    OnError::Allow,
                );
                config.policies = config.policies.into_iter().map(with_per_ip).collect();
                // `on_error = "local"` shares each limit among the replicas.
                config.store.replicas_hint = i64::from(opts.replicas);
                config
            }
        };
        if let Some(on_error) = opts.on_error {
            config.store.on_error = on_error;
        }
        let store = opts.store;
        let topo = Topology::start(
            &opts.gateway_bin,
            opts.backends,
            store.needs_redis(),
            store.needs_cluster(),
            false,
        )?;
        let deployment = topo.deploy(store, &config, opts.replicas, Some(opts.port))?;
        Ok(Self {
            deployment,
            topo,
            store,
            policies: config.policies,
            on_error: config.store.on_error,
        })
    }

    /// The URL to curl: the front nginx.
    pub fn url(&self) -> String {
        self.deployment.url()
    }

    /// Each replica's admin address (`/healthz`, `/metrics`), `gw-1` first.
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        self.deployment.admin_addrs()
    }

    /// The Redis URLs the replicas use (none for `memory`).
    pub fn redis_urls(&self) -> Vec<String> {
        self.topo.store_urls(self.store)
    }

    /// The policies in force.
    pub fn policies(&self) -> &[RawPolicy] {
        &self.policies
    }

    /// The block `up` prints: URLs, policies, commands to try.
    pub fn banner(&self) -> String {
        let url = self.url();
        let mut b = String::new();
        let _ = writeln!(
            b,
            "RateGuard is up: {} gateway replica(s) ({} store) behind nginx, {} mock backend(s).\n",
            self.deployment.replicas(),
            self.store,
            self.topo.backends()
        );
        let _ = writeln!(b, "  curl       {url}/");
        for (i, a) in self.admin_addrs().iter().enumerate() {
            let _ = writeln!(
                b,
                "  gw-{:<7} http://{a}/healthz  http://{a}/metrics",
                i + 1
            );
        }
        let redis = self.redis_urls();
        let redis = if redis.is_empty() {
            format!("none ({}: each replica keeps its own buckets)", self.store)
        } else {
            redis.join(" ")
        };
        let _ = writeln!(b, "  redis      {redis}");
        let _ = writeln!(
            b,
            "  policies   (store errors: {})",
            if self.on_error == OnError::Deny {
                "deny, fail closed"
            } else {
                "allow, fail open"
            }
        );
        for p in &self.policies {
            let limits: Vec<String> = p
                .limit_list()
                .iter()
                .map(|l| {
                    let name = l.name.clone().unwrap_or_else(|| l.key.default_name());
                    format!(
                        "{name}: capacity {}, refill {}/s",
                        l.capacity, l.refill_per_sec
                    )
                })
                .collect();
            let _ = writeln!(
                b,
                "    {:<10} {:<12} {}",
                p.name,
                p.path_prefix.as_deref().unwrap_or("(all paths)"),
                limits.join("; ")
            );
        }
        let _ = writeln!(b, "\nTry:");
        let _ = writeln!(b, "  curl -si -H '{API_KEY_HEADER}: demo' {url}/api/data");
        let _ = writeln!(b, "  just burst {url}/api/data");
        let _ = writeln!(b, "  just distribution {url}/");
        let _ = writeln!(b, "\nCtrl-C (or SIGTERM) stops every process.");
        b
    }
}

/// Starts the demo, calls `on_ready` with it, waits for `shutdown`, then
/// stops every process by pid before returning (also when the returned
/// future is dropped). The binary's `shutdown` is Ctrl-C or SIGTERM.
pub async fn up(
    opts: &DemoOptions,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Demo),
) -> Result<(), LabError> {
    let demo = tokio::task::block_in_place(|| Demo::start(opts))?;
    on_ready(&demo);
    shutdown.await;
    // Stopping waits for each process to exit: keep it off the async workers.
    tokio::task::block_in_place(move || drop(demo));
    Ok(())
}
