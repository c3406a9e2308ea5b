//! Every process of a perf run, up at once for all rounds: the nginx
//! backend, the nginx ceiling, the reference proxies, the stores the cases
//! need and one gateway per gateway case (two with a baseline binary: one
//! of each build). Dropping a [`Topology`] stops them all by pid.

use std::net::SocketAddr;
use std::path::Path;

use rateguard_testkit::{procstat, GatewayProcess, Nginx, RedisCluster, RedisServer};

use super::case::{Case, Subject, Target};
use super::limits::toml_without_defaults;
use super::nginx::{self, Role};
use super::reference::RefProxy;
use super::PerfError;

/// The binaries a run measures.
#[derive(Debug, Clone, Copy)]
pub struct Binaries<'a> {
    /// `rateguard`, the build under test.
    pub rateguard: &'a Path,
    /// Another `rateguard` measured beside it (`--baseline`).
    pub baseline: Option<&'a Path>,
    /// `rateguard-refproxy`, the reference proxies.
    pub refproxy: &'a Path,
}

/// The running processes.
#[derive(Debug)]
pub struct Topology {
    // Targets first: they stop before what they forward to.
    gateways: Vec<(Subject, GatewayProcess)>,
    references: Vec<(Case, RefProxy)>,
    proxy: Option<Nginx>,
    redis: Option<RedisServer>,
    cluster: Option<RedisCluster>,
    backend: Nginx,
}

impl Topology {
    /// Starts what `cases` need.
    pub fn start(binaries: Binaries<'_>, cases: &[Case]) -> Result<Self, PerfError> {
        let backend = nginx::start(Role::Backend)?;
        let redis = cases
            .iter()
            .any(|c| c.needs_redis())
            .then(RedisServer::start)
            .transpose()?;
        let cluster = cases
            .iter()
            .any(|c| c.needs_cluster())
            .then(|| RedisCluster::start(3))
            .transpose()?;
        let proxy = cases
            .contains(&Case::NGINX_PROXY)
            .then(|| nginx::start(Role::Proxy(backend.addr())))
            .transpose()?;
        let upstream = format!("http://{}", backend.addr());
        let redis_url = redis.as_ref().map(RedisServer::url);
        let mut gateways = Vec::new();
        let mut references = Vec::new();
        for &case in cases {
            if let Target::Reference(_) = case.target {
                let proxy = RefProxy::start(
                    binaries.refproxy,
                    case,
                    backend.addr(),
                    redis_url.as_deref(),
                )?;
                references.push((case, proxy));
                continue;
            }
            let urls = if case.needs_redis() {
                redis_url.iter().cloned().collect()
            } else if case.needs_cluster() {
                cluster.as_ref().map(RedisCluster::urls).unwrap_or_default()
            } else {
                Vec::new()
            };
            let Some(config) = case.gateway_config(&upstream, &urls) else {
                continue;
            };
            let toml = toml_without_defaults(&config);
            let builds = [Some(binaries.rateguard), binaries.baseline];
            for (baseline, binary) in [false, true].into_iter().zip(builds) {
                if let Some(binary) = binary {
                    let subject = Subject { case, baseline };
                    gateways.push((subject, GatewayProcess::start(binary, &toml)?));
                }
            }
        }
        Ok(Self {
            gateways,
            references,
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

    fn reference(&self, case: Case) -> Option<&RefProxy> {
        self.references
            .iter()
            .find(|(c, _)| *c == case)
            .map(|(_, p)| p)
    }

    /// What runs: every case of the current build, then the baseline's.
    pub fn subjects(&self, cases: &[Case]) -> Vec<Subject> {
        let current = cases.iter().map(|&case| Subject::current(case));
        let baseline = self.gateways.iter().map(|(s, _)| *s).filter(|s| s.baseline);
        current.chain(baseline).collect()
    }

    /// Where `wrk` sends `subject`'s requests.
    pub fn addr(&self, subject: Subject) -> Option<SocketAddr> {
        match subject.case.target {
            Target::Nginx => self.proxy.as_ref().map(Nginx::addr),
            Target::Reference(_) => self.reference(subject.case).map(RefProxy::addr),
            Target::Gateway(..) => self.gateway(subject).map(GatewayProcess::addr),
        }
    }

    /// The pids whose CPU time and memory are `subject`'s cost (nginx: the
    /// master and its workers).
    pub fn target_pids(&self, subject: Subject) -> Vec<u32> {
        let pid = match subject.case.target {
            Target::Nginx => self.proxy.as_ref().map(Nginx::pid),
            Target::Reference(_) => self.reference(subject.case).map(RefProxy::pid),
            Target::Gateway(..) => self.gateway(subject).map(GatewayProcess::pid),
        };
        procstat::with_children(&pid.into_iter().collect::<Vec<_>>())
    }

    /// The pids of the store `case` talks to (none for memory, nginx and
    /// the plain reference).
    pub fn store_pids(&self, case: Case) -> Vec<u32> {
        if case.needs_redis() {
            self.redis.iter().map(RedisServer::pid).collect()
        } else if case.needs_cluster() {
            self.cluster
                .as_ref()
                .map(RedisCluster::node_pids)
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    }

    /// The backend's master pid.
    pub fn backend_pid(&self) -> u32 {
        self.backend.pid()
    }
}
