//! [`Ledger`]: what the store keeps for a bucket that has rate shares.

use std::collections::BTreeMap;

use super::{water_level, Fill, ShareGrant, ShareRequest, MAX_DRAIN_STEP_US, MAX_HOLDERS};
use super::{MAX_STEPS, SHARE_PARTS};
use crate::Quota;

/// One grant a holder may still be using.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Parts of the rate.
    pub parts: u32,
    /// Burst (the holder's local capacity).
    pub burst: u32,
    /// Store time the holder's use of it ends; reserved until this plus
    /// the ledger's margin.
    pub expires_us: u64,
}

/// One holder's grants and last reported demand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// Parts asked for at the last call (max-min fairness input).
    pub demand: u32,
    /// Whether the holder restarts its bucket full on a change ([`Fill::Full`]);
    /// sticky, since its old buckets stay reserved.
    pub full: bool,
    /// Grants in the order they were made; the last is the latest.
    pub steps: Vec<Step>,
}

impl Holder {
    /// The rate reserved for it: the largest of its grants (it refills at
    /// one of them at a time).
    pub fn rate(&self) -> u32 {
        self.steps.iter().map(|s| s.parts).max().unwrap_or(0)
    }

    /// The burst reserved for it: the largest of its grants for a holder
    /// that carries one bucket over, their sum for a `Full` holder (an old
    /// bucket lives until the new one arrives).
    pub fn burst(&self) -> u64 {
        let bursts = self.steps.iter().map(|s| u64::from(s.burst));
        if self.full {
            bursts.sum()
        } else {
            bursts.max().unwrap_or(0)
        }
    }
}

/// A bucket divided into an ordinary part and holders' shares (see the
/// module docs of [`crate::share`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The ordinary part's debt (µs, a token is `T`) at `at_us`.
    pub debt_us: u64,
    /// Store time of the last write.
    pub at_us: u64,
    /// Clock margin: a step is reserved until `expires_us + margin_us`.
    pub margin_us: u64,
    /// Holders by id.
    pub holders: BTreeMap<String, Holder>,
}

impl Ledger {
    /// A ledger without holders whose ordinary debt is `debt_us` at `at_us`.
    pub fn new(debt_us: u64, at_us: u64, margin_us: u64) -> Self {
        Self {
            debt_us,
            at_us,
            margin_us,
            holders: BTreeMap::new(),
        }
    }

    /// Σ reserved rates, in parts.
    pub fn reserved_parts(&self) -> u32 {
        self.holders.values().map(Holder::rate).sum()
    }

    /// Σ reserved bursts, in tokens.
    pub fn reserved_burst(&self) -> u64 {
        self.holders.values().map(Holder::burst).sum()
    }

    /// The ordinary part's debt at `now_us`: drained since the last write
    /// at the rate the reservations of that write left it (rounded down),
    /// never below the reserved bursts, at most the bucket's fill time.
    pub fn backlog_us(&self, now_us: u64, quota: &Quota) -> u64 {
        let fill = quota.fill_time_us();
        let elapsed = now_us.saturating_sub(self.at_us).min(MAX_DRAIN_STEP_US);
        let free = SHARE_PARTS - self.reserved_parts().min(SHARE_PARTS);
        let drain = elapsed * u64::from(free) / u64::from(SHARE_PARTS);
        let floor = self
            .reserved_burst()
            .saturating_mul(quota.interval_us())
            .min(fill);
        self.debt_us.saturating_sub(drain).max(floor).min(fill)
    }

    /// Brings the ledger to `now_us`: drains the debt, drops the steps
    /// whose reservation ended, and the holders left without any.
    pub fn advance(&mut self, now_us: u64, quota: &Quota) {
        self.debt_us = self.backlog_us(now_us, quota);
        self.at_us = self.at_us.max(now_us);
        let margin = self.margin_us;
        for holder in self.holders.values_mut() {
            holder
                .steps
                .retain(|s| s.expires_us.saturating_add(margin) >= now_us);
        }
        self.holders.retain(|_, h| !h.steps.is_empty());
    }

    /// Renews (or creates) `req.holder`'s share at store time `now_us`.
    ///
    /// Its target is the max-min fair level over the demands of all current
    /// holders, capped by the rate and burst other holders still reserve,
    /// so Σ reserved rates ≤ R and Σ reserved bursts ≤ C hold at every
    /// instant. A `Full` holder's changed share is charged its burst (its
    /// new bucket starts full), only as far as the bucket can pay.
    pub fn grant(&mut self, now_us: u64, quota: &Quota, req: &ShareRequest<'_>) -> ShareGrant {
        self.margin_us = req.margin_us;
        self.advance(now_us, quota);
        let none = ShareGrant {
            parts: 0,
            burst: 0,
            start_full: false,
        };
        let existing = self.holders.remove(req.holder);
        if existing.is_none() && self.holders.len() >= MAX_HOLDERS {
            return none;
        }
        let mut rec = existing.unwrap_or_default();
        if req.fill == Fill::Full && !rec.full {
            // Its grants so far were one bucket carried over: one step.
            rec.steps = rec.steps.drain(..).reduce(merge_max).into_iter().collect();
            rec.full = true;
        }
        let demand = req.demand.min(SHARE_PARTS);
        let others_rate = self.reserved_parts().min(SHARE_PARTS);
        let others_burst = self.reserved_burst();
        let mut demands: Vec<u32> = self.holders.values().map(|h| h.demand).collect();
        demands.push(demand);
        let level = water_level(SHARE_PARTS, &demands);
        let mut parts = demand.min(level).min(SHARE_PARTS - others_rate);
        let capacity = u64::from(quota.capacity());
        let target_burst = if parts == 0 {
            0
        } else {
            (capacity * u64::from(parts) / u64::from(SHARE_PARTS)).max(1)
        };
        let expires_us = now_us + req.ttl_us;
        let mut start_full = false;
        let burst = if rec.full {
            let last = rec.steps.last_mut();
            match last {
                Some(s) if u64::from(s.burst) == target_burst && s.parts == parts => {
                    // Unchanged: the holder keeps its bucket; no new charge.
                    s.expires_us = s.expires_us.max(expires_us);
                    s.burst
                }
                _ => {
                    let burst = self.charge_full(quota, others_burst + rec.burst(), target_burst);
                    if burst == 0 {
                        parts = 0;
                    }
                    start_full = burst > 0;
                    rec.steps.push(Step {
                        parts,
                        burst,
                        expires_us,
                    });
                    burst
                }
            }
        } else {
            let burst = target_burst.min(capacity.saturating_sub(others_burst));
            let burst = if burst == 0 {
                parts = 0;
                0
            } else {
                burst as u32
            };
            rec.steps.retain(|s| s.parts > parts || s.burst > burst);
            rec.steps.push(Step {
                parts,
                burst,
                expires_us,
            });
            burst
        };
        while rec.steps.len() > MAX_STEPS {
            let oldest = rec.steps.remove(0);
            let mut merged = merge_max(oldest, rec.steps[0]);
            if rec.full {
                merged.burst = oldest.burst + rec.steps[0].burst;
            }
            rec.steps[0] = merged;
        }
        rec.demand = demand;
        self.holders.insert(req.holder.to_owned(), rec);
        let floor = self
            .reserved_burst()
            .saturating_mul(quota.interval_us())
            .min(quota.fill_time_us());
        self.debt_us = self.debt_us.max(floor);
        ShareGrant {
            parts,
            burst,
            start_full,
        }
    }

    /// Charges a `Full` holder's new bucket: the largest burst up to
    /// `target` that the bucket can pay both as tokens (`debt + b·T ≤ C·T`)
    /// and as reservation beside the `reserved` bursts already held
    /// (`reserved + b` in the floor, `b` more charged on top). Returns it.
    fn charge_full(&mut self, quota: &Quota, reserved: u64, target: u64) -> u32 {
        let t = quota.interval_us();
        let fill = quota.fill_time_us();
        let by_debt = (fill - self.debt_us.min(fill)) / t;
        let by_floor = u64::from(quota.capacity()).saturating_sub(reserved) / 2;
        let burst = target.min(by_debt).min(by_floor);
        if burst > 0 {
            self.debt_us = self.debt_us.max((reserved + burst) * t) + burst * t;
        }
        burst as u32
    }

    /// Store time after which every reservation has ended and the ordinary
    /// debt has drained, so the ledger may be forgotten. `None` without
    /// holders.
    pub fn forget_at_us(&self, quota: &Quota) -> Option<u64> {
        self.holders
            .values()
            .flat_map(|h| &h.steps)
            .map(|s| s.expires_us.saturating_add(self.margin_us))
            .max()
            .map(|end| end + quota.fill_time_us())
    }

    /// The ledger's time-to-live in Redis, written at `now_us`: until
    /// [`forget_at_us`](Self::forget_at_us), in whole ms, plus a second.
    pub fn ttl_ms(&self, now_us: u64, quota: &Quota) -> u64 {
        let end = self.forget_at_us(quota).unwrap_or(now_us);
        end.saturating_sub(now_us) / 1000 + 1000
    }

    /// The value the bucket's plain key (`token_bucket.lua`'s `tat`) holds
    /// while the ledger lives, written at `now_us` with a TTL 1 ms longer
    /// than the ledger's: a theoretical arrival time a full bucket beyond the
    /// ledger's life, so `token_bucket.lua` sees an empty bucket and denies
    /// (it does not know the shares) until both keys are gone.
    pub fn seal_us(&self, now_us: u64, quota: &Quota) -> u64 {
        now_us + self.ttl_ms(now_us, quota) * 1000 + quota.fill_time_us()
    }

    /// The Redis hash fields, as `lease.lua` and `share.lua` write them:
    /// `debt`, `at`, `margin`, and `h:<holder>` =
    /// `"<demand> <full 0|1> (<parts> <burst> <expires_us>)*"`.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            ("debt".to_owned(), self.debt_us.to_string()),
            ("at".to_owned(), self.at_us.to_string()),
            ("margin".to_owned(), self.margin_us.to_string()),
        ];
        for (id, h) in &self.holders {
            let mut value = format!("{} {}", h.demand, u8::from(h.full));
            for s in &h.steps {
                value.push_str(&format!(" {} {} {}", s.parts, s.burst, s.expires_us));
            }
            fields.push((format!("{HOLDER_PREFIX}{id}"), value));
        }
        fields
    }

    /// Parses [`to_fields`](Self::to_fields)' output (in any order).
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LedgerError> {
        let mut ledger = Self::default();
        for (name, value) in fields {
            let bad = || LedgerError(format!("{name} = {value:?}"));
            let number = || value.parse::<u64>().map_err(|_| bad());
            match name {
                "debt" => ledger.debt_us = number()?,
                "at" => ledger.at_us = number()?,
                "margin" => ledger.margin_us = number()?,
                _ => {
                    let id = name.strip_prefix(HOLDER_PREFIX).ok_or_else(bad)?;
                    let n: Vec<u64> = value
                        .split(' ')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad())?;
                    let [demand, full, steps @ ..] = n.as_slice() else {
                        return Err(bad());
                    };
                    if steps.len() % 3 != 0 {
                        return Err(bad());
                    }
                    let small = |v: u64| u32::try_from(v).map_err(|_| bad());
                    let steps = steps
                        .chunks(3)
                        .map(|c| {
                            Ok(Step {
                                parts: small(c[0])?,
                                burst: small(c[1])?,
                                expires_us: c[2],
                            })
                        })
                        .collect::<Result<_, LedgerError>>()?;
                    let holder = Holder {
                        demand: small(*demand)?,
                        full: *full == 1,
                        steps,
                    };
                    ledger.holders.insert(id.to_owned(), holder);
                }
            }
        }
        Ok(ledger)
    }
}

/// One step reserving at least what `a` and `b` did (larger rate and
/// burst, later expiry).
fn merge_max(a: Step, b: Step) -> Step {
    Step {
        parts: a.parts.max(b.parts),
        burst: a.burst.max(b.burst),
        expires_us: a.expires_us.max(b.expires_us),
    }
}

/// Prefix of a holder's field in the ledger hash.
pub(crate) const HOLDER_PREFIX: &str = "h:";

/// A ledger hash field that does not parse, named with its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed share ledger field {0}")]
pub struct LedgerError(String);
