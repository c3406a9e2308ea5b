//! [`KeyRegistry`]: this replica's copy of the key registry of
//! `identity.keys = "redis"` (API key digest → plan), kept by polling.
//!
//! Every [`POLL`] the replica reads the registry's version (one `GET`);
//! when it changed, it reads the whole registry (one atomic script) and
//! swaps its copy in. So a key added, moved to another plan or removed
//! with `rateguard keys` applies on every replica within [`POLL`] plus a
//! read, with no Redis round trip on any request (a request looks its key
//! up in the copy, as it does in the keys file).
//!
//! When Redis cannot be read, the copy stays as it was last read (a
//! replica that never read it knows no key: every key is limited as its
//! IP). With `store.on_error = "deny"`, once no read has succeeded for
//! `identity.keys_max_stale_ms`, a request with a key is refused (503)
//! rather than judged on an old copy ([`KeyRegistry::is_fresh`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rateguard_store::keys::{RedisKeys, Registry};
use rateguard_store::StoreError;

/// How often a replica reads the registry's version.
pub const POLL: Duration = Duration::from_millis(250);

/// This replica's copy of the key registry.
#[derive(Debug)]
pub struct KeyRegistry {
    keys: ArcSwap<Registry>,
    /// The version of `keys` (`u64::MAX`: never read).
    version: AtomicU64,
    origin: Instant,
    /// Milliseconds since `origin` of the last successful read, plus one
    /// (0: never).
    last_ok_ms: AtomicU64,
    max_stale: Duration,
}

impl KeyRegistry {
    /// An empty copy (no key known) that is stale after `max_stale`
    /// without a successful read.
    pub fn new(max_stale: Duration) -> Self {
        Self {
            keys: ArcSwap::from_pointee(Registry::new()),
            version: AtomicU64::new(u64::MAX),
            origin: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            max_stale,
        }
    }

    /// `digest`'s plan as an index into `plans` (the config's plan names):
    /// `None` for an unknown key, `Some(None)` for a key without a plan or
    /// on a plan the config does not have.
    pub fn plan_of(&self, digest: &[u8; 32], plans: &[String]) -> Option<Option<usize>> {
        let keys = self.keys.load();
        let plan = keys.get(digest)?;
        Some(
            plan.as_ref()
                .and_then(|name| plans.iter().position(|p| p == name)),
        )
    }

    /// Keys known now.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a read succeeded within `identity.keys_max_stale_ms`.
    pub fn is_fresh(&self) -> bool {
        let last = self.last_ok_ms.load(Ordering::Relaxed);
        last != 0 && self.now_ms().saturating_sub(last) <= self.max_stale.as_millis() as u64
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    /// Installs `registry` at `version` (what a read does).
    pub fn replace(&self, version: u64, registry: Registry) {
        self.keys.store(Arc::new(registry));
        self.version.store(version, Ordering::Relaxed);
        self.last_ok_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Reads the version from `source`, and the whole registry if it
    /// changed; returns whether the copy changed.
    pub async fn refresh(&self, source: &RedisKeys) -> Result<bool, StoreError> {
        let version = source.version().await?;
        if version == self.version.load(Ordering::Relaxed) {
            self.last_ok_ms.store(self.now_ms(), Ordering::Relaxed);
            return Ok(false);
        }
        let (version, registry) = source.load().await?;
        tracing::info!(version, keys = registry.len(), "Key registry read.");
        self.replace(version, registry);
        Ok(true)
    }

    /// Refreshes from `source` every [`POLL`] on the current Tokio
    /// runtime, until the registry is dropped.
    pub fn spawn_polling(self: &Arc<Self>, source: RedisKeys) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                let Some(registry) = weak.upgrade() else {
                    break;
                };
                match registry.refresh(&source).await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("Key registry readable again.");
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "Cannot read the key registry; keeping the last copy.");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_the_configs_plans_and_staleness_is_tracked() {
        let registry = KeyRegistry::new(Duration::from_millis(50));
        assert!(!registry.is_fresh(), "never read");
        let plans = ["free".to_owned(), "pro".to_owned()];
        registry.replace(
            3,
            Registry::from([
                ([1; 32], Some("pro".to_owned())),
                ([2; 32], None),
                ([3; 32], Some("gone".to_owned())),
            ]),
        );
        assert!(registry.is_fresh());
        assert_eq!(registry.plan_of(&[1; 32], &plans), Some(Some(1)));
        assert_eq!(registry.plan_of(&[2; 32], &plans), Some(None));
        assert_eq!(registry.plan_of(&[3; 32], &plans), Some(None));
        assert_eq!(registry.plan_of(&[4; 32], &plans), None);
        std::thread::sleep(Duration::from_millis(80));
        assert!(!registry.is_fresh(), "no read for longer than max_stale");
    }
}
