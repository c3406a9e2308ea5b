//! Tier 1 of exact leases: tokens a replica takes from a bucket ahead of
//! time and spends locally until the store's refill catches up with them.
//!
//! # The rule
//! One store decision grants a replica `g` tokens: exactly an ordinary
//! acquire of cost `g` (`tat += g·T`, fewer when fewer fit). In the store's
//! debt `D` (`tat − now`: the refill time still owed) those tokens are a
//! *slice* of `g·T` µs on top of the debt `q` queued below it. The debt
//! drains from the bottom at most 1 µs per µs, so the slice cannot start
//! shrinking before `q` µs after the store decided, which is after the
//! replica **sent** its call at local time `s`. The replica therefore
//! keeps a grant as `(credit, end)` with `credit = g·T` and
//! `end = s + q + g·T`, and may spend at local time `t` only what both allow:
//! `min(credit, end − t)`, one `T` per token. An ordinary exact decision
//! is a lease of its cost spent at once.
//!
//! # Why no window over-admits
//! Slices of different grants are disjoint parts of `D`, and a grant's
//! spendable credit never exceeds what is left of its slice, so the credits
//! `L` of all replicas satisfy `L ≤ D`. Then `A = C·T − D + L` (what anyone
//! may still admit, in µs) never exceeds `C·T`; it grows only by refill,
//! at most 1 µs per µs (a grant moves `g·T` from `C·T − D` into `L` and
//! loses what decayed in flight); and every admission anywhere costs `T`.
//! So the admissions in any window `[a, a + w]` number at most `C + w/T`:
//! the reference GCRA's envelope, exactly, with no extra rounding.
//! Keeping credit back for a request still in flight
//! ([`Lease::try_spend`] then [`Lease::refund`]) only lowers `L` meanwhile.
//! ([`crate::share`] extends the argument to rate shares, and
//! `docs/leases.md` has the long form.)
//!
//! Assumptions: the replica's and the store's clocks advance at the same
//! rate (their offsets do not matter), as for the deny cache; the store's
//! debt never moves back (no refunds: `fred-cluster`'s cross-slot refund
//! would break it) and the quota does not change while leases are out.
//!
//! # What it costs
//! Credit that reaches its `end` unspent was taken from the bucket for
//! nothing: a replica that sees fewer requests than its lease for a key
//! wastes part of it (under-admission, never over-admission). A crashed
//! replica's credit is lost the same way. While the store is down a replica
//! may keep spending its credit until its `end`, then its `on_error` rule
//! applies.
//!
//! `crates/rateguard-store/src/lease.lua` mirrors [`acquire_all`] (over
//! [`Stored`] buckets) step for step; keep them in sync.

use crate::multi::{self, Limit, MultiDecision};
use crate::share::{Debt, Stored};
use crate::Quota;

/// Grants a [`Lease`] keeps at most; a further one replaces the one with
/// the least credit left (under-admission only).
pub const MAX_GRANTS: usize = 4;

/// Reservations a [`Lease`] or [`LocalShare`](crate::share::LocalShare)
/// can still refund; an older one can only be confirmed (its token stays
/// spent: under-admission only).
pub const MAX_HELD: usize = 8;

/// A replica's credit on one bucket: tokens leased and not yet spent (see
/// the module docs). Local state; never sent to a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    grants: Vec<Grant>,
    next_id: u64,
    /// Until this local time, no store call can grant a full lease.
    short_until_us: u64,
    /// Refundable reservations: (reservation id, grant id, the grant's
    /// credit had that reservation not been made).
    held: Vec<(u64, u64, u64)>,
}

/// One grant: its spendable credit (µs) and the local time its slice of
/// the store's debt may be gone by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    id: u64,
    credit_us: u64,
    end_us: u64,
}

impl Grant {
    fn credit_at(&self, now_us: u64) -> u64 {
        self.credit_us.min(self.end_us.saturating_sub(now_us))
    }
}

/// What a `try_spend` ([`Lease`], or a holder's
/// [`LocalShare`](crate::share::LocalShare)) took for a request whose
/// other limits are still being decided: `confirm` it when the request is
/// allowed, `refund` it when it is denied.
///
/// A refund restores the state the source would have had without the
/// reservation (spends since then included), never more: giving the
/// tokens back as such would be wrong, because a source that had fewer
/// tokens meanwhile refilled (or was clamped) differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "confirm or refund it"]
pub struct Reservation {
    pub(crate) id: u64,
    /// The grant (lease) or bucket generation (share) it came from.
    pub(crate) from: u64,
}

impl Lease {
    /// Credit left at local time `now_us`, in µs of refill time.
    pub fn credit_us(&self, now_us: u64) -> u64 {
        self.grants.iter().map(|g| g.credit_at(now_us)).sum()
    }

    /// Whole tokens that can be spent at `now_us` (each grant pays whole
    /// tokens on its own).
    pub fn tokens(&self, now_us: u64, quota: &Quota) -> u64 {
        self.grants
            .iter()
            .map(|g| g.credit_at(now_us) / quota.interval_us())
            .sum()
    }

    /// Spends `cost` tokens from the grant whose slice drains first among
    /// those that cover them: the request is admitted locally (for this
    /// limit). `None`: ask the store.
    pub fn try_spend(&mut self, now_us: u64, quota: &Quota, cost: u32) -> Option<Reservation> {
        let need = u64::from(cost).saturating_mul(quota.interval_us());
        let grant = self
            .grants
            .iter_mut()
            .filter(|g| g.credit_at(now_us) >= need)
            .min_by_key(|g| g.end_us)?;
        let before = grant.credit_at(now_us);
        grant.credit_us = before - need;
        let (grant_id, end_us) = (grant.id, grant.end_us);
        // The same spend in each held reservation's world without it.
        for (_, g, shadow) in &mut self.held {
            if *g == grant_id {
                *shadow = (*shadow)
                    .min(end_us.saturating_sub(now_us))
                    .saturating_sub(need);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        if self.held.len() == MAX_HELD {
            self.held.remove(0);
        }
        self.held.push((id, grant_id, before));
        Some(Reservation { id, from: grant_id })
    }

    /// Undoes a [`try_spend`](Self::try_spend) whose request another limit
    /// denied: the grant's credit becomes what it would be without that
    /// reservation (a lower bound of it when several were out); nothing if
    /// the grant is gone or the reservation is too old.
    pub fn refund(&mut self, reservation: Reservation) {
        let Some(i) = self.held.iter().position(|h| h.0 == reservation.id) else {
            return;
        };
        let (_, grant_id, shadow) = self.held.remove(i);
        let Some(g) = self.grants.iter_mut().find(|g| g.id == grant_id) else {
            return;
        };
        g.credit_us = g.credit_us.max(shadow);
        for (_, other, s) in &mut self.held {
            if *other == grant_id {
                *s = (*s).max(shadow);
            }
        }
    }

    /// Keeps a [`try_spend`](Self::try_spend) whose request was allowed.
    pub fn confirm(&mut self, reservation: Reservation) {
        self.held.retain(|h| h.0 != reservation.id);
    }

    /// Adds `granted` tokens from a store call sent at local time `sent_us`
    /// whose slice had `queued_us` of debt below it ([`Leased::queued_us`]),
    /// now that its reply arrived at `now_us`.
    pub fn add_grant(
        &mut self,
        sent_us: u64,
        now_us: u64,
        quota: &Quota,
        granted: u32,
        queued_us: u64,
    ) {
        let size = u64::from(granted) * quota.interval_us();
        let grant = Grant {
            id: self.next_id,
            credit_us: size,
            end_us: sent_us + queued_us + size,
        };
        self.next_id += 1;
        self.grants.retain(|g| g.credit_at(now_us) > 0);
        if grant.credit_at(now_us) == 0 {
            return;
        }
        if self.grants.len() == MAX_GRANTS {
            let least = (0..MAX_GRANTS)
                .min_by_key(|&i| self.grants[i].credit_at(now_us))
                .expect("MAX_GRANTS > 0");
            self.grants.remove(least);
        }
        self.grants.push(grant);
    }

    /// Applies the reply to a store call sent at `sent_us` that asked for
    /// `want` tokens on top of the request: adds the grant and, when the
    /// bucket could not give all of `want`, notes until when no call can
    /// (see [`is_short`](Self::is_short)).
    pub fn apply(&mut self, sent_us: u64, now_us: u64, reply: &Leased, want: u32) {
        let q = &reply.quota;
        self.add_grant(sent_us, now_us, q, reply.granted, reply.queued_us());
        if reply.granted < want {
            // The store decided at or after `sent_us`, and its debt drains
            // at most 1 µs per µs, as for the deny cache.
            let need = reply.backlog_after_us() + u64::from(want) * q.interval_us();
            self.short_until_us = sent_us + need.saturating_sub(q.fill_time_us());
        }
    }

    /// Whether the last reply proved that a store call before
    /// [`short_until_us`](Self::short_until_us) cannot grant a full lease.
    /// A replica may then deny locally instead of calling (under-admission
    /// by choice, never over-admission): that is what keeps an over-limit
    /// key at one call per lease instead of one per token.
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
    /// The debt an ordinary decision saw ([`Debt::backlog_us`]).
    pub debt: Debt,
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

    /// The debt an ordinary decision sees after the call.
    pub fn backlog_after_us(&self) -> u64 {
        self.debt.backlog_us + self.taken() * self.quota.interval_us()
    }

    /// The debt below the grant's slice: what must drain before it can.
    pub fn queued_us(&self) -> u64 {
        let cost = if self.spent { u64::from(self.cost) } else { 0 };
        self.debt.queued_us + cost * self.quota.interval_us()
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
            .map(|(b, l)| (b.debt.backlog_us, *l))
            .collect();
        multi::acquire_all(0, &buckets, 1).decision(0)
    }
}

/// Decides one request over buckets given by their [`Debt`]: allowed iff
/// every enforced limit fits its cost; then each limit spends its cost
/// where it fits and grants up to `want` more from what is left. A denied
/// request takes nothing from any bucket and is granted nothing.
pub fn decide(buckets: &[(Debt, LeaseLimit)]) -> LeaseBatch {
    let fits = |backlog: u64, l: &Limit| {
        backlog + u64::from(l.cost).saturating_mul(l.quota.interval_us()) <= l.quota.fill_time_us()
    };
    let allowed = buckets
        .iter()
        .all(|(debt, ll)| !ll.limit.enforced || fits(debt.backlog_us, &ll.limit));
    let leased = buckets
        .iter()
        .map(|&(debt, ll)| {
            let l = ll.limit;
            let spent = allowed && fits(debt.backlog_us, &l);
            let mut after = debt.backlog_us;
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
                debt,
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
    let debts: Vec<(Debt, LeaseLimit)> = stored
        .iter()
        .zip(limits)
        .map(|(s, ll)| (s.debt(now_us, &ll.limit.quota), *ll))
        .collect();
    let batch = decide(&debts);
    for ((s, ll), b) in stored.iter_mut().zip(limits).zip(&batch.buckets) {
        if b.taken() > 0 {
            s.take(now_us, &ll.limit.quota, b.taken());
        }
    }
    batch
}

#[cfg(test)]
mod tests;
