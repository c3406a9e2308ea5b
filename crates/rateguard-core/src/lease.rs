//! Tier 1 of exact leases: tokens a replica takes from a bucket ahead of
//! time and spends locally, decaying from the moment it asked.
//!
//! # The rule
//! One store decision grants a replica `g` tokens: exactly an ordinary
//! acquire of cost `g` (`tat += g·T`, fewer when fewer fit). The replica
//! holds them as a **credit** of `g·T` µs that shrinks by one µs per µs of
//! its own clock **counted from when the request was sent**; spending a
//! token costs `T` µs of credit. An ordinary exact decision is a lease of
//! its cost spent at once.
//!
//! # Why no window over-admits
//! Let `D` be the bucket's debt in the store (`tat − now`, at most `C·T`)
//! and `L` the credits all replicas hold. While some credit is left, `L`
//! shrinks at least as fast as `D` (credits decay at rate 1 from their
//! send time, which precedes the store's decision; `D` drains at rate at
//! most 1), grants add to both, spends only shrink `L`; so `L ≤ D` always.
//! Then `A = C·T − D + L` (tokens usable by anyone, in µs) never exceeds
//! `C·T`, grows only by refill (rate ≤ 1), and every admission anywhere
//! costs `T`: the admissions in any window `[a, a + w]` number at most
//! `C + w/T`, the reference GCRA's envelope, exactly (no extra rounding).
//! Merging several grants into one credit, or keeping some back for a
//! request still in flight ([`Lease::try_spend`] then [`Lease::refund`]),
//! keeps `L` as it was or smaller. (`docs/leases.md` has the long form,
//! and [`crate::share`] the same argument with rate shares.)
//!
//! The argument assumes the replica's and the store's clocks advance at
//! the same rate (their offsets do not matter), as the deny cache does, and
//! that the store never moves `tat` back (no refunds: `fred-cluster`'s
//! cross-slot refund would break it).
//!
//! # What it costs
//! Credit that decays unspent was taken from the bucket for nothing: a
//! replica that sees fewer than `R` requests per second for a key wastes
//! part of its lease (under-admission, never over-admission). A crashed
//! replica's credit is lost the same way. While the store is down a
//! replica may keep spending its credit until it has decayed.
//!
//! `crates/rateguard-store/src/lease.lua` mirrors [`acquire_all`] (over
//! [`Stored`] buckets) step for step; keep them in sync.

use crate::multi::{self, Limit, MultiDecision};
use crate::share::Stored;
use crate::Quota;

/// A replica's credit on one bucket: tokens leased and not yet spent,
/// decaying (see the module docs). Local state; never sent to a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// Local time at which the credit is gone.
    end_us: u64,
    /// Bumped when a grant restarts a credit that had run out, which
    /// makes older [`Reservation`]s unrefundable.
    generation: u64,
    /// Until this local time, no store call can grant a full lease.
    short_until_us: u64,
}

/// Credit kept back by [`Lease::try_spend`] (or a share's
/// `try_spend`) for a request whose other limits are still being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "refund it if the request is denied"]
pub struct Reservation {
    pub(crate) amount_us: u64,
    pub(crate) generation: u64,
}

impl Lease {
    /// Credit left at local time `now_us`, in µs of refill time.
    pub fn credit_us(&self, now_us: u64) -> u64 {
        self.end_us.saturating_sub(now_us)
    }

    /// Whole tokens left at `now_us`.
    pub fn tokens(&self, now_us: u64, quota: &Quota) -> u32 {
        u32::try_from(self.credit_us(now_us) / quota.interval_us()).unwrap_or(u32::MAX)
    }

    /// Spends `cost` tokens if the credit covers them: the request is
    /// admitted locally (for this limit). `None`: ask the store.
    pub fn try_spend(&mut self, now_us: u64, quota: &Quota, cost: u32) -> Option<Reservation> {
        let need = u64::from(cost).saturating_mul(quota.interval_us());
        if self.credit_us(now_us) < need {
            return None;
        }
        self.end_us -= need;
        Some(Reservation {
            amount_us: need,
            generation: self.generation,
        })
    }

    /// Gives back what [`try_spend`](Self::try_spend) took, for a request
    /// that another limit denied. Exact: the credit becomes what it would
    /// have been; dropped (under-admission only) if a grant restarted the
    /// credit in between.
    pub fn refund(&mut self, reservation: Reservation) {
        if reservation.generation == self.generation {
            self.end_us += reservation.amount_us;
        }
    }

    /// Adds the tokens a store call sent at local time `sent_us` granted,
    /// now that its reply arrived at `now_us`: they have decayed since
    /// `sent_us` already.
    pub fn add_grant(&mut self, sent_us: u64, now_us: u64, quota: &Quota, granted: u32) {
        let fresh = (u64::from(granted) * quota.interval_us())
            .saturating_sub(now_us.saturating_sub(sent_us));
        if fresh == 0 {
            return;
        }
        if self.end_us < now_us {
            // The old credit ran out: restart from now (refunds of it
            // would otherwise add to the new grant).
            self.end_us = now_us;
            self.generation += 1;
        }
        self.end_us += fresh;
    }

    /// Applies the reply to a store call sent at `sent_us` that asked for
    /// `want` tokens on top of the request: adds the grant and, when the
    /// bucket could not give all of `want`, notes until when no call can
    /// (see [`is_short`](Self::is_short)).
    pub fn apply(&mut self, sent_us: u64, now_us: u64, reply: &Leased, want: u32) {
        self.add_grant(sent_us, now_us, &reply.quota, reply.granted);
        if reply.granted < want {
            // The store's clock was at least at `sent_us` when it decided,
            // and the debt drains at most 1 µs per µs, as for the deny cache.
            let need = reply.backlog_after_us() + u64::from(want) * reply.quota.interval_us();
            self.short_until_us = sent_us + need.saturating_sub(reply.quota.fill_time_us());
        }
    }

    /// Whether the last reply proved that a store call before
    /// [`short_until_us`](Self::short_until_us) cannot grant a full lease.
    /// A replica may then deny locally instead of calling (under-admission
    /// by choice, never over-admission): that is what keeps an over-limit
    /// key at one call per lease period instead of one per token.
    pub fn is_short(&self, now_us: u64) -> bool {
        now_us < self.short_until_us
    }

    /// See [`is_short`](Self::is_short).
    pub fn short_until_us(&self) -> u64 {
        self.short_until_us
    }
}

/// The lease size for a lease period of `period_us`: the tokens the
/// bucket refills in that time, at least 1 and at most its capacity.
pub fn want_for(period_us: u64, quota: &Quota) -> u32 {
    let tokens = (period_us + quota.interval_us() / 2) / quota.interval_us();
    u32::try_from(tokens)
        .unwrap_or(u32::MAX)
        .clamp(1, quota.capacity())
}

/// One limit of a store call: the request's limit, and how many tokens to
/// lease on top of its cost when the request is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseLimit {
    /// The limit as an ordinary decision sees it.
    pub limit: Limit,
    /// Tokens to grant the caller after the request's cost (fewer when
    /// fewer fit). 0: an ordinary decision.
    pub want: u32,
}

impl LeaseLimit {
    /// An ordinary (non-leasing) limit.
    pub fn ordinary(limit: Limit) -> Self {
        Self { limit, want: 0 }
    }
}

/// What one store call did to one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leased {
    /// The bucket's debt before the call (`min(tat − now, C·T)`, or a
    /// share ledger's ordinary debt).
    pub backlog_us: u64,
    /// Whether the request's cost was spent here (an allowed request on a
    /// limit that fits; a shadow limit that does not fit spends nothing).
    pub spent: bool,
    /// Tokens leased to the caller on top.
    pub granted: u32,
    quota: Quota,
    cost: u32,
}

impl Leased {
    /// Tokens taken from the bucket by the call: the cost if spent, plus
    /// the grant.
    pub fn taken(&self) -> u64 {
        u64::from(self.granted) + if self.spent { u64::from(self.cost) } else { 0 }
    }

    /// The bucket's debt after the call.
    pub fn backlog_after_us(&self) -> u64 {
        self.backlog_us + self.taken() * self.quota.interval_us()
    }
}

/// The result of one store call over a request's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseBatch {
    /// Whether the request was allowed: every enforced limit fits its cost.
    pub allowed: bool,
    /// Per limit, in request order.
    pub buckets: Vec<Leased>,
    limits: Vec<Limit>,
}

impl LeaseBatch {
    /// The request's decision, exactly as `redis-lua` would answer it
    /// (grants are the caller's, not part of the bucket's `remaining`).
    pub fn request(&self) -> MultiDecision {
        let buckets: Vec<(u64, Limit)> = self
            .buckets
            .iter()
            .zip(&self.limits)
            .map(|(b, l)| (b.backlog_us, *l))
            .collect();
        multi::acquire_all(0, &buckets, 1).decision(0)
    }
}

/// Decides one request over buckets given by their debt (`backlog_us`):
/// allowed iff every enforced limit fits its cost; then each limit spends
/// its cost where it fits and grants up to `want` more from what is left.
/// A denied request takes nothing from any bucket and is granted nothing.
pub fn decide(buckets: &[(u64, LeaseLimit)]) -> LeaseBatch {
    let fits = |backlog: u64, l: &Limit| {
        backlog + u64::from(l.cost).saturating_mul(l.quota.interval_us()) <= l.quota.fill_time_us()
    };
    let allowed = buckets
        .iter()
        .all(|&(backlog, ll)| !ll.limit.enforced || fits(backlog, &ll.limit));
    let leased = buckets
        .iter()
        .map(|&(backlog, ll)| {
            let l = ll.limit;
            let spent = allowed && fits(backlog, &l);
            let mut after = backlog;
            if spent {
                after += u64::from(l.cost) * l.quota.interval_us();
            }
            let room = (l.quota.fill_time_us() - after) / l.quota.interval_us();
            let granted = if allowed {
                u32::try_from(room).map_or(ll.want, |room| room.min(ll.want))
            } else {
                0
            };
            Leased {
                backlog_us: backlog,
                spent,
                granted,
                quota: l.quota,
                cost: l.cost,
            }
        })
        .collect();
    LeaseBatch {
        allowed,
        buckets: leased,
        limits: buckets.iter().map(|(_, ll)| ll.limit).collect(),
    }
}

/// The store side of one call (what `lease.lua` does): decides the request
/// over `stored` (one per limit, in the same order) at store time `now_us`
/// and updates each bucket something was taken from. A bucket under rate
/// shares is decided on its ordinary part (the bucket minus the shares).
///
/// # Panics
/// If the slices differ in length.
pub fn acquire_all(now_us: u64, stored: &mut [Stored], limits: &[LeaseLimit]) -> LeaseBatch {
    assert_eq!(stored.len(), limits.len(), "one stored bucket per limit");
    let backlogs: Vec<(u64, LeaseLimit)> = stored
        .iter()
        .zip(limits)
        .map(|(s, ll)| (s.backlog_us(now_us, &ll.limit.quota), *ll))
        .collect();
    let batch = decide(&backlogs);
    for ((s, ll), b) in stored.iter_mut().zip(limits).zip(&batch.buckets) {
        if b.taken() > 0 {
            s.set_debt(now_us, &ll.limit.quota, b.backlog_after_us());
        }
    }
    batch
}

#[cfg(test)]
mod tests;
