//! Store construction: `store.kind` → a connected store of its own type →
//! a monomorphised [`Server::run_with_store`]. The only match on store kinds
//! in the gateway.

use std::future::Future;
use std::time::Duration;

use rateguard_store::{
    FredClusterStore, MemoryStore, RedisLuaStore, RedisOptions, RedisPipelinedStore, StoreKind,
};

use super::Server;
use crate::config::StoreConfig;
use crate::error::ServeError;

/// How often the memory store drops buckets that are full again.
const EVICTION_PERIOD: Duration = Duration::from_secs(30);

/// Connects the configured store and serves with it until `shutdown`.
pub(super) async fn connect_and_run(
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = &server.config.store;
    let kind = config.kind;
    let options = redis_options(config);
    let failed = |source| ServeError::Store { kind, source };
    match kind {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            store.spawn_eviction(EVICTION_PERIOD);
            server.run_with_store(store, shutdown).await
        }
        StoreKind::RedisLua => {
            let store = RedisLuaStore::connect(&options).await.map_err(failed)?;
            server.run_with_store(store, shutdown).await
        }
        StoreKind::RedisPipelined => {
            let store = RedisPipelinedStore::connect(&options)
                .await
                .map_err(failed)?;
            server.run_with_store(store, shutdown).await
        }
        StoreKind::FredCluster => {
            let store = FredClusterStore::connect(&options).await.map_err(failed)?;
            server.run_with_store(store, shutdown).await
        }
    }
}

/// `[store]` as the Redis stores take it (breaker threshold and first
/// cooldown at their defaults).
pub fn redis_options(config: &StoreConfig) -> RedisOptions {
    RedisOptions {
        urls: config.urls.clone(),
        timeout: config.timeout,
        batch_max: config.batch_max,
        batch_wait: config.batch_wait,
        breaker_max_cooldown: config.breaker_max_cooldown,
        ..RedisOptions::default()
    }
}
