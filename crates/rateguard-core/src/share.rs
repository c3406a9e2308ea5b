//! Tier 2 of exact leases: rate shares of one hot bucket, held by replicas
//! (gateways behind round-robin, or Envoys over RLQS) that each run a
//! local GCRA at their share and call the store once per period.
//!
//! # The model
//! A bucket `(C, R)` is divided into the **ordinary part**, decided by the
//! store like any bucket (ordinary decisions and tier-1 leases), and
//! **shares**: holder `i` gets `parts_i` of [`SHARE_PARTS`] of the rate
//! (`R·parts_i/1000`, its local interval rounded up by
//! [`share_interval_us`]) and a burst `burst_i`, valid for a time-to-live
//! counted from when it asked. The store keeps, per holder, every grant
//! that may still be in use ([`Step`]s) and **reserves** the largest rate
//! among them and the largest burst (their sum for a holder that restarts
//! its bucket full, [`Fill::Full`]). Shares are re-divided max-min fairly
//! by reported demand ([`water_level`]) at each holder's renewal, but a
//! rate or burst given up by one holder reaches another only once the old
//! grant has expired plus a clock margin: until then it is still reserved.
//! Σ reserved rates ≤ R and Σ reserved bursts ≤ C at every instant.
//!
//! The ordinary part's debt `D` (µs of refill time, a token is `T`) is a
//! stack: at the bottom the **floor**, the reserved bursts, which never
//! drains; above it **layers**, everything taken by ordinary decisions and
//! tier-1 grants, draining from the bottom at `R` minus the reserved
//! rates. A burst reservation that grows is *inserted under* the layers
//! (`D` grows by it: it is paid for, and the holder gets those tokens);
//! one that ends becomes the lowest layer (`D` unchanged: the capacity
//! comes back empty). A burst the bucket cannot pay yet is left
//! **pending**: ordinary decisions must leave that much free, so a
//! saturated key makes room for its holders within a renewal or two.
//!
//! `Full` holders (Envoys) share all but [`FULL_SLACK_PARTS`] of the rate,
//! get `1/`[`FULL_BURST_DIVISOR`] of their proportional burst, and keep
//! their latest bucket while a new one would be short (see
//! `Ledger::grant`): each only grants less, or extends what is reserved.
//!
//! # Why no window over-admits
//! With `L` the tier-1 credits ([`crate::lease`]) and `S = Σ τ_i·T` the
//! tokens in the holders' local buckets (counted from the store's grant,
//! before it arrives):
//! 1. `L + S ≤ D`: credits fit in their slices of the layers (they are
//!    capped by what is left of them, and layers only drain from below or
//!    move up), and each holder's tokens fit in its reserved burst, which
//!    is in the floor.
//! 2. `A = C·T − D + L + S` therefore stays ≤ `C·T`, and grows only by
//!    refill, at rate ≤ `(1 − ρ) + ρ = 1` (the ordinary part drains at
//!    `1 − ρ`, holders refill at most at their reserved rates `ρ`); grants
//!    and insertions move tokens from `C·T − D` to `L` or `S`, never more.
//! 3. Every admission (ordinary, from a credit, or from a share) costs `T`.
//!
//! So any window `[a, a + w]` admits at most `C + w/T`, exactly the
//! reference GCRA's envelope. The store drains with the reservations of
//! its previous write (they only shrink in between), rounded down, so
//! never faster than the argument allows.
//!
//! Assumptions: clocks advance at the same rate (the margin absorbs drift);
//! every decision on a bucket that has shares goes through `lease.lua` or
//! `share.lua` (`token_bucket.lua` on such a key sees a sealed, empty
//! bucket and denies: [`Ledger::seal_us`]); holder ids are unique per live
//! process; the quota does not change while shares are out.
//!
//! `crates/rateguard-store/src/share.lua` mirrors [`Stored::grant`] and
//! `lease.lua` mirrors [`crate::lease::acquire_all`] over [`Stored`]; keep
//! them in sync.

mod fair;
mod ledger;
mod local;
mod stored;

pub use fair::{demand_parts, water_level};
pub use ledger::{Holder, Ledger, LedgerError, Step};
pub use local::LocalShare;
pub use stored::{Debt, Stored};

use crate::Quota;

/// Shares are whole parts of this many (per mille of the bucket's rate).
pub const SHARE_PARTS: u32 = 1000;

/// Parts of the rate `Full` holders leave unreserved among them: the
/// ordinary part refills at least at this rate, and pays the new buckets
/// they start on every changed share (with every part reserved, a freed
/// burst would never refill and new buckets would stay tiny).
pub const FULL_SLACK_PARTS: u32 = 50;

/// A `Full` holder's burst is its part of the capacity divided by this:
/// with every holder's bucket at most half its proportional size, a new
/// bucket (paid while the old one stays reserved) fits beside the others.
pub const FULL_BURST_DIVISOR: u64 = 2;

/// Longest time one drain step covers. Longer idle gaps drain only this
/// much at once (under-admission only); it keeps `elapsed × parts` below
/// 2^53, so the Lua scripts compute exactly what Rust computes.
pub const MAX_DRAIN_STEP_US: u64 = (1 << 53) / SHARE_PARTS as u64;

/// Most grants remembered per holder; older ones are merged (keeping the
/// larger rate and burst and the later expiry: more reserved, never less).
pub const MAX_STEPS: usize = 8;

/// Most holders per bucket; others are refused a share (they decide
/// through the store as ordinary requests).
pub const MAX_HOLDERS: usize = 128;

/// How a holder's local bucket behaves when its share changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fill {
    /// The holder keeps its bucket's tokens across renewals while its share
    /// is valid, and starts empty otherwise (RateGuard's gateways).
    Carry,
    /// The holder restarts its bucket full whenever its share changes
    /// (Envoy rebuilds its token bucket on a changed assignment). The store
    /// charges the new burst to the bucket and reserves old and new bursts
    /// side by side until the old expires.
    Full,
}

/// A holder's periodic call: its demand, and how long its share lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRequest<'a> {
    /// Who holds the share: unique per live process (a restarted process
    /// needs a new id, or it would use its predecessor's share too).
    pub holder: &'a str,
    /// Parts of the rate it wants ([`demand_parts`]), at most [`SHARE_PARTS`].
    pub demand: u32,
    /// How long the share is valid, from when the holder sent this call.
    pub ttl_us: u64,
    /// How long after its expiry the store still reserves a share: covers
    /// the holder's clock running slower than the store's.
    pub margin_us: u64,
    /// How the holder's local bucket behaves.
    pub fill: Fill,
}

/// A holder's new share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareGrant {
    /// Parts of the rate (0: no share; keep the previous one until it lapses).
    pub parts: u32,
    /// Tokens the holder's local bucket holds at most.
    pub burst: u32,
    /// Tokens the bucket paid into the holder's: what its reserved burst
    /// grew by. The holder adds them to what it carries over.
    pub added: u32,
    /// The holder starts a new bucket holding exactly `added` tokens
    /// (a `Full` holder whose share changed) instead of carrying its own.
    pub fresh: bool,
}

/// A share's local refill interval: `T·1000/parts`, rounded up (slower).
///
/// # Panics
/// If `parts` is 0.
pub fn share_interval_us(quota: &Quota, parts: u32) -> u64 {
    assert!(parts > 0, "a share of 0 parts has no interval");
    (quota.interval_us() * u64::from(SHARE_PARTS)).div_ceil(u64::from(parts))
}

#[cfg(test)]
mod tests;
