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

impl Stored {
    /// The debt an ordinary decision sees at `now_us` (`backlog_us` of
    /// `rateguard_core::bucket` for a plain bucket).
    pub fn backlog_us(&self, now_us: u64, quota: &Quota) -> u64 {
        match self {
            Self::Plain { tat_us } => tat_us.saturating_sub(now_us).min(quota.fill_time_us()),
            Self::Shared(ledger) => ledger.backlog_us(now_us, quota),
        }
    }

    /// Writes the debt `debt_us` after a decision at `now_us` took tokens:
    /// a plain `tat`, or the ledger's ordinary debt (a ledger whose holders
    /// have all expired becomes plain again).
    pub fn set_debt(&mut self, now_us: u64, quota: &Quota, debt_us: u64) {
        match self {
            Self::Plain { tat_us } => *tat_us = now_us + debt_us,
            Self::Shared(ledger) => {
                ledger.advance(now_us, quota);
                ledger.debt_us = debt_us;
                if ledger.holders.is_empty() {
                    *self = Self::Plain {
                        tat_us: ledger.at_us + debt_us,
                    };
                }
            }
        }
    }

    /// Renews `req.holder`'s share at `now_us` ([`Ledger::grant`]); a plain
    /// bucket becomes a ledger with its current debt.
    pub fn grant(&mut self, now_us: u64, quota: &Quota, req: &ShareRequest<'_>) -> ShareGrant {
        if let Self::Plain { .. } = self {
            let debt = self.backlog_us(now_us, quota);
            *self = Self::Shared(Ledger::new(debt, now_us, req.margin_us));
        }
        let Self::Shared(ledger) = self else {
            unreachable!("converted above")
        };
        ledger.grant(now_us, quota, req)
    }
}
