//! The paths of the gateway's admin listener.

/// Liveness: `200` whenever the process serves (store reachability in the body).
pub const HEALTHZ: &str = "/healthz";
/// Readiness: `200` when the store answers a ping in time, else `503`.
pub const READYZ: &str = "/readyz";
/// Prometheus/OpenMetrics text exposition.
pub const METRICS: &str = "/metrics";
/// The active configuration (secrets redacted) and its hash, as JSON.
pub const CONFIG: &str = "/config";
/// A bucket, seen (`GET`, no spending) or reset (`DELETE`); needs the
/// bearer token of `[admin] token_file`.
pub const BUCKETS: &str = "/buckets";
/// The environment variable `rateguard bucket` reads the admin token from.
pub const TOKEN_ENV: &str = "RATEGUARD_ADMIN_TOKEN";
