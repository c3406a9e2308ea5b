//! [`Live`]: what a reload replaces in a gateway replica (policies,
//! identity rules, the config they came from), and [`LiveSlot`], the
//! replica's one copy of it and its [`Reload`] target. Which sections swap
//! live and which need a restart is the runtime's table
//! (`rateguard_runtime::reload::sections`).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rateguard_contract::RawConfig;
use rateguard_runtime::reload::{api_keys_summary, carry_over, ActiveConfig, Command, Reload};
use rateguard_runtime::ConfigMetrics;

use crate::config::ValidConfig;
use crate::identity::Identifier;
use crate::metrics::Metrics;
use crate::policy::PolicyTable;
use crate::registry::KeyRegistry;

/// `GET /config`'s view of `raw` (the file as read, or with the sections
/// that need a restart as they run) with `config`'s API keys file.
fn active_config(config: &ValidConfig, raw: &RawConfig) -> ActiveConfig {
    let mut files = serde_json::Map::new();
    if let Some(keys) = &config.identity.known_api_keys {
        files.insert(
            "identity.api_keys_file".into(),
            api_keys_summary(
                keys.iter()
                    .map(|(digest, plan)| (digest, plan.map(|i| config.plans[i].name.as_str()))),
            ),
        );
    }
    ActiveConfig::with_files(raw, files)
}

/// What a reload replaces: the policies and identity rules, and the
/// config they came from.
#[derive(Debug)]
pub struct Live {
    policies: PolicyTable,
    identity: Identifier,
    config: ActiveConfig,
}

impl Live {
    /// `config`'s policies and identity rules; `raw` is the config in force
    /// (the sections a reload left as they run included).
    fn new(
        config: &ValidConfig,
        raw: RawConfig,
        metrics: &Metrics,
        registry: Option<&Arc<KeyRegistry>>,
    ) -> Self {
        let mut identity = Identifier::new(&config.identity);
        if let Some(registry) = registry {
            let plans: Vec<String> = config.plans.iter().map(|p| p.name.clone()).collect();
            identity = identity.with_registry(registry.clone(), &plans);
        }
        Self {
            policies: PolicyTable::with_plans(&config.policies, &config.plans, metrics),
            identity,
            config: active_config(config, &raw),
        }
    }

    /// The policies.
    pub fn policies(&self) -> &PolicyTable {
        &self.policies
    }

    /// The identification rules.
    pub fn identity(&self) -> &Identifier {
        &self.identity
    }

    /// The config in force, as `GET /config` shows it.
    pub fn config(&self) -> &ActiveConfig {
        &self.config
    }
}

/// A replica's live part, swapped whole (one atomic pointer store) by a
/// reload: a request loads it once and keeps that snapshot to its answer.
#[derive(Debug)]
pub struct LiveSlot {
    live: ArcSwap<Live>,
    /// The hash of the config as read at start (for the file watcher).
    start_hash: String,
    metrics: Arc<Metrics>,
    /// `identity.keys = "redis"`: the key registry (kept across reloads;
    /// the source of keys is chosen at start).
    registry: Option<Arc<KeyRegistry>>,
}

impl LiveSlot {
    /// `config`'s live part, its counters in `metrics` (and its hash as
    /// `rateguard_config_info`).
    pub fn new(config: &ValidConfig, metrics: Arc<Metrics>) -> Self {
        Self::with_registry(config, metrics, None)
    }

    /// [`new`](Self::new), the known keys from `registry` if given.
    pub fn with_registry(
        config: &ValidConfig,
        metrics: Arc<Metrics>,
        registry: Option<Arc<KeyRegistry>>,
    ) -> Self {
        let live = Live::new(config, config.raw.clone(), &metrics, registry.as_ref());
        metrics.config().set_hash(live.config.hash());
        Self {
            start_hash: live.config.hash().to_owned(),
            live: ArcSwap::from_pointee(live),
            metrics,
            registry,
        }
    }

    /// The live part now.
    pub fn load(&self) -> Arc<Live> {
        self.live.load_full()
    }
}

impl Reload for LiveSlot {
    type Config = ValidConfig;

    /// Swaps in `next`'s policies and identity rules; what needs a restart
    /// (`[server]`, `[upstream]`, `[store]`) stays as it runs.
    fn apply(&self, next: ValidConfig) -> Vec<String> {
        let current = self.load();
        let mut raw = next.raw.clone();
        let restart = carry_over(Command::Serve, current.config.raw(), &mut raw);
        let live = Live::new(&next, raw, &self.metrics, self.registry.as_ref());
        self.metrics.config().set_hash(live.config.hash());
        tracing::info!(
            hash = live.config.hash(),
            policies = ?next.policies.iter().map(|p| p.summary()).collect::<Vec<_>>(),
            "New policies and identity rules active."
        );
        self.live.store(Arc::new(live));
        restart
    }

    fn config_metrics(&self) -> &ConfigMetrics {
        self.metrics.config()
    }

    fn read_hash(config: &ValidConfig) -> String {
        active_config(config, &config.raw).hash().to_owned()
    }

    fn start_hash(&self) -> Option<String> {
        Some(self.start_hash.clone())
    }
}

#[cfg(test)]
mod tests;
