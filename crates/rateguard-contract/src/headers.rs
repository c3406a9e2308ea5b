//! HTTP header names, lowercase (as `http::HeaderName::from_static` wants
//! them; HTTP compares names case-insensitively).

/// `RateLimit: "<policy>";r=<remaining>;t=<seconds>` (IETF httpapi draft).
pub const RATELIMIT: &str = "ratelimit";
/// `RateLimit-Policy: "<policy>";q=<capacity>;w=<window seconds>`.
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
/// `Retry-After: <seconds>` on a 429.
pub const RETRY_AFTER: &str = "retry-after";
/// The gateway replica that answered (`server.replica_id`).
pub const X_RATEGUARD_REPLICA: &str = "x-rateguard-replica";
/// The mock backend that answered.
pub const X_BACKEND: &str = "x-backend";
/// The default of `identity.api_key_header`.
pub const DEFAULT_API_KEY: &str = "x-api-key";
/// The client chain appended by proxies (believed only from trusted ones).
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_lowercase() {
        for name in [
            super::RATELIMIT,
            super::RATELIMIT_POLICY,
            super::RETRY_AFTER,
            super::X_RATEGUARD_REPLICA,
            super::X_BACKEND,
            super::DEFAULT_API_KEY,
            super::X_FORWARDED_FOR,
        ] {
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }
}
