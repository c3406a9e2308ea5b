//! [`LocalShare`]: a holder's own bucket at its share of the rate.

use super::{share_interval_us, ShareGrant};
use crate::lease::{Reservation, MAX_HELD};
use crate::Quota;

/// A holder's local GCRA at its share: `burst` tokens, one more every
/// [`share_interval_us`], usable until the share's time-to-live (counted
/// from when the holder *sent* its call) has passed. Local state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalShare {
    parts: u32,
    burst: u32,
    interval_us: u64,
    tat_us: u64,
    valid_until_us: u64,
    sent_us: u64,
    generation: u64,
    next_id: u64,
    /// Refundable reservations: (id, the bucket's `tat` had that
    /// reservation not been made).
    held: [(u64, u64); MAX_HELD],
    held_len: usize,
}

impl LocalShare {
    /// Whether the share may admit at local time `now_us`.
    pub fn is_valid(&self, now_us: u64) -> bool {
        self.burst > 0 && now_us < self.valid_until_us
    }

    /// Parts of the rate (0 before the first grant).
    pub fn parts(&self) -> u32 {
        self.parts
    }

    /// The local bucket's capacity.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Local time the share lapses.
    pub fn valid_until_us(&self) -> u64 {
        self.valid_until_us
    }

    /// Whole tokens in the local bucket at `now_us` (0 once lapsed).
    pub fn tokens(&self, now_us: u64) -> u32 {
        if !self.is_valid(now_us) {
            return 0;
        }
        let fill = u64::from(self.burst) * self.interval_us;
        let backlog = self.tat_us.saturating_sub(now_us).min(fill);
        ((fill - backlog) / self.interval_us) as u32
    }

    /// Applies the grant answering a call sent at local time `sent_us` that
    /// asked for `ttl_us`, arriving at `now_us`.
    ///
    /// The bucket's tokens carry over only while the current share is still
    /// valid (the store reserved it without a gap), plus the tokens the
    /// store paid in ([`ShareGrant::added`]); a `fresh` grant starts a new
    /// bucket with just those. A grant of nothing, or the reply to a call
    /// older than the current share's, changes nothing: the current share
    /// stays reserved until it lapses.
    pub fn apply(
        &mut self,
        sent_us: u64,
        now_us: u64,
        quota: &Quota,
        ttl_us: u64,
        grant: &ShareGrant,
    ) {
        if sent_us < self.sent_us || grant.parts == 0 || grant.burst == 0 {
            return;
        }
        let interval_us = share_interval_us(quota, grant.parts);
        // What the bucket holds, in µs of the new interval: the old fill
        // converted exactly (partial tokens included, rounded down), plus
        // what the store paid in, at most the new capacity.
        let carried = if grant.fresh || !self.is_valid(now_us) {
            0
        } else {
            let fill = u64::from(self.burst) * self.interval_us;
            let free = fill - self.tat_us.saturating_sub(now_us).min(fill);
            let scaled = u128::from(free) * u128::from(interval_us) / u128::from(self.interval_us);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        let fill = u64::from(grant.burst) * interval_us;
        let held = carried
            .saturating_add(u64::from(grant.added) * interval_us)
            .min(fill);
        *self = Self {
            parts: grant.parts,
            burst: grant.burst,
            interval_us,
            tat_us: now_us + (fill - held),
            valid_until_us: sent_us + ttl_us,
            sent_us,
            generation: self.generation + 1,
            next_id: self.next_id,
            // Reservations of the old bucket can only be confirmed now.
            held: Default::default(),
            held_len: 0,
        };
    }

    /// Spends `cost` tokens if the share is valid and holds them.
    pub fn try_spend(&mut self, now_us: u64, cost: u32) -> Option<Reservation> {
        if !self.is_valid(now_us) {
            return None;
        }
        let fill = u64::from(self.burst) * self.interval_us;
        let backlog = self.tat_us.saturating_sub(now_us).min(fill);
        let need = u64::from(cost).saturating_mul(self.interval_us);
        if backlog.saturating_add(need) > fill {
            return None;
        }
        let before = self.tat_us;
        self.tat_us = now_us + backlog + need;
        // The same spend in each held reservation's world without it.
        for (_, shadow) in &mut self.held[..self.held_len] {
            *shadow = (*shadow).max(now_us) + need;
        }
        let id = self.next_id;
        self.next_id += 1;
        if self.held_len == MAX_HELD {
            self.held.rotate_left(1);
            self.held_len -= 1;
        }
        self.held[self.held_len] = (id, before);
        self.held_len += 1;
        Some(Reservation {
            id,
            from: self.generation,
        })
    }

    /// Undoes a [`try_spend`](Self::try_spend) whose request another limit
    /// denied: the bucket becomes what it would be without that reservation
    /// (a bound on the safe side when several were out); nothing if a grant
    /// replaced the bucket or the reservation is too old.
    pub fn refund(&mut self, reservation: Reservation) {
        if reservation.from != self.generation {
            return;
        }
        let held = &mut self.held[..self.held_len];
        let Some(i) = held.iter().position(|h| h.0 == reservation.id) else {
            return;
        };
        let shadow = held[i].1;
        self.remove_held(i);
        self.tat_us = self.tat_us.min(shadow);
        for (_, other) in &mut self.held[..self.held_len] {
            *other = (*other).min(shadow);
        }
    }

    /// Keeps a [`try_spend`](Self::try_spend) whose request was allowed.
    pub fn confirm(&mut self, reservation: Reservation) {
        if let Some(i) = self.held[..self.held_len]
            .iter()
            .position(|h| h.0 == reservation.id)
        {
            self.remove_held(i);
        }
    }

    fn remove_held(&mut self, i: usize) {
        self.held[i..self.held_len].rotate_left(1);
        self.held_len -= 1;
    }
}
