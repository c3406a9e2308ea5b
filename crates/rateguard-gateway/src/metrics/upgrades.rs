//! [`UpgradeMetrics`]: `rateguard_upgrades_total{result}` (upgrade
//! requests, WebSocket handshakes included, relayed with the backend's
//! `101` or refused by a limit) and `rateguard_upgraded_connections` (open
//! upgraded connections, maintained by the accept loop).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rateguard_contract::vocabulary;

vocabulary! {
    /// `rateguard_upgrades_total{result}`.
    pub enum UpgradeResult ("upgrade result") {
        /// The backend switched protocols; the connection is now relayed.
        Accepted = "accepted",
        /// A limit refused the handshake (429; nothing reached the backend).
        Denied = "denied",
    }
}

impl EncodeLabelValue for UpgradeResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: UpgradeResult,
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
        let family = Family::<ResultLabels, Counter>::default();
        registry.register(
            "rateguard_upgrades",
            "Upgrade requests (WebSocket handshakes) by result: accepted (the backend's 101 relayed) or denied (429)",
            family.clone(),
        );
        let results =
            UpgradeResult::ALL.map(|result| family.get_or_create(&ResultLabels { result }).clone());
        let open = Gauge::default();
        registry.register(
            "rateguard_upgraded_connections",
            "Open upgraded connections (WebSocket), relayed byte for byte",
            open.clone(),
        );
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
