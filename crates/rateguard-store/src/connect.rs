//! Store construction: a [`StoreKind`] → a connected store of its own type
//! → a monomorphised [`StoreUser::run`] (a replica of `rateguard serve` or
//! `rateguard rls`). The only `match` on store kinds outside the
//! vocabulary: a new kind is its module, one arm here and one line in
//! `rateguard_contract::StoreKind`.

use std::future::Future;
use std::time::Duration;

use crate::{
    BucketStore, FredClusterStore, MemoryStore, RedisLeasedStore, RedisLuaStore, RedisOptions,
    RedisPipelinedStore, StoreError, StoreKind,
};

/// How often the memory store drops buckets that are full again.
const EVICTION_PERIOD: Duration = Duration::from_secs(30);

/// What runs on the store once it is connected, whatever its kind.
pub trait StoreUser {
    /// What [`run`](Self::run) returns.
    type Output;

    /// Runs with the connected `store`.
    fn run<S: BucketStore>(self, store: S) -> impl Future<Output = Self::Output> + Send;
}

/// Connects a store of `kind` (the Redis kinds with `options`; the memory
/// store with its eviction task, so call it inside a Tokio runtime) and
/// hands it to `user`.
pub async fn connect<U: StoreUser>(
    kind: StoreKind,
    options: &RedisOptions,
    user: U,
) -> Result<U::Output, StoreError> {
    Ok(match kind {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            store.spawn_eviction(EVICTION_PERIOD);
            user.run(store).await
        }
        StoreKind::RedisLua => user.run(RedisLuaStore::connect(options).await?).await,
        StoreKind::RedisPipelined => user.run(RedisPipelinedStore::connect(options).await?).await,
        StoreKind::FredCluster => user.run(FredClusterStore::connect(options).await?).await,
        StoreKind::RedisLeased => user.run(RedisLeasedStore::connect(options).await?).await,
    })
}
