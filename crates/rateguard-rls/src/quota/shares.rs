//! [`ShareStore`]: where the rate shares of RLQS buckets live.
//!
//! With a standalone Redis (`redis-lua`, `redis-pipelined`) the shares are
//! `share.lua`'s ledgers ([`LeaseScripts`]), at Redis `TIME`, so every
//! `rateguard rls` replica on that Redis divides one bucket among all of
//! its Envoys. With `memory` they are the same ledgers
//! ([`rateguard_core::share::Stored`]) in this process: one replica's
//! Envoys only. The memory ledgers also serve `on_error = "local"`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use rateguard_contract::Backend;
use rateguard_core::share::{ShareGrant, ShareRequest, Stored};
use rateguard_core::{BucketKey, Quota};
use rateguard_runtime::StoreConfig;
use rateguard_store::{LeaseScripts, StoreError};

/// Grants between two sweeps of forgotten memory ledgers.
const SWEEP_EVERY: u64 = 1024;

/// Where shares are kept.
#[derive(Debug)]
pub enum ShareStore {
    /// `share.lua` on one Redis server.
    Redis(LeaseScripts),
    /// Ledgers in this process.
    Memory(MemoryShares),
    /// A store kind RLQS cannot use (a Redis Cluster): streams are refused.
    Unsupported(&'static str),
}

impl ShareStore {
    /// The share store of `[store]`: its Redis for a standalone Redis kind,
    /// this process for `memory`.
    pub async fn for_config(store: &StoreConfig) -> Result<Self, StoreError> {
        Ok(match store.kind.backend() {
            Backend::InProcess => Self::Memory(MemoryShares::default()),
            Backend::Redis => {
                // Share calls are off the request path: they may take what
                // a renewal allows, not just a request's budget.
                let mut options = store.redis_options();
                options.timeout = options.timeout.max(super::stream::SHARE_BUDGET);
                Self::Redis(LeaseScripts::connect(&options).await?)
            }
            Backend::RedisCluster => Self::Unsupported(store.kind.as_str()),
        })
    }

    /// Renews `req.holder`'s share of `key`'s bucket.
    pub async fn share(
        &self,
        key: &BucketKey,
        quota: &Quota,
        req: &ShareRequest<'_>,
    ) -> Result<ShareGrant, StoreError> {
        match self {
            Self::Redis(scripts) => scripts.share(key, quota, req).await,
            Self::Memory(memory) => Ok(memory.share(key, quota, req)),
            Self::Unsupported(kind) => Err(StoreError::Backend(format!(
                "store kind {kind} cannot hold RLQS shares"
            ))),
        }
    }
}

/// Grants so far, and each bucket's quota and ledger.
type Ledgers = (u64, HashMap<BucketKey, (Quota, Stored)>);

/// Share ledgers in this process, at its monotonic clock.
#[derive(Debug)]
pub struct MemoryShares {
    origin: Instant,
    ledgers: Mutex<Ledgers>,
}

impl Default for MemoryShares {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            ledgers: Mutex::new((0, HashMap::new())),
        }
    }
}

impl MemoryShares {
    /// Renews `req.holder`'s share of `key`'s bucket now.
    pub fn share(&self, key: &BucketKey, quota: &Quota, req: &ShareRequest<'_>) -> ShareGrant {
        // Starts at 1 s so that no step ever expires at time 0.
        let now_us = self.origin.elapsed().as_micros() as u64 + 1_000_000;
        let mut guard = self.ledgers.lock().unwrap_or_else(|e| e.into_inner());
        let (grants, ledgers) = &mut *guard;
        *grants += 1;
        if *grants % SWEEP_EVERY == 0 {
            ledgers.retain(|_, (quota, stored)| match stored {
                Stored::Plain { tat_us } => *tat_us > now_us,
                Stored::Shared(ledger) => ledger.forget_at_us(quota).is_some_and(|t| t > now_us),
            });
        }
        let (held, stored) = ledgers
            .entry(key.clone())
            .or_insert_with(|| (*quota, Stored::default()));
        *held = *quota;
        stored.grant(now_us, quota, req)
    }
}
