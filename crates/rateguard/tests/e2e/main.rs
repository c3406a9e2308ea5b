//! End-to-end: the `rateguard` binary as real processes, with real
//! `redis-server` / Redis Cluster, real nginx and real Envoy, all on loopback.

mod admin;
mod binary;
mod cluster;
mod envoy;
mod failures;
mod grpc;
mod ipv6;
mod layered;
mod leased;
mod local_fallback;
mod managed_redis;
mod paths;
mod plans;
mod provisioning;
mod readiness;
mod recovery;
mod reload;
mod rlqs;
mod rls_store;
mod shutdown;
mod streaming;
mod support;
mod websocket;
