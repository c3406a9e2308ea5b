//! Every process of a perf run, up at once for all rounds: the nginx
//! backend, the nginx ceiling, the stores the cases need and one gateway
//! per gateway case (two with a baseline binary: one of each build).
//! Dropping a [`Topology`] stops them all by pid.

use std::net::SocketAddr;
use std::path::Path;

use rateguard_testkit::{GatewayProcess, RedisCluster, RedisServer};

use super::case::{toml_without_defaults, Case, Subject, Target};
use super::nginx::{NginxProcess, Role};
use super::PerfError;

/// The running processes.
#[derive(Debug)]
pub struct Topology {
    // Targets first: they stop before what they forward to.
    gateways: Vec<(Subject, GatewayProcess)>,
    proxy: Option<NginxProcess>,
    redis: Option<RedisServer>,
    cluster: Option<RedisCluster>,
    backend: NginxProcess,
}

impl Topology {
    /// Starts what `cases` need; gateways run the `rateguard` at `binary`,
    /// and also the one at `baseline` if given.
    pub fn start(
        binary: &Path,
        baseline: Option<&Path>,
        cases: &[Case],
    ) -> Result<Self, PerfError> {
        let backend = NginxProcess::start(Role::Backend)?;
        let needs = |pred: fn(&rateguard_contract::StoreKind) -> bool| {
            cases.iter().filter_map(|c| c.store()).any(|k| pred(&k))
        };
        let redis = needs(|k| k.needs_redis())
            .then(RedisServer::start)
            .transpose()?;
        let cluster = needs(|k| k.needs_cluster())
            .then(|| RedisCluster::start(3))
            .transpose()?;
        let proxy = cases
            .contains(&Case::NginxProxy)
            .then(|| NginxProcess::start(Role::Proxy(backend.addr())))
            .transpose()?;
        let upstream = format!("http://{}", backend.addr());
        let mut gateways = Vec::new();
        for &case in cases {
            let urls = match case.store() {
                Some(kind) if kind.needs_redis() => redis.iter().map(RedisServer::url).collect(),
                Some(kind) if kind.needs_cluster() => {
                    cluster.as_ref().map(RedisCluster::urls).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            if let Some(config) = case.gateway_config(&upstream, &urls) {
                let toml = toml_without_defaults(&config);
                let current = Subject {
                    case,
                    baseline: false,
                };
                gateways.push((current, GatewayProcess::start(binary, &toml)?));
                if let Some(baseline) = baseline {
                    let subject = Subject {
                        case,
                        baseline: true,
                    };
                    gateways.push((subject, GatewayProcess::start(baseline, &toml)?));
                }
            }
        }
        Ok(Self {
            gateways,
            proxy,
            redis,
            cluster,
            backend,
        })
    }

    fn gateway(&self, subject: Subject) -> Option<&GatewayProcess> {
        self.gateways
            .iter()
            .find(|(s, _)| *s == subject)
            .map(|(_, g)| g)
    }

    /// What runs: every case of the current build, then the baseline's.
    pub fn subjects(&self, cases: &[Case]) -> Vec<Subject> {
        let current = cases.iter().map(|&case| Subject {
            case,
            baseline: false,
        });
        let baseline = self.gateways.iter().map(|(s, _)| *s).filter(|s| s.baseline);
        current.chain(baseline).collect()
    }

    /// Where `wrk` sends `subject`'s requests.
    pub fn addr(&self, subject: Subject) -> Option<SocketAddr> {
        match subject.case.target() {
            Target::Nginx => self.proxy.as_ref().map(NginxProcess::addr),
            Target::Gateway(..) => self.gateway(subject).map(GatewayProcess::addr),
        }
    }

    /// The pids whose CPU time is `subject`'s cost (nginx: the master,
    /// whose workers are counted as its children).
    pub fn target_pids(&self, subject: Subject) -> Vec<u32> {
        match subject.case.target() {
            Target::Nginx => self.proxy.iter().map(NginxProcess::pid).collect(),
            Target::Gateway(..) => self
                .gateway(subject)
                .map(GatewayProcess::pid)
                .into_iter()
                .collect(),
        }
    }

    /// The pids of the store `case` talks to (none for memory and nginx).
    pub fn store_pids(&self, case: Case) -> Vec<u32> {
        match case.store() {
            Some(kind) if kind.needs_redis() => self.redis.iter().map(RedisServer::pid).collect(),
            Some(kind) if kind.needs_cluster() => self
                .cluster
                .as_ref()
                .map(RedisCluster::node_pids)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The backend's master pid.
    pub fn backend_pid(&self) -> u32 {
        self.backend.pid()
    }
}
