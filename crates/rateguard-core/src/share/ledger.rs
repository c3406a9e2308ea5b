//! [`Ledger`]: what the store keeps for a bucket that has rate shares.

use std::collections::BTreeMap;

use super::{water_level, Debt, Fill, ShareGrant, ShareRequest, MAX_DRAIN_STEP_US, MAX_HOLDERS};
use super::{FULL_BURST_DIVISOR, FULL_SLACK_PARTS, MAX_STEPS, SHARE_PARTS};
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
    /// Burst it was granted the rate for but the bucket could not pay yet:
    /// ordinary decisions leave that much free until its next call.
    pub pending: u32,
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

    /// Σ pending bursts, in tokens.
    pub fn pending(&self) -> u64 {
        self.holders.values().map(|h| u64::from(h.pending)).sum()
    }

    /// The floor: the reserved bursts in µs, at most the fill time.
    fn floor_us(&self, quota: &Quota) -> u64 {
        self.reserved_burst()
            .saturating_mul(quota.interval_us())
            .min(quota.fill_time_us())
    }

    /// The ordinary part's debt `D` at `now_us`: its layers drained since
    /// the last write at the rate the reservations of that write left them
    /// (rounded down), never into the floor, at most the fill time.
    pub fn backlog_us(&self, now_us: u64, quota: &Quota) -> u64 {
        let elapsed = now_us.saturating_sub(self.at_us).min(MAX_DRAIN_STEP_US);
        let free = SHARE_PARTS - self.reserved_parts().min(SHARE_PARTS);
        let drain = elapsed * u64::from(free) / u64::from(SHARE_PARTS);
        self.debt_us
            .saturating_sub(drain)
            .max(self.floor_us(quota))
            .min(quota.fill_time_us())
    }

    /// What an ordinary decision sees at `now_us`: `D` plus the pending
    /// bursts, and the layers above the floor.
    pub fn debt(&self, now_us: u64, quota: &Quota) -> Debt {
        let backlog = self.backlog_us(now_us, quota);
        let pending = self.pending().saturating_mul(quota.interval_us());
        Debt {
            backlog_us: backlog.saturating_add(pending).min(quota.fill_time_us()),
            queued_us: backlog - self.floor_us(quota).min(backlog),
        }
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
    /// Its rate is the max-min fair level over the demands of all current
    /// holders, capped by what the others still reserve, so Σ reserved
    /// rates ≤ R and Σ reserved bursts ≤ C at every instant. Its burst is
    /// proportional to its rate (at least 1); what its reserved burst grows
    /// by is inserted under the layers (paid for, and handed to the holder
    /// as [`ShareGrant::added`]) as far as the bucket can pay beside the
    /// other holders' pending bursts; the rest is left pending. A holder
    /// whose burst cannot be paid at all gets no rate either.
    pub fn grant(&mut self, now_us: u64, quota: &Quota, req: &ShareRequest<'_>) -> ShareGrant {
        self.margin_us = req.margin_us;
        self.advance(now_us, quota);
        let existing = self.holders.remove(req.holder);
        if existing.is_none() && self.holders.len() >= MAX_HOLDERS {
            return ShareGrant {
                parts: 0,
                burst: 0,
                added: 0,
                fresh: false,
            };
        }
        let mut rec = existing.unwrap_or_default();
        if req.fill == Fill::Full && !rec.full {
            // Its grants so far were one bucket carried over: one step.
            rec.steps = rec.steps.drain(..).reduce(merge_max).into_iter().collect();
            rec.full = true;
        }
        let demand = req.demand.min(SHARE_PARTS);
        let mut demands: Vec<u32> = self.holders.values().map(|h| h.demand).collect();
        demands.push(demand);
        // A `Full` holder's new buckets are paid out of the ordinary part,
        // which refills only at the rate no share reserves: Full holders
        // share all but `FULL_SLACK_PARTS`, so that rate never runs dry.
        let pool = match req.fill {
            Fill::Full => SHARE_PARTS - FULL_SLACK_PARTS,
            Fill::Carry => SHARE_PARTS,
        };
        let level = water_level(pool, &demands);
        let others_rate = self.reserved_parts().min(SHARE_PARTS);
        let mut parts = demand.min(level).min(pool.saturating_sub(others_rate));
        let capacity = u64::from(quota.capacity());
        // A Full holder's burst is half its proportional part of the
        // capacity, so that a new bucket fits beside the old ones.
        let divisor = match req.fill {
            Fill::Full => u64::from(SHARE_PARTS) * FULL_BURST_DIVISOR,
            Fill::Carry => u64::from(SHARE_PARTS),
        };
        let target = if parts == 0 {
            0
        } else {
            (capacity * u64::from(parts) / divisor).max(1)
        };
        let t = quota.interval_us();
        let fill = quota.fill_time_us();
        let room = ((fill - self.debt_us.min(fill)) / t).saturating_sub(self.pending());
        let cap = capacity.saturating_sub(self.reserved_burst());
        let held = rec.burst();
        let expires_us = now_us + req.ttl_us;
        // What a new bucket of a `Full` holder could hold now.
        let new_bucket = target.min(cap.saturating_sub(held)).min(room);
        let (burst, added, fresh) = match rec.steps.last_mut() {
            Some(s) if rec.full && s.burst > 0 && keeps(s, parts, target, new_bucket) => {
                // The holder keeps its bucket (extended).
                s.expires_us = s.expires_us.max(expires_us);
                parts = s.parts;
                (u64::from(s.burst), 0, false)
            }
            _ if rec.full => {
                // A new bucket, reserved beside the old ones.
                (new_bucket, new_bucket, new_bucket > 0)
            }
            _ => {
                let burst = target.min(cap).min(held + room);
                (burst, burst.saturating_sub(held), false)
            }
        };
        if burst == 0 {
            parts = 0;
        }
        let unchanged = rec.full && !fresh && added == 0 && parts > 0;
        if !unchanged {
            if !rec.full {
                rec.steps
                    .retain(|s| s.parts > parts || u64::from(s.burst) > burst);
            }
            rec.steps.push(Step {
                parts,
                burst: burst as u32,
                expires_us,
            });
        }
        while rec.steps.len() > MAX_STEPS {
            let oldest = rec.steps.remove(0);
            let mut merged = merge_max(oldest, rec.steps[0]);
            if rec.full {
                merged.burst = oldest.burst + rec.steps[0].burst;
            }
            rec.steps[0] = merged;
        }
        rec.demand = demand;
        rec.pending = target.saturating_sub(burst) as u32;
        self.debt_us += added * t;
        self.holders.insert(req.holder.to_owned(), rec);
        ShareGrant {
            parts,
            burst: burst as u32,
            added: added as u32,
            fresh,
        }
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
    /// `"<demand> <full 0|1> <pending> (<parts> <burst> <expires_us>)*"`.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            ("debt".to_owned(), self.debt_us.to_string()),
            ("at".to_owned(), self.at_us.to_string()),
            ("margin".to_owned(), self.margin_us.to_string()),
        ];
        for (id, h) in &self.holders {
            let mut value = format!("{} {} {}", h.demand, u8::from(h.full), h.pending);
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
                    let [demand, full, pending, steps @ ..] = n.as_slice() else {
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
                        pending: small(*pending)?,
                        steps,
                    };
                    ledger.holders.insert(id.to_owned(), holder);
                }
            }
        }
        Ok(ledger)
    }
}

/// Whether a `Full` holder keeps its latest bucket `s` (rather than start
/// a new one) when its fair share is now `parts` with burst `target`, and a
/// new bucket could hold `new_bucket` tokens: when nothing changed; or
/// when a new bucket would be short of its target and `s` is not above
/// the new share, and either the share is the same or `s` is larger than
/// that new bucket. A new bucket costs a reservation beside the old one
/// until that expires, and a tiny one throttles the holder; keeping `s`
/// (its rate at most the fair share) costs nothing.
fn keeps(s: &Step, parts: u32, target: u64, new_bucket: u64) -> bool {
    let burst = u64::from(s.burst);
    let same = s.parts == parts && burst == target;
    let short = new_bucket < target && s.parts <= parts && (s.parts == parts || new_bucket < burst);
    same || short
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
