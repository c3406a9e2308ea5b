//! Store construction through [`rateguard_store::connect`]:
//! [`Server::run_with_store`] for `serve`, the Rate Limit Service for `rls`.

use std::future::Future;

use rateguard_store::{BucketStore, RedisOptions, StoreUser};

use super::Server;
use crate::config::StoreConfig;
use crate::error::ServeError;

/// Connects the store `config` names ([`rateguard_store::connect`]) and
/// hands it to `user`.
pub async fn with_store<U: StoreUser>(
    config: &StoreConfig,
    user: U,
) -> Result<U::Output, ServeError> {
    let kind = config.kind;
    rateguard_store::connect(kind, &redis_options(config), user)
        .await
        .map_err(|source| ServeError::Store { kind, source })
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
        ..RedisOptions::default()
    }
}
