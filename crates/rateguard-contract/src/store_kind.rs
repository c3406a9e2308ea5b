//! [`StoreKind`]: which bucket store a gateway runs, and what it needs.

crate::vocabulary! {
    /// Which bucket store a gateway runs (`store.kind`, the lab's store ids,
    /// `BucketStore::kind`). Adding a kind is its line here and its
    /// [`Backend`] in [`StoreKind::backend`], from which everything it
    /// needs follows.
    pub enum StoreKind ("kind") {
        /// In-process buckets: each replica enforces its own limit.
        Memory = "memory",
        /// Redis, one `EVALSHA` of the token-bucket script per decision.
        RedisLua = "redis-lua",
        /// Redis, decisions coalesced into pipelines of `EVALSHA`s.
        RedisPipelined = "redis-pipelined",
        /// fred on a Redis Cluster.
        FredCluster = "fred-cluster",
        /// Redis, `lease.lua`: replicas lease tokens of hot keys and spend
        /// them locally, never over the limit (`docs/leases.md`).
        RedisLeased = "redis-leased",
    }
}

/// Where a store kind keeps its buckets, i.e. what it needs to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Inside the gateway process: nothing to start, nothing shared.
    InProcess,
    /// One standalone `redis-server`.
    Redis,
    /// A Redis Cluster (any seed nodes as `store.urls`).
    RedisCluster,
}

impl StoreKind {
    /// Where this kind keeps its buckets.
    pub const fn backend(self) -> Backend {
        match self {
            Self::Memory => Backend::InProcess,
            Self::RedisLua | Self::RedisPipelined | Self::RedisLeased => Backend::Redis,
            Self::FredCluster => Backend::RedisCluster,
        }
    }

    /// Needs a standalone `redis-server`.
    pub const fn needs_redis(self) -> bool {
        matches!(self.backend(), Backend::Redis)
    }

    /// Needs a Redis Cluster.
    pub const fn needs_cluster(self) -> bool {
        matches!(self.backend(), Backend::RedisCluster)
    }

    /// Needs a server outside the gateway, so `store.urls` must name one.
    pub const fn needs_server(self) -> bool {
        !matches!(self.backend(), Backend::InProcess)
    }

    /// Replicas using this kind share one limit (a client gets `capacity`
    /// in total, not `capacity` per replica).
    pub const fn shared_across_replicas(self) -> bool {
        !matches!(self.backend(), Backend::InProcess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_backend() {
        let needs = StoreKind::ALL.map(|k| {
            (
                k.needs_redis(),
                k.needs_cluster(),
                k.needs_server(),
                k.shared_across_replicas(),
            )
        });
        assert_eq!(
            needs,
            [
                (false, false, false, false),
                (true, false, true, true),
                (true, false, true, true),
                (false, true, true, true),
                (true, false, true, true),
            ]
        );
    }
}
