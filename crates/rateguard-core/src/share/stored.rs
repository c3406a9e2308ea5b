//! [`Stored`]: one bucket as the store holds it, with or without shares.

use super::{Ledger, ShareGrant, ShareRequest};
use crate::Quota;

/// One bucket in the store: a plain GCRA `tat` (what `token_bucket.lua`
/// keeps), or a [`Ledger`] while it has rate shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A theoretical arrival time; 0 for a key never seen.
    Plain {
        /// The stored `tat` (µs).
        tat_us: u64,
    },
    /// A bucket divided into an ordinary part and shares.
    Shared(Ledger),
}

impl Default for Stored {
    fn default() -> Self {
        Self::Plain { tat_us: 0 }
    }
}

/// A bucket's debt as an ordinary decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debt {
    /// µs of refill time in use: `min(tat − now, C·T)` for a plain bucket
    /// (`backlog_us` of `rateguard_core::bucket`), the ordinary part's debt
    /// plus pending bursts for a ledger. A request fits iff
    /// `backlog + cost·T ≤ C·T`.
    pub backlog_us: u64,
    /// The part of the debt that drains before anything added now: all of
    /// it for a plain bucket, the layers above the floor for a ledger.
    pub queued_us: u64,
}

impl Stored {
    /// The debt an ordinary decision sees at `now_us`.
    pub fn debt(&self, now_us: u64, quota: &Quota) -> Debt {
        match self {
            Self::Plain { tat_us } => {
                let backlog = tat_us.saturating_sub(now_us).min(quota.fill_time_us());
                Debt {
                    backlog_us: backlog,
                    queued_us: backlog,
                }
            }
            Self::Shared(ledger) => ledger.debt(now_us, quota),
        }
    }

    /// Takes `tokens` at `now_us` (a decision that fitted): a new plain
    /// `tat`, or a layer on the ledger's ordinary part (a ledger whose
    /// holders have all expired becomes plain again).
    pub fn take(&mut self, now_us: u64, quota: &Quota, tokens: u64) {
        let size = tokens * quota.interval_us();
        match self {
            Self::Plain { tat_us } => {
                let backlog = tat_us.saturating_sub(now_us).min(quota.fill_time_us());
                *tat_us = now_us + backlog + size;
            }
            Self::Shared(ledger) => {
                ledger.advance(now_us, quota);
                ledger.debt_us += size;
                if ledger.holders.is_empty() {
                    *self = Self::Plain {
                        tat_us: ledger.at_us + ledger.debt_us,
                    };
                }
            }
        }
    }

    /// Renews `req.holder`'s share at `now_us` ([`Ledger::grant`]); a plain
    /// bucket becomes a ledger with its current debt as layers.
    pub fn grant(&mut self, now_us: u64, quota: &Quota, req: &ShareRequest<'_>) -> ShareGrant {
        if let Self::Plain { .. } = self {
            let debt = self.debt(now_us, quota).backlog_us;
            *self = Self::Shared(Ledger::new(debt, now_us, req.margin_us));
        }
        let Self::Shared(ledger) = self else {
            unreachable!("converted above")
        };
        ledger.grant(now_us, quota, req)
    }
}
