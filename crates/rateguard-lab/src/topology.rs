//! The lab's processes, all from `rateguard-testkit`: redis-server, a
//! 3-master Redis Cluster, M mock backends behind one nginx (started once),
//! and per store N gateway replicas behind a front nginx.
//!
//! Everything is a child of this process on free loopback ports, stopped by
//! its own pid when its guard drops: at the end, on an error, or when Ctrl-C
//! drops the running lab future.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rateguard_loadtests::Policy;
use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisCluster, RedisServer};

use crate::gateway_config;
use crate::LabError;

/// The long-lived part of the topology (everything but the gateways).
#[derive(Debug)]
pub struct Topology {
    // Field order is drop order: the balancer first, the stores last.
    back: Nginx,
    _backends: Vec<MockBackend>,
    /// The standalone Redis (for `redis-lua` and `redis-pipelined`).
    pub redis: Option<RedisServer>,
    /// The Redis Cluster (for `fred-cluster`).
    pub cluster: Option<RedisCluster>,
    gateway_bin: PathBuf,
}

/// N gateway replicas running one store, behind their own front nginx;
/// dropping it stops them.
#[derive(Debug)]
pub struct Deployment {
    // The front goes first so no request reaches a dying replica.
    front: Nginx,
    gateways: Vec<GatewayProcess>,
}

impl Deployment {
    /// The URL clients use: the front nginx.
    pub fn url(&self) -> String {
        self.front.url()
    }

    /// Replicas running.
    pub fn replicas(&self) -> usize {
        self.gateways.len()
    }
}

impl Topology {
    /// Starts the stores that are needed and `backends` mock backends behind
    /// an nginx.
    pub fn start(
        gateway_bin: &Path,
        backends: u32,
        redis: bool,
        cluster: bool,
    ) -> Result<Self, LabError> {
        if !gateway_bin.exists() {
            return Err(LabError::Missing(format!(
                "gateway binary {} not found; build it with: cargo build --release -p rateguard",
                gateway_bin.display()
            )));
        }
        let redis = redis.then(RedisServer::start).transpose()?;
        let cluster = cluster.then(|| RedisCluster::start(3)).transpose()?;
        let backends = (1..=backends)
            .map(|i| MockBackend::start(gateway_bin, &format!("backend-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = backends.iter().map(MockBackend::addr).collect();
        let back = Nginx::start(&addrs)?;
        Ok(Self {
            back,
            _backends: backends,
            redis,
            cluster,
            gateway_bin: gateway_bin.to_path_buf(),
        })
    }

    /// The Redis URLs `store` uses (empty for `memory`).
    pub fn store_urls(&self, store: &str) -> Vec<String> {
        match store {
            "redis-lua" | "redis-pipelined" => self.redis.iter().map(RedisServer::url).collect(),
            "fred-cluster" => self.cluster.iter().flat_map(RedisCluster::urls).collect(),
            _ => Vec::new(),
        }
    }

    /// Starts `replicas` gateways with `store` (each healthy before the
    /// next), then a front nginx over them.
    pub fn deploy(
        &self,
        store: &str,
        replicas: u32,
        policies: &[Policy],
    ) -> Result<Deployment, LabError> {
        let urls = self.store_urls(store);
        let gateways = (1..=replicas)
            .map(|i| {
                let config = gateway_config::render(
                    &format!("gw-{i}"),
                    store,
                    &urls,
                    &self.back.url(),
                    policies,
                );
                GatewayProcess::start(&self.gateway_bin, &config)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
        let front = Nginx::start(&addrs)?;
        Ok(Deployment { front, gateways })
    }
}
