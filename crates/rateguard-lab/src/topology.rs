//! The lab's processes, all from `rateguard-testkit`: redis-server, a
//! 3-master Redis Cluster, M mock backends behind one nginx (started once),
//! and per store N gateway replicas behind a front nginx.
//!
//! Everything is a child of this process on free loopback ports, stopped by
//! its own pid when its guard drops: at the end, on an error, or when Ctrl-C
//! drops the running lab future.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rateguard_contract::{Backend, RawConfig, StoreKind};
use rateguard_testkit::{GatewayProcess, MockBackend, Nginx, RedisCluster, RedisServer};

use crate::front::Front;
use crate::gateway_config;
use crate::LabError;

/// The long-lived part of the topology (everything but the gateways).
#[derive(Debug)]
pub struct Topology {
    // Field order is drop order: the balancer first, the stores last.
    back: Nginx,
    backends: Vec<MockBackend>,
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
    front: Front,
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

    /// The replicas' admin addresses (`/healthz`, `/metrics`), in order.
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        self.gateways
            .iter()
            .map(GatewayProcess::admin_addr)
            .collect()
    }

    /// The pids of the front nginx's master and of every replica.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.front.pid()];
        pids.extend(self.gateways.iter().map(GatewayProcess::pid));
        pids
    }

    /// `rateguard_decisions_total` by `decision`, summed over every
    /// replica's `/metrics` (and over policies).
    pub async fn decisions(&self) -> Result<BTreeMap<String, u64>, LabError> {
        let mut total = BTreeMap::new();
        for gw in &self.gateways {
            let (status, body) = gw.admin_get("/metrics").await?;
            if status != 200 {
                return Err(LabError::Gateway(format!("/metrics answered {status}")));
            }
            for (decision, n) in parse_decisions(&body)? {
                *total.entry(decision).or_insert(0) += n;
            }
        }
        Ok(total)
    }
}

/// The `rateguard_decisions_total` samples of a `/metrics` text, summed by
/// their `decision` label.
pub fn parse_decisions(metrics: &str) -> Result<BTreeMap<String, u64>, LabError> {
    let lines = metrics.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| LabError::Gateway(format!("unreadable /metrics: {e}")))?;
    let mut out = BTreeMap::new();
    for sample in scrape.samples {
        if sample.metric != "rateguard_decisions_total" {
            continue;
        }
        // OpenMetrics names the family without `_total`, so the parser
        // may not know the sample is a counter.
        let (prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Untyped(n)) =
            sample.value
        else {
            continue;
        };
        if let Some(decision) = sample.labels.get("decision") {
            *out.entry(decision.to_owned()).or_insert(0) += n as u64;
        }
    }
    Ok(out)
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
            backends,
            redis,
            cluster,
            gateway_bin: gateway_bin.to_path_buf(),
        })
    }

    /// Mock backends running.
    pub fn backends(&self) -> usize {
        self.backends.len()
    }

    /// The Redis URLs `store` uses (none for an in-process store).
    pub fn store_urls(&self, store: StoreKind) -> Vec<String> {
        match store.backend() {
            Backend::Redis => self.redis.iter().map(RedisServer::url).collect(),
            Backend::RedisCluster => self.cluster.iter().flat_map(RedisCluster::urls).collect(),
            Backend::InProcess => Vec::new(),
        }
    }

    /// Starts `replicas` gateways running `config` with `store`
    /// [placed](gateway_config::place) on this topology's servers, as
    /// `gw-1`, `gw-2`, ... (each healthy before the next), then a front nginx
    /// over them on `front_port` (`None` or 0: a free port).
    pub fn deploy(
        &self,
        store: StoreKind,
        config: &RawConfig,
        replicas: u32,
        front_port: Option<u16>,
    ) -> Result<Deployment, LabError> {
        let mut config = config.clone();
        gateway_config::place(
            &mut config,
            store,
            &self.store_urls(store),
            &self.back.url(),
        );
        let gateways = (1..=replicas)
            .map(|i| {
                let file = gateway_config::for_replica(&config, &format!("gw-{i}"));
                Ok(GatewayProcess::start(&self.gateway_bin, &file)?)
            })
            .collect::<Result<Vec<_>, LabError>>()?;
        let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayProcess::addr).collect();
        let front = Front::start(&addrs, front_port)?;
        Ok(Deployment { front, gateways })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_decisions;

    #[test]
    fn sums_decisions_over_policies() {
        // As prometheus-client writes it (OpenMetrics text).
        let text = "# HELP rateguard_decisions Rate-limit decisions.\n\
            # TYPE rateguard_decisions counter\n\
            rateguard_decisions_total{policy=\"a\",decision=\"allowed\"} 5\n\
            rateguard_decisions_total{policy=\"b\",decision=\"allowed\"} 2\n\
            rateguard_decisions_total{policy=\"b\",decision=\"failed_open\"} 3\n\
            rateguard_store_seconds_count 9\n\
            # EOF\n";
        let d = parse_decisions(text).unwrap();
        assert_eq!(d.get("allowed"), Some(&7));
        assert_eq!(d.get("failed_open"), Some(&3));
        assert_eq!(d.len(), 2);
    }
}
