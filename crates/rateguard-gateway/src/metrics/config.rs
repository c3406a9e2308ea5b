//! [`ConfigMetrics`]: `rateguard_config_reloads_total{result}` and
//! `rateguard_config_info{hash}`, for any process that reloads its config
//! (the gateway, `rateguard rls`).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ReloadResult;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: ReloadResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabels {
    hash: String,
}

/// Reload outcomes and the active config's hash.
#[derive(Debug)]
pub struct ConfigMetrics {
    reloads: [Counter; ReloadResult::ALL.len()],
    info: Family<HashLabels, Gauge>,
    // The hash exported now: replaced (old series removed) on a change.
    current: Mutex<Option<String>>,
}

impl ConfigMetrics {
    /// Registers both metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "rateguard_config_reloads",
            "Config reloads by result (error: the new file was invalid; the old config stays)",
            reloads.clone(),
        );
        let info = Family::<HashLabels, Gauge>::default();
        registry.register(
            "rateguard_config_info",
            "1 for the hash of the active config (GET /config on the admin port)",
            info.clone(),
        );
        Self {
            reloads: ReloadResult::ALL
                .map(|result| reloads.get_or_create(&ResultLabels { result }).clone()),
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
