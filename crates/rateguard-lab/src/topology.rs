//! The lab's processes, all from `rateguard-testkit`: redis-server, a
//! 3-master Redis Cluster, M mock backends behind one nginx that answers
//! the load scenarios' paths itself ([`backends`]) (started once),
//! and per subject a [`Deployment`]: N gateway replicas behind a front
//! nginx, or (`nginx-limit-req`) an nginx doing `limit_req` alone.
//!
//! When a run adds a store RTT, the gateways reach Redis through the
//! testkit's delay proxies ([`DelayNet`]): one in front of the standalone
//! server, and a second cluster whose nodes announce one proxy each, so
//! redirects go through the proxies too. At RTT 0 they connect directly.
//!
//! Everything is a child of this process on free loopback ports, stopped by
//! its own pid when its guard drops: at the end, on an error, or when Ctrl-C
//! drops the running lab future.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rateguard_contract::{Backend, RawConfig, StoreKind};
use rateguard_lab_model::{Frontend, Role};
use rateguard_loadtests::open_model::RlsTarget;
use rateguard_report::Subject;
use rateguard_testkit::{
    DelayNet, GatewayProcess, MockBackend, Nginx, RedisCluster, RedisServer, TestkitError,
};

use crate::cpu::{with_children, CpuProbe};
use crate::decisions::DecisionCounts;
use crate::front::Front;
use crate::{backends, gateway_config, limit_req, rls_config, LabError};

/// The long-lived part of the topology (everything but the gateways).
#[derive(Debug)]
pub struct Topology {
    // Field order is drop order: the balancer first, the stores last.
    back: Nginx,
    backends: Vec<MockBackend>,
    /// The standalone Redis (for `redis-lua` and `redis-pipelined`).
    pub redis: Option<RedisServer>,
    /// The Redis Cluster (for `fred-cluster`), reached directly.
    pub cluster: Option<RedisCluster>,
    /// A second Redis Cluster whose nodes announce delay proxies.
    pub cluster_delayed: Option<RedisCluster>,
    /// The proxy in front of the standalone Redis.
    redis_proxy: Option<SocketAddr>,
    /// The delay proxies (when a run adds a store RTT).
    net: Option<DelayNet>,
    gateway_bin: PathBuf,
}

/// One subject's frontend: N gateway replicas behind their own front
/// nginx, an nginx alone, or (`rls`) N `rateguard rls` replicas called
/// directly; dropping it stops them.
#[derive(Debug)]
pub struct Deployment {
    // The front goes first so no request reaches a dying replica.
    front: Option<Front>,
    gateways: Vec<GatewayProcess>,
    probe: CpuProbe,
    /// `rls`: what the load client calls (and the limits file's dir).
    rls: Option<(RlsTarget, tempfile::TempDir)>,
}

impl Deployment {
    /// The URL HTTP clients use: the front nginx (empty for `rls`).
    pub fn url(&self) -> String {
        self.front.as_ref().map(Front::url).unwrap_or_default()
    }

    /// `rls`: the gRPC services to call instead of [`url`](Self::url).
    pub fn rls_target(&self) -> Option<&RlsTarget> {
        self.rls.as_ref().map(|(t, _)| t)
    }

    /// Replicas running.
    pub fn replicas(&self) -> usize {
        self.gateways.len()
    }

    /// The replicas' admin addresses (`/healthz`, `/metrics`), in order.
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        self.gateways
            .iter()
            .map(GatewayProcess::admin_addr)
            .collect()
    }

    /// The pids of the front nginx's master and of every replica.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.front.iter().map(Front::pid).collect();
        pids.extend(self.gateways.iter().map(GatewayProcess::pid));
        pids
    }

    /// Charges every process of the deployment and its topology to its role.
    pub fn cpu_probe(&self) -> &CpuProbe {
        &self.probe
    }

    /// The decision counters ([`DecisionCounts`]), summed over every
    /// replica's `/metrics`; all zero for `rls`.
    pub async fn decisions(&self) -> Result<DecisionCounts, LabError> {
        let mut total = DecisionCounts::default();
        if self.rls.is_some() {
            return Ok(total);
        }
        for gw in &self.gateways {
            let (status, body) = gw.admin_get("/metrics").await?;
            if status != 200 {
                return Err(LabError::Gateway(format!("/metrics answered {status}")));
            }
            total.add(&DecisionCounts::parse(&body)?);
        }
        Ok(total)
    }
}

impl Topology {
    /// Starts the stores that are needed and `backends` mock backends behind
    /// an nginx; with `delayed`, also the delay proxies (RTT 0 until
    /// [`set_rtt`](Self::set_rtt)) and the proxied cluster.
    pub fn start(
        gateway_bin: &Path,
        backends: u32,
        redis: bool,
        cluster: bool,
        delayed: bool,
    ) -> Result<Self, LabError> {
        if !gateway_bin.exists() {
            return Err(LabError::Missing(format!(
                "gateway binary {} not found; build it with: cargo build --release -p rateguard",
                gateway_bin.display()
            )));
        }
        let redis = redis.then(RedisServer::start).transpose()?;
        let cluster_direct = cluster.then(|| RedisCluster::start(3)).transpose()?;
        let net = delayed.then(|| DelayNet::new(Duration::ZERO));
        let redis_proxy = match (&net, &redis) {
            (Some(net), Some(r)) => Some(net.proxy(r.addr())?),
            _ => None,
        };
        let cluster_delayed = match &net {
            Some(net) if cluster => Some(RedisCluster::start_announcing(3, |port| {
                let node = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                Ok::<_, TestkitError>(net.proxy(node)?.port())
            })?),
            _ => None,
        };
        let backends = (1..=backends)
            .map(|i| MockBackend::start(gateway_bin, &format!("backend-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = backends.iter().map(MockBackend::addr).collect();
        let back = Nginx::start_conf(|port| backends::conf(port, &addrs))?;
        Ok(Self {
            back,
            backends,
            redis,
            cluster: cluster_direct,
            cluster_delayed,
            redis_proxy,
            net,
            gateway_bin: gateway_bin.to_path_buf(),
        })
    }

    /// Mock backends running.
    pub fn backends(&self) -> usize {
        self.backends.len()
    }

    /// Sets the delay proxies' round trip (no-op without proxies).
    pub fn set_rtt(&self, rtt_ms: f64) {
        if let Some(net) = &self.net {
            net.set_rtt(Duration::from_secs_f64(rtt_ms.max(0.0) / 1e3));
        }
    }

    /// Whether `rtt_ms` goes through the delay proxies.
    fn delayed(&self, rtt_ms: f64) -> bool {
        rtt_ms > 0.0 && self.net.is_some()
    }

    /// The cluster `fred-cluster` uses at `rtt_ms`.
    pub fn cluster_at(&self, rtt_ms: f64) -> Option<&RedisCluster> {
        if self.delayed(rtt_ms) {
            self.cluster_delayed.as_ref()
        } else {
            self.cluster.as_ref()
        }
    }

    /// [`cluster_at`](Self::cluster_at), to kill and restart nodes.
    pub fn cluster_at_mut(&mut self, rtt_ms: f64) -> Option<&mut RedisCluster> {
        if self.delayed(rtt_ms) {
            self.cluster_delayed.as_mut()
        } else {
            self.cluster.as_mut()
        }
    }

    /// The Redis URLs `store` uses at RTT 0 (none for an in-process store).
    pub fn store_urls(&self, store: StoreKind) -> Vec<String> {
        self.store_urls_at(store, 0.0)
    }

    /// The Redis URLs `store` uses at `rtt_ms`: the servers themselves at
    /// 0, their delay proxies above.
    pub fn store_urls_at(&self, store: StoreKind, rtt_ms: f64) -> Vec<String> {
        match store.backend() {
            Backend::Redis if self.delayed(rtt_ms) => self
                .redis_proxy
                .iter()
                .map(|a| format!("redis://{a}"))
                .collect(),
            Backend::Redis => self.redis.iter().map(RedisServer::url).collect(),
            Backend::RedisCluster => self
                .cluster_at(rtt_ms)
                .map(|c| c.urls())
                .unwrap_or_default(),
            Backend::InProcess => Vec::new(),
        }
    }

    /// The store processes `store` uses at `rtt_ms`.
    fn store_pids(&self, store: Option<StoreKind>, rtt_ms: f64) -> Vec<u32> {
        match store.map(StoreKind::backend) {
            Some(Backend::Redis) => self.redis.iter().map(RedisServer::pid).collect(),
            Some(Backend::RedisCluster) => self
                .cluster_at(rtt_ms)
                .map(RedisCluster::node_pids)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Starts `replicas` gateways running `config` with `store`
    /// [placed](gateway_config::place) on this topology's servers (at RTT
    /// 0), then a front nginx over them on `front_port` (`None` or 0: free).
    pub fn deploy(
        &self,
        store: StoreKind,
        config: &RawConfig,
        replicas: u32,
        front_port: Option<u16>,
    ) -> Result<Deployment, LabError> {
        self.deploy_subject(Subject::gateway(store), config, replicas, front_port, 0.0)
    }

    /// Brings up `subject` at store RTT `rtt_ms`: `replicas` gateways as
    /// `gw-1`, `gw-2`, ... (each healthy before the next) behind a front
    /// nginx, with `config` and the subject's store placed (`none`: a
    /// memory store and no matching policy); or, for `nginx-limit-req`, an
    /// nginx limiting `config`'s policies itself.
    pub fn deploy_subject(
        &self,
        subject: Subject,
        config: &RawConfig,
        replicas: u32,
        front_port: Option<u16>,
        rtt_ms: f64,
    ) -> Result<Deployment, LabError> {
        let mut rls = None;
        let (front, gateways) = match subject.frontend {
            Frontend::NginxLimitReq => {
                let front = Front::with_conf(|port| {
                    limit_req::conf(port, &config.policies, self.back.addr())
                })?;
                (Some(front), Vec::new())
            }
            Frontend::Rls => {
                let store = subject.store.unwrap_or(StoreKind::Memory);
                let dir = tempfile::Builder::new().prefix("rateguard-rls").tempdir()?;
                let limits = dir.path().join("limits.yaml");
                std::fs::write(&limits, rls_config::limits_yaml())?;
                let mut config = rls_config::config(config, &limits);
                let urls = self.store_urls_at(store, rtt_ms);
                gateway_config::place(&mut config, store, &urls, &self.back.url());
                let replicas = (1..=replicas)
                    .map(|i| {
                        let file = gateway_config::for_replica(&config, &format!("rls-{i}"));
                        Ok(GatewayProcess::start_subcommand(
                            &self.gateway_bin,
                            "rls",
                            &file,
                            &[],
                        )?)
                    })
                    .collect::<Result<Vec<_>, LabError>>()?;
                let addrs: Vec<SocketAddr> = replicas.iter().map(GatewayProcess::addr).collect();
                rls = Some((rls_config::target(&addrs), dir));
                (None, replicas)
            }
            Frontend::Gateway | Frontend::None => {
                let mut config = config.clone();
                if subject.frontend == Frontend::None {
                    gateway_config::match_nothing(&mut config);
                }
                let store = subject.store.unwrap_or(StoreKind::Memory);
                let urls = self.store_urls_at(store, rtt_ms);
                gateway_config::place(&mut config, store, &urls, &self.back.url());
                let gateways = (1..=replicas)
                    .map(|i| {
                        let file = gateway_config::for_replica(&config, &format!("gw-{i}"));
                        Ok(GatewayProcess::start(&self.gateway_bin, &file)?)
                    })
                    .collect::<Result<Vec<_>, LabError>>()?;
                let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
                (Some(Front::start(&addrs, front_port)?), gateways)
            }
        };
        // rls answers by itself: no nginx and no backends in its path.
        let mut backends: Vec<u32> = Vec::new();
        if rls.is_none() {
            backends.extend(self.backends.iter().map(MockBackend::pid));
            backends.extend(with_children(self.back.pid()));
        }
        let probe = CpuProbe::new([
            (
                Role::Gateway,
                gateways.iter().map(GatewayProcess::pid).collect(),
            ),
            (Role::Store, self.store_pids(subject.store, rtt_ms)),
            (
                Role::Nginx,
                front.iter().flat_map(|f| with_children(f.pid())).collect(),
            ),
            (Role::Backends, backends),
        ]);
        Ok(Deployment {
            front,
            gateways,
            probe,
            rls,
        })
    }
}
