//! [`BucketKey`]: where one bucket (policy, limit, identity) lives in a store.
//!
//! The format is documented here and nowhere else:
//!
//! ```text
//! rl:{<policy>:<identity-hash>}            the limit named "client" (DEFAULT_LIMIT)
//! rl:{<policy>/<limit>:<identity-hash>}    any other limit of the policy
//! <bucket key>:shares                      that bucket's rate-share ledger
//!                                          (a hash, `rateguard_core::share`)
//! ```
//!
//! - `<policy>` is the policy name when it is at most 64 bytes of
//!   `[A-Za-z0-9_.-]`, otherwise `p` followed by a hash of it; `<limit>`
//!   likewise (`l` and a hash otherwise). `/` and `:` are outside that
//!   alphabet, so no (policy, limit) pair can spell another's key.
//! - `<identity-hash>` is the first 16 bytes of SHA-256 of the identity the
//!   limit is keyed by (client, IP, API key, header value, or a constant for
//!   a global limit), in hex. Identities can be API keys (secrets), so the
//!   raw value never reaches a store; the hash also caps the key length.
//! - A policy's default limit, named [`DEFAULT_LIMIT`] (the single-limit
//!   form of a policy), keeps the key it had before policies could hold
//!   several limits, so its buckets survive an upgrade.
//! - The braces are a Redis Cluster hash tag: everything one bucket needs
//!   lives in one slot. The buckets of one request's limits usually live in
//!   different slots; see `fred-cluster` in `rateguard-store` for what that
//!   means.

use sha2::{Digest, Sha256};
use std::fmt;

/// Longest policy (or limit) name kept verbatim in a key.
pub const MAX_POLICY_LEN: usize = 64;

/// The name of a policy's default limit (keyed by client), whose buckets
/// keep the single-limit key format `rl:{<policy>:<hash>}`.
pub const DEFAULT_LIMIT: &str = "client";

/// A store key for (policy, limit, identity). Cheap to clone; at most 167 bytes.
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
        Self(format!(
            "rl:{{{}:{}}}",
            name(policy, 'p'),
            short_hash(client)
        ))
    }

    /// The key of `identity`'s bucket for the limit `limit` of `policy`;
    /// the [`DEFAULT_LIMIT`] is [`BucketKey::new`]'s key.
    ///
    /// ```
    /// use rateguard_core::BucketKey;
    /// let per_ip = BucketKey::for_limit("login", "per-ip", "ip:203.0.113.7");
    /// assert!(per_ip.as_str().starts_with("rl:{login/per-ip:"));
    /// assert_eq!(
    ///     BucketKey::for_limit("login", "client", "key:k"),
    ///     BucketKey::new("login", "key:k"),
    /// );
    /// ```
    pub fn for_limit(policy: &str, limit: &str, identity: &str) -> Self {
        if limit == DEFAULT_LIMIT {
            return Self::new(policy, identity);
        }
        Self(format!(
            "rl:{{{}/{}:{}}}",
            name(policy, 'p'),
            name(limit, 'l'),
            short_hash(identity)
        ))
    }

    /// A well-mixed number for picking a shard or a cache slot without
    /// hashing the key again: the last 8 hex digits of its identity hash
    /// (SHA-256 output), as bytes, times an odd constant (use the high bits).
    ///
    /// ```
    /// use rateguard_core::BucketKey;
    /// let (a, b) = (BucketKey::new("p", "a"), BucketKey::new("p", "b"));
    /// assert_ne!(a.shard_hint() >> 58, b.shard_hint() >> 58);
    /// ```
    pub fn shard_hint(&self) -> u64 {
        // Every key ends with `<32 hex digits>}` (see the format above).
        let end = self.0.len() - 1;
        let mut digits = [0u8; 8];
        digits.copy_from_slice(&self.0.as_bytes()[end - 8..end]);
        u64::from_le_bytes(digits).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of this bucket's rate-share ledger
    /// ([`Ledger`](crate::share::Ledger)): in the same Redis Cluster slot,
    /// since the hash tag is the same.
    ///
    /// ```
    /// use rateguard_core::BucketKey;
    /// let key = BucketKey::new("api", "k");
    /// assert_eq!(key.share_ledger(), format!("{key}:shares"));
    /// ```
    pub fn share_ledger(&self) -> String {
        format!("{}:shares", self.0)
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

/// `value` itself when plain, else `prefix` and a hash of it.
fn name(value: &str, prefix: char) -> String {
    if is_plain(value) {
        value.to_owned()
    } else {
        format!("{prefix}{}", short_hash(value))
    }
}

/// Whether `policy` (or a limit name) is kept verbatim in keys: 1 to
/// [`MAX_POLICY_LEN`] bytes of `[A-Za-z0-9_.-]` (the gateway requires
/// policy names to be plain).
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
            for limit in [long.as_str(), "x/y", "{", "", "per-ip"] {
                let key = BucketKey::for_limit(policy, limit, &long);
                assert!(key.as_str().len() <= 167, "{key}");
                assert_eq!(key.as_str().matches('{').count(), 1, "{key}");
                assert_eq!(key.as_str().matches('}').count(), 1, "{key}");
            }
        }
        let longest = BucketKey::for_limit(&"p".repeat(64), &"l".repeat(64), "");
        assert_eq!(longest.as_str().len(), 167);
    }

    #[test]
    fn only_plain_names_are_kept_verbatim() {
        let hash = short_hash("c");
        for plain in ["a_b.c-D9", &"x".repeat(MAX_POLICY_LEN)] {
            assert_eq!(
                BucketKey::new(plain, "c").as_str(),
                format!("rl:{{{plain}:{hash}}}")
            );
        }
        for odd in [
            "",
            "a b",
            "a/b",
            "a:b",
            "é",
            &"x".repeat(MAX_POLICY_LEN + 1),
        ] {
            let expected = format!("rl:{{p{}:{hash}}}", short_hash(odd));
            assert_eq!(BucketKey::new(odd, "c").as_str(), expected, "{odd:?}");
        }
        assert_eq!(
            format!("{}", BucketKey::new("a", "c")),
            format!("rl:{{a:{hash}}}")
        );
        assert_eq!(
            BucketKey::new("a", "c").as_ref(),
            format!("rl:{{a:{hash}}}")
        );
    }

    #[test]
    fn shard_hints_read_the_identity_hash() {
        // SHA-256("") = e3b0c44298fc1c149afbf4c8996fb924...: digits "996fb924".
        let expected = u64::from_le_bytes(*b"996fb924").wrapping_mul(0x9e37_79b9_7f4a_7c15);
        assert_eq!(BucketKey::for_limit("p", "l", "").shard_hint(), expected);
        assert_eq!(
            BucketKey::new("other", "").shard_hint(),
            expected,
            "only the identity hash counts"
        );
        let shards: std::collections::HashSet<u64> = (0..1024)
            .map(|i| BucketKey::new("p", &i.to_string()).shard_hint() >> 58)
            .collect();
        assert_eq!(shards.len(), 64, "1024 keys cover all 64 shards");
    }

    #[test]
    fn limit_keys_pin_the_format_and_never_collide() {
        assert_eq!(
            BucketKey::for_limit("login", "per-ip", "abc").as_str(),
            "rl:{login/per-ip:ba7816bf8f01cfea414140de5dae2223}"
        );
        assert_eq!(
            BucketKey::for_limit("login", DEFAULT_LIMIT, "abc"),
            BucketKey::new("login", "abc")
        );
        // A dotted policy name cannot spell another policy's limit.
        assert_ne!(
            BucketKey::for_limit("a", "b", "c"),
            BucketKey::new("a.b", "c")
        );
        assert_ne!(
            BucketKey::for_limit("a", "b", "c"),
            BucketKey::for_limit("a", "B", "c")
        );
        let odd = BucketKey::for_limit("p", "has space", "c");
        assert!(odd.as_str().starts_with("rl:{p/l"), "{odd}");
        assert_eq!(odd.as_str().len(), "rl:{p/:}".len() + 33 + 32);
    }
}
