//! The metrics every replica exports, whatever its frontend, registered
//! once here: [`StoreMetrics`] (`rateguard_store_latency_seconds`,
//! `rateguard_store_errors_total{error}`) and [`ConfigMetrics`]
//! (`rateguard_config_reloads_total{result}`, `rateguard_config_info{hash}`).
//! Names and label values are the contract's
//! ([`rateguard_contract::metrics`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Labelled;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rateguard_contract::metrics::{Family, StoreErrorKind};
use rateguard_store::StoreError;

mod config;

pub use config::ConfigMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

/// How long store decisions take and why they fail.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    latency: Histogram,
    errors: [Counter; StoreErrorKind::ALL.len()],
}

impl StoreMetrics {
    /// Registers both families in `registry`, every error kind at 0.
    pub fn register(registry: &mut Registry) -> Self {
        // 25 µs .. ~0.8 s: loopback Redis answers in tens of µs.
        let latency = Histogram::new(exponential_buckets(0.000_025, 2.0, 16));
        let family = Family::StoreLatency;
        registry.register(family.name(), family.help(), latency.clone());
        let errors = Labelled::<ErrorLabels, Counter>::default();
        let family = Family::StoreErrors;
        registry.register(family.name(), family.help(), errors.clone());
        let errors = StoreErrorKind::ALL.map(|kind| {
            let error = kind.as_str();
            errors.get_or_create(&ErrorLabels { error }).clone()
        });
        Self { latency, errors }
    }

    /// Records one store call's duration.
    pub fn observe_latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// Counts one store failure.
    pub fn error(&self, err: &StoreError) {
        self.errors[err.kind().index()].inc();
    }
}

/// Prometheus text exposition of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
