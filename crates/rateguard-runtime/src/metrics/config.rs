//! [`ConfigMetrics`]: `rateguard_config_reloads_total{result}` and
//! `rateguard_config_info{hash}`, for any process that reloads its config
//! (the gateway, `rateguard rls`).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Labelled;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rateguard_contract::metrics::{Family, ReloadResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabels {
    hash: String,
}

/// Reload outcomes and the active config's hash.
#[derive(Debug)]
pub struct ConfigMetrics {
    reloads: [Counter; ReloadResult::ALL.len()],
    info: Labelled<HashLabels, Gauge>,
    // The hash exported now: replaced (old series removed) on a change.
    current: Mutex<Option<String>>,
}

impl ConfigMetrics {
    /// Registers both metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let reloads = Labelled::<ResultLabels, Counter>::default();
        let family = Family::ConfigReloads;
        registry.register(family.name(), family.help(), reloads.clone());
        let info = Labelled::<HashLabels, Gauge>::default();
        let family = Family::ConfigInfo;
        registry.register(family.name(), family.help(), info.clone());
        Self {
            reloads: ReloadResult::ALL.map(|result| {
                let result = result.as_str();
                reloads.get_or_create(&ResultLabels { result }).clone()
            }),
            info,
            current: Mutex::new(None),
        }
    }

    /// Counts one reload.
    pub fn reloaded(&self, result: ReloadResult) {
        self.reloads[result.index()].inc();
    }

    /// Exports `hash` as the active config's (the previous one goes).
    pub fn set_hash(&self, hash: &str) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.take() {
            self.info.remove(&HashLabels { hash: old });
        }
        self.info
            .get_or_create(&HashLabels {
                hash: hash.to_owned(),
            })
            .set(1);
        *current = Some(hash.to_owned());
    }
}
