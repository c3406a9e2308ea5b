//! [`UpgradeMetrics`]: `rateguard_upgrades_total{result}` (upgrade
//! requests, WebSocket handshakes included, relayed with the backend's
//! `101` or refused by a limit) and `rateguard_upgraded_connections` (open
//! upgraded connections, maintained by the accept loop).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Labelled;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rateguard_contract::metrics::{Family, UpgradeResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Upgrade counters and the open-upgraded-connections gauge.
#[derive(Debug)]
pub struct UpgradeMetrics {
    results: [Counter; UpgradeResult::ALL.len()],
    open: Gauge,
}

impl UpgradeMetrics {
    /// Registers both metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let family = Labelled::<ResultLabels, Counter>::default();
        let upgrades = Family::Upgrades;
        registry.register(upgrades.name(), upgrades.help(), family.clone());
        let results = UpgradeResult::ALL.map(|result| {
            let result = result.as_str();
            family.get_or_create(&ResultLabels { result }).clone()
        });
        let open = Gauge::default();
        let connections = Family::UpgradedConnections;
        registry.register(connections.name(), connections.help(), open.clone());
        Self { results, open }
    }

    /// Counts one upgrade request by `result`.
    pub fn count(&self, result: UpgradeResult) {
        self.results[result.index()].inc();
    }

    /// The open-upgraded-connections gauge (for the accept loop).
    pub fn open(&self) -> &Gauge {
        &self.open
    }
}
