//! End-to-end: the `rateguard` binary as real processes, with real
//! `redis-server` / Redis Cluster and real nginx, all on loopback.

mod binary;
mod cluster;
mod failures;
mod paths;
mod readiness;
mod recovery;
mod shutdown;
mod streaming;
mod support;
