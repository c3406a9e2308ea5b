//! Store construction: `store.kind` → a connected store of its own type →
//! a monomorphised [`StoreUser::run`] ([`Server::run_with_store`] for
//! `serve`, the Rate Limit Service for `rls`). The only match on store kinds.

use std::future::Future;
use std::time::Duration;

use rateguard_store::{
    BucketStore, FredClusterStore, MemoryStore, RedisLuaStore, RedisOptions, RedisPipelinedStore,
    StoreKind,
};

use super::Server;
use crate::config::StoreConfig;
use crate::error::ServeError;

/// How often the memory store drops buckets that are full again.
const EVICTION_PERIOD: Duration = Duration::from_secs(30);

/// What runs on the store once it is connected, whatever its kind.
pub trait StoreUser {
    /// What [`run`](Self::run) returns.
    type Output;

    /// Runs with the connected `store`.
    fn run<S: BucketStore>(self, store: S) -> impl Future<Output = Self::Output>;
}

/// Connects the store `config` names (the memory store with its eviction
/// task) and hands it to `user`.
pub async fn with_store<U: StoreUser>(
    config: &StoreConfig,
    user: U,
) -> Result<U::Output, ServeError> {
    let kind = config.kind;
    let options = redis_options(config);
    let failed = |source| ServeError::Store { kind, source };
    Ok(match kind {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            store.spawn_eviction(EVICTION_PERIOD);
            user.run(store).await
        }
        StoreKind::RedisLua => {
            let store = RedisLuaStore::connect(&options).await.map_err(failed)?;
            user.run(store).await
        }
        StoreKind::RedisPipelined => {
            let store = RedisPipelinedStore::connect(&options)
                .await
                .map_err(failed)?;
            user.run(store).await
        }
        StoreKind::FredCluster => {
            let store = FredClusterStore::connect(&options).await.map_err(failed)?;
            user.run(store).await
        }
    })
}

/// `serve`'s use of the store: the replica until `shutdown`.
struct Replica<F> {
    server: Server,
    shutdown: F,
}

impl<F: Future<Output = ()> + Send + 'static> StoreUser for Replica<F> {
    type Output = Result<(), ServeError>;

    fn run<S: BucketStore>(self, store: S) -> impl Future<Output = Self::Output> {
        self.server.run_with_store(store, self.shutdown)
    }
}

/// Connects the configured store and serves with it until `shutdown`.
pub(super) async fn connect_and_run(
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = server.config.store.clone();
    with_store(&config, Replica { server, shutdown }).await?
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
        access: config.access.clone(),
        ..RedisOptions::default()
    }
}
