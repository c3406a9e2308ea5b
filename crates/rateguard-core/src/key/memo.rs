//! A per-thread memo of identity hashes, so a client sending many requests
//! costs one SHA-256 (not one per request) while it stays in the memo.
//!
//! Direct-mapped: [`SLOTS`] slots per thread, a slot picked by a cheap
//! non-cryptographic hash of the identity; a hit compares the whole
//! identity, so a hit is exactly what hashing would have given and the
//! stored key format does not change. A slot's previous identity is
//! replaced on a miss. Identities longer than [`MAX_LEN`] bytes are not
//! kept. Per thread means no lock: on the per-core layout, one memo per
//! runtime (at most about `SLOTS × (MAX_LEN + 56)` bytes each).
//!
//! The memo holds recent identities (API keys among them) in this
//! process's memory, as the requests that carried them did; they still
//! never reach a store or a log.

use std::cell::RefCell;

/// Slots per thread (a power of two).
pub(super) const SLOTS: usize = 1024;

/// Longest identity kept, in bytes.
pub(super) const MAX_LEN: usize = 128;

/// The identity hash as it appears in a key: 32 hex digits.
pub(super) type Hex = [u8; 32];

#[derive(Default)]
struct Slot {
    identity: String,
    hex: Option<Hex>,
}

thread_local! {
    static MEMO: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// `hash(identity)`, from this thread's memo when it holds `identity`.
pub(super) fn hex(identity: &str, hash: impl FnOnce(&str) -> Hex) -> Hex {
    if identity.len() > MAX_LEN {
        return hash(identity);
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.is_empty() {
            memo.resize_with(SLOTS, Slot::default);
        }
        let slot = &mut memo[slot_of(identity)];
        match slot.hex {
            Some(hex) if slot.identity == identity => hex,
            _ => {
                let hex = hash(identity);
                slot.identity.clear();
                slot.identity.push_str(identity);
                slot.hex = Some(hex);
                hex
            }
        }
    })
}

/// A slot for `identity`: an FxHash-style multiply-rotate over its bytes,
/// top bits. Only spreads identities over slots; correctness never
/// depends on it (a hit compares the identity itself).
fn slot_of(identity: &str) -> usize {
    let mut h: u64 = identity.len() as u64;
    for chunk in identity.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_hit_skips_the_hash_and_a_different_identity_never_hits() {
        let calls = Cell::new(0);
        let hash = |s: &str| {
            calls.set(calls.get() + 1);
            let mut hex = [b'0'; 32];
            hex[..s.len().min(32)].copy_from_slice(&s.as_bytes()[..s.len().min(32)]);
            hex
        };
        let a = hex("key:a", hash);
        assert_eq!(hex("key:a", hash), a);
        assert_eq!(calls.get(), 1, "the second call is a hit");
        // Many identities, some sharing slots: each still gets its own hash.
        for i in 0..(4 * SLOTS) {
            let id = format!("key:{i}");
            assert_eq!(hex(&id, hash), hash(&id));
        }
        assert_eq!(hex("key:a", hash), a);
        let long = "x".repeat(MAX_LEN + 1);
        let before = calls.get();
        hex(&long, hash);
        hex(&long, hash);
        assert_eq!(calls.get(), before + 2, "long identities are not kept");
    }

    #[test]
    fn slots_spread() {
        let used: std::collections::HashSet<usize> = (0..SLOTS)
            .map(|i| slot_of(&format!("key:perf-client-{i}")))
            .collect();
        assert!(used.len() > SLOTS / 2, "{} slots used", used.len());
    }
}
