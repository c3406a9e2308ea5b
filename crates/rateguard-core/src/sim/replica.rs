//! One simulated replica: its local leases and share, and the policy that
//! decides a request locally, denies it locally, or asks the store.

use crate::lease::{Lease, LeaseBatch, LeaseLimit, Reservation};
use crate::share::{demand_parts, Fill, LocalShare, ShareGrant};
use crate::{Limit, Quota};

/// How a replica decides the hot bucket (key 0); other keys lease
/// `wants[k]` tokens per call (0: ordinary decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Key 0 like the other keys: `wants[0]`.
    Keys,
    /// Key 0 through a rate share, renewed every `period_us`.
    Share {
        period_us: u64,
        ttl_us: u64,
        margin_us: u64,
        fill: Fill,
        headroom_pct: u32,
        /// When the share cannot pay: ask the store (`true`) or deny.
        fallback: bool,
    },
}

/// A replica's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplicaSpec {
    pub(crate) mode: Mode,
    /// Tokens leased per call, per key (0: ordinary decisions).
    pub(crate) wants: Vec<u32>,
    /// Deny locally while a lease reply proved the bucket short.
    pub(crate) hold_off: bool,
    /// Its clock reads real time plus this (and its share renewals run at
    /// this modulo their period).
    pub(crate) offset_us: u64,
    /// Added to every reply's delay: a slow link.
    pub(crate) extra_back_us: u64,
}

/// Where a limit's token comes from locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Share,
    Lease(usize),
}

/// A token taken locally for a request still being decided.
pub(crate) type Reserved = (usize, u32, Source, Reservation);

/// What a replica does with a request.
pub(crate) enum Step {
    /// Every limit paid locally.
    Local(Vec<Reserved>),
    /// Denied without asking the store.
    Denied,
    /// Ask the store for `limits` (key, limit); `reserved` waits for it.
    Call {
        reserved: Vec<Reserved>,
        limits: Vec<(usize, LeaseLimit)>,
    },
}

#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) spec: ReplicaSpec,
    pub(crate) up: bool,
    /// Bumped by each crash: replies to older calls are lost.
    pub(crate) generation: u64,
    leases: Vec<Lease>,
    share: LocalShare,
    offered_since_renew: u64,
}

impl Replica {
    pub(crate) fn new(spec: ReplicaSpec) -> Self {
        let keys = spec.wants.len();
        Self {
            spec,
            up: true,
            generation: 0,
            leases: vec![Lease::default(); keys],
            share: LocalShare::default(),
            offered_since_renew: 0,
        }
    }

    /// Loses every local state (a crash); replies in flight are lost too.
    pub(crate) fn crash(&mut self) {
        let spec = self.spec.clone();
        let generation = self.generation + 1;
        *self = Self::new(spec);
        self.up = false;
        self.generation = generation;
    }

    pub(crate) fn holder_id(&self, index: usize) -> String {
        format!("replica-{index}-gen-{}", self.generation)
    }

    /// Where key `k`'s tokens come from at this replica.
    fn source(&self, k: usize) -> Option<Source> {
        match self.spec.mode {
            Mode::Share { .. } if k == 0 => Some(Source::Share),
            _ if self.spec.wants[k] > 0 => Some(Source::Lease(k)),
            _ => None,
        }
    }

    /// Decides a request of `costs` (key, cost) at local time `now`.
    pub(crate) fn on_request(
        &mut self,
        now: u64,
        quotas: &[Quota],
        costs: &[(usize, u32)],
    ) -> Step {
        if costs.iter().any(|&(k, _)| k == 0) {
            self.offered_since_renew += 1;
        }
        let mut reserved = Vec::new();
        let mut limits = Vec::new();
        let mut deny = false;
        for &(k, cost) in costs {
            let mut want = 0;
            match self.source(k) {
                Some(Source::Share) if self.share.is_valid(now) => {
                    if let Some(r) = self.share.try_spend(now, cost) {
                        reserved.push((k, cost, Source::Share, r));
                        continue;
                    }
                    let Mode::Share { fallback, .. } = self.spec.mode else {
                        unreachable!("a share source is a share mode")
                    };
                    deny |= !fallback;
                }
                Some(Source::Lease(_)) => {
                    if let Some(r) = self.leases[k].try_spend(now, &quotas[k], cost) {
                        reserved.push((k, cost, Source::Lease(k), r));
                        continue;
                    }
                    deny |= self.spec.hold_off && self.leases[k].is_short(now);
                    want = self.spec.wants[k];
                }
                // No share yet (or lapsed), or ordinary decisions.
                Some(Source::Share) | None => {}
            }
            let limit = Limit::enforced(quotas[k], cost);
            limits.push((k, LeaseLimit { limit, want }));
        }
        if limits.is_empty() {
            self.confirm(&reserved);
            return Step::Local(reserved);
        }
        if deny {
            self.refund(reserved);
            return Step::Denied;
        }
        Step::Call { reserved, limits }
    }

    /// Gives back what a denied request had taken locally.
    pub(crate) fn refund(&mut self, reserved: Vec<Reserved>) {
        for (_, _, source, r) in reserved {
            match source {
                Source::Share => self.share.refund(r),
                Source::Lease(k) => self.leases[k].refund(r),
            }
        }
    }

    /// Keeps what an allowed request had taken locally.
    fn confirm(&mut self, reserved: &[Reserved]) {
        for &(_, _, source, r) in reserved {
            match source {
                Source::Share => self.share.confirm(r),
                Source::Lease(k) => self.leases[k].confirm(r),
            }
        }
    }

    /// The store's answer (`None`: the call failed) to a call sent at
    /// `sent`, arriving at `now`. Whether the request is admitted.
    pub(crate) fn on_decided(
        &mut self,
        sent: u64,
        now: u64,
        limits: &[(usize, LeaseLimit)],
        reserved: Vec<Reserved>,
        reply: Option<&LeaseBatch>,
    ) -> Option<Vec<Reserved>> {
        if let Some(batch) = reply {
            for ((k, ll), leased) in limits.iter().zip(&batch.buckets) {
                if ll.want > 0 {
                    self.leases[*k].apply(sent, now, leased, ll.want);
                }
            }
            if batch.allowed {
                self.confirm(&reserved);
                return Some(reserved);
            }
        }
        self.refund(reserved);
        None
    }

    /// The demand to report at a renewal, and resets the count.
    pub(crate) fn demand(&mut self, quota: &Quota) -> u32 {
        let Mode::Share {
            period_us,
            headroom_pct,
            ..
        } = self.spec.mode
        else {
            return 0;
        };
        let offered = std::mem::take(&mut self.offered_since_renew);
        demand_parts(offered, period_us, quota, headroom_pct)
    }

    pub(crate) fn on_granted(
        &mut self,
        sent: u64,
        now: u64,
        quota: &Quota,
        ttl: u64,
        grant: &ShareGrant,
    ) {
        self.share.apply(sent, now, quota, ttl, grant);
    }
}
