//! [`BucketKey`]: where one client's bucket for one policy lives in a store.
//!
//! The format is documented here and nowhere else:
//!
//! ```text
//! rl:{<policy>:<client-hash>}
//! ```
//!
//! - `<policy>` is the policy name when it is at most 64 bytes of
//!   `[A-Za-z0-9_.-]`, otherwise `p` followed by a hash of it.
//! - `<client-hash>` is the first 16 bytes of SHA-256 of the client
//!   identifier, in hex. Client identifiers can be API keys (secrets), so the
//!   raw value never reaches a store; the hash also caps the key length.
//! - The braces are a Redis Cluster hash tag: everything a bucket needs lives
//!   in one slot, so the Lua script never crosses slots.

use sha2::{Digest, Sha256};
use std::fmt;

/// Longest policy name kept verbatim in a key.
pub const MAX_POLICY_LEN: usize = 64;

/// A store key for (policy, client). Cheap to clone; at most 102 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey(String);

impl BucketKey {
    /// The key of `client`'s bucket under `policy`.
    ///
    /// ```
    /// use rateguard_core::BucketKey;
    /// let key = BucketKey::new("data", "sk_live_secret");
    /// assert!(key.as_str().starts_with("rl:{data:"));
    /// assert!(!key.as_str().contains("secret"));
    /// assert_eq!(key.as_str().len(), "rl:{data:}".len() + 32);
    /// ```
    pub fn new(policy: &str, client: &str) -> Self {
        let policy = if is_plain(policy) {
            policy.to_owned()
        } else {
            format!("p{}", short_hash(policy))
        };
        Self(format!("rl:{{{policy}:{}}}", short_hash(client)))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BucketKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `policy` is kept verbatim in keys: 1 to [`MAX_POLICY_LEN`] bytes
/// of `[A-Za-z0-9_.-]` (the gateway requires policy names to be plain).
pub fn is_plain(policy: &str) -> bool {
    !policy.is_empty()
        && policy.len() <= MAX_POLICY_LEN
        && policy
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn short_hash(value: &str) -> String {
    hex::encode(&Sha256::digest(value.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_key_and_different_inputs_differ() {
        assert_eq!(BucketKey::new("a", "c1"), BucketKey::new("a", "c1"));
        assert_ne!(BucketKey::new("a", "c1"), BucketKey::new("a", "c2"));
        assert_ne!(BucketKey::new("a", "c1"), BucketKey::new("b", "c1"));
    }

    #[test]
    fn known_vector_pins_the_format() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(
            BucketKey::new("default", "abc").as_str(),
            "rl:{default:ba7816bf8f01cfea414140de5dae2223}"
        );
    }

    #[test]
    fn odd_policy_names_are_hashed_and_keys_stay_short() {
        let long = "x".repeat(1000);
        for policy in [long.as_str(), "has space", "brace}{", ""] {
            let key = BucketKey::new(policy, &long);
            assert!(key.as_str().len() <= 102, "{key}");
            assert_eq!(key.as_str().matches('{').count(), 1, "{key}");
            assert_eq!(key.as_str().matches('}').count(), 1, "{key}");
        }
    }
}
