//! The event loop: arrivals, the two legs of every store call, share
//! renewals, crashes and restarts, a store outage.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::replica::{Mode, Replica, ReplicaSpec, Reserved, Step};
use crate::lease::{self, LeaseBatch, LeaseLimit};
use crate::share::{ShareGrant, ShareRequest, Stored};
use crate::Quota;

/// One request: real time, replica, and per key it touches its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub(crate) at_us: u64,
    pub(crate) replica: usize,
    pub(crate) costs: Vec<(usize, u32)>,
}

/// A replica losing its state at `at_us`, back `down_us` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crash {
    pub(crate) at_us: u64,
    pub(crate) replica: usize,
    pub(crate) down_us: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// One bucket per key; key 0 is the one shares divide.
    pub(crate) quotas: Vec<Quota>,
    pub(crate) replicas: Vec<ReplicaSpec>,
    /// In time order.
    pub(crate) arrivals: Vec<Arrival>,
    /// Each call's legs take a uniform delay up to these (plus the
    /// replica's own `extra_back_us` on the way back).
    pub(crate) max_out_us: u64,
    pub(crate) max_back_us: u64,
    pub(crate) crashes: Vec<Crash>,
    /// Calls reaching the store in `[from, to)` fail.
    pub(crate) outage: Option<(u64, u64)>,
    /// Calls a replica sends in `[from, to)` fail (a partition of one
    /// replica: the others still reach the store).
    pub(crate) partitions: Vec<(usize, u64, u64)>,
    pub(crate) seed: u64,
}

/// What happened, per key.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Tokens taken for admitted requests: (real µs, cost).
    pub(crate) admitted: Vec<Vec<(u64, u32)>>,
    /// Requests that touched the key (at a live replica).
    pub(crate) offered: Vec<u64>,
    /// Requests admitted.
    pub(crate) admitted_requests: Vec<u64>,
    /// Store calls deciding requests, and share renewals.
    pub(crate) decide_calls: u64,
    pub(crate) share_calls: u64,
}

enum Event {
    Arrive(usize),
    AtStore(usize),
    Reply(usize),
    Renew(usize, u64),
    Crash(usize, u64),
    Restart(usize),
}

enum CallKind {
    Decide {
        arrived: u64,
        limits: Vec<(usize, LeaseLimit)>,
        reserved: Vec<Reserved>,
        reply: Option<LeaseBatch>,
    },
    Share {
        holder: String,
        demand: u32,
        ttl_us: u64,
        reply: Option<ShareGrant>,
    },
}

struct Call {
    replica: usize,
    generation: u64,
    sent_local: u64,
    cut_off: bool,
    kind: CallKind,
}

struct World<'a> {
    s: &'a Scenario,
    replicas: Vec<Replica>,
    stored: Vec<Stored>,
    queue: BinaryHeap<Reverse<(u64, usize)>>,
    events: Vec<Option<Event>>,
    calls: Vec<Call>,
    rng: u64,
    out: Outcome,
}

/// The store's clock reads real time plus this.
const STORE_OFFSET_US: u64 = 1_795_000_000_000_000;

/// Runs the scenario to the end (every reply delivered).
pub(crate) fn run(s: &Scenario) -> Outcome {
    let keys = s.quotas.len();
    let mut w = World {
        s,
        replicas: s.replicas.iter().cloned().map(Replica::new).collect(),
        stored: vec![Stored::default(); keys],
        queue: BinaryHeap::new(),
        events: Vec::new(),
        calls: Vec::new(),
        rng: s.seed | 1,
        out: Outcome {
            admitted: vec![Vec::new(); keys],
            offered: vec![0; keys],
            admitted_requests: vec![0; keys],
            ..Outcome::default()
        },
    };
    let start = s.arrivals.first().map_or(0, |a| a.at_us);
    for (i, a) in s.arrivals.iter().enumerate() {
        w.at(a.at_us, Event::Arrive(i));
    }
    for c in &s.crashes {
        w.at(c.at_us, Event::Crash(c.replica, c.down_us));
    }
    for r in 0..s.replicas.len() {
        w.start_renewals(r, start);
    }
    let end = s.arrivals.last().map_or(0, |a| a.at_us);
    while let Some(Reverse((t, id))) = w.queue.pop() {
        let event = w.events[id].take().expect("each event runs once");
        w.handle(t, event, end);
    }
    w.out
}

impl World<'_> {
    fn at(&mut self, t: u64, event: Event) {
        self.queue.push(Reverse((t, self.events.len())));
        self.events.push(Some(event));
    }

    fn random(&mut self, below_or_eq: u64) -> u64 {
        // xorshift64*: deterministic per scenario seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % (below_or_eq + 1)
    }

    fn local(&self, r: usize, t: u64) -> u64 {
        t + self.s.replicas[r].offset_us
    }

    /// The first renewal comes after one period of ordinary decisions, so
    /// it reports a measured demand (as a hot-key detector would know it),
    /// at a phase of its own (the replica's clock offset modulo the period).
    fn start_renewals(&mut self, r: usize, t: u64) {
        if let Mode::Share { period_us, .. } = self.s.replicas[r].mode {
            let generation = self.replicas[r].generation;
            let phase = self.s.replicas[r].offset_us % period_us;
            self.at(t + period_us + phase, Event::Renew(r, generation));
        }
    }

    fn record(&mut self, t: u64, reserved: &[Reserved]) {
        for &(k, cost, ..) in reserved {
            self.out.admitted[k].push((t, cost));
            self.out.admitted_requests[k] += 1;
        }
    }

    fn send(&mut self, t: u64, r: usize, kind: CallKind) {
        let id = self.calls.len();
        let cut_off = self
            .s
            .partitions
            .iter()
            .any(|&(p, from, to)| p == r && (from..to).contains(&t));
        self.calls.push(Call {
            replica: r,
            generation: self.replicas[r].generation,
            sent_local: self.local(r, t),
            cut_off,
            kind,
        });
        let delay = self.random(self.s.max_out_us);
        self.at(t + delay, Event::AtStore(id));
    }

    fn handle(&mut self, t: u64, event: Event, end: u64) {
        match event {
            Event::Arrive(i) => self.arrive(t, i),
            Event::AtStore(id) => self.decide(t, id),
            Event::Reply(id) => self.reply(t, id),
            Event::Renew(r, generation) => self.renew(t, r, generation, end),
            Event::Crash(r, down) => {
                self.replicas[r].crash();
                self.at(t + down, Event::Restart(r));
            }
            Event::Restart(r) => {
                self.replicas[r].up = true;
                self.start_renewals(r, t);
            }
        }
    }

    fn arrive(&mut self, t: u64, i: usize) {
        let a = &self.s.arrivals[i];
        let r = a.replica;
        if !self.replicas[r].up {
            return;
        }
        for &(k, _) in &a.costs {
            self.out.offered[k] += 1;
        }
        let now = self.local(r, t);
        match self.replicas[r].on_request(now, &self.s.quotas, &a.costs) {
            Step::Local(reserved) => self.record(t, &reserved),
            Step::Denied => {}
            Step::Call { reserved, limits } => {
                self.out.decide_calls += 1;
                let kind = CallKind::Decide {
                    arrived: t,
                    limits,
                    reserved,
                    reply: None,
                };
                self.send(t, r, kind);
            }
        }
    }

    fn renew(&mut self, t: u64, r: usize, generation: u64, end: u64) {
        let Mode::Share {
            period_us, ttl_us, ..
        } = self.s.replicas[r].mode
        else {
            return;
        };
        if generation != self.replicas[r].generation || !self.replicas[r].up {
            return;
        }
        self.out.share_calls += 1;
        let demand = self.replicas[r].demand(&self.s.quotas[0]);
        let holder = self.replicas[r].holder_id(r);
        let kind = CallKind::Share {
            holder,
            demand,
            ttl_us,
            reply: None,
        };
        self.send(t, r, kind);
        if t + period_us <= end {
            self.at(t + period_us, Event::Renew(r, generation));
        }
    }

    /// The store decides the call at real time `t`.
    fn decide(&mut self, t: u64, id: usize) {
        let now = t + STORE_OFFSET_US;
        let failed =
            self.calls[id].cut_off || self.s.outage.is_some_and(|(a, b)| (a..b).contains(&t));
        let r = self.calls[id].replica;
        let margin = match self.s.replicas[r].mode {
            Mode::Share { margin_us, .. } => margin_us,
            Mode::Keys => 0,
        };
        let fill = match self.s.replicas[r].mode {
            Mode::Share { fill, .. } => Some(fill),
            Mode::Keys => None,
        };
        match &mut self.calls[id].kind {
            CallKind::Decide { limits, reply, .. } if !failed => {
                let mut stored: Vec<Stored> = limits
                    .iter()
                    .map(|(k, _)| std::mem::take(&mut self.stored[*k]))
                    .collect();
                let lls: Vec<LeaseLimit> = limits.iter().map(|(_, ll)| *ll).collect();
                let batch = lease::acquire_all(now, &mut stored, &lls);
                for ((k, ll), (s, b)) in limits.iter().zip(stored.into_iter().zip(&batch.buckets)) {
                    self.stored[*k] = s;
                    if b.spent && ll.limit.cost > 0 {
                        self.out.admitted[*k].push((t, ll.limit.cost));
                    }
                    if batch.allowed {
                        self.out.admitted_requests[*k] += 1;
                    }
                }
                *reply = Some(batch);
            }
            CallKind::Share {
                holder,
                demand,
                ttl_us,
                reply,
            } if !failed => {
                let req = ShareRequest {
                    holder,
                    demand: *demand,
                    ttl_us: *ttl_us,
                    margin_us: margin,
                    fill: fill.expect("share calls come from share replicas"),
                };
                *reply = Some(self.stored[0].grant(now, &self.s.quotas[0], &req));
            }
            _ => {}
        }
        let delay = self.random(self.s.max_back_us) + self.s.replicas[r].extra_back_us;
        self.at(t + delay, Event::Reply(id));
    }

    fn reply(&mut self, t: u64, id: usize) {
        let r = self.calls[id].replica;
        if self.calls[id].generation != self.replicas[r].generation || !self.replicas[r].up {
            return; // lost with the crash
        }
        let now = self.local(r, t);
        let sent = self.calls[id].sent_local;
        let kind = std::mem::replace(
            &mut self.calls[id].kind,
            CallKind::Share {
                holder: String::new(),
                demand: 0,
                ttl_us: 0,
                reply: None,
            },
        );
        match kind {
            CallKind::Decide {
                arrived,
                limits,
                reserved,
                reply,
            } => {
                let replica = &mut self.replicas[r];
                if let Some(kept) = replica.on_decided(sent, now, &limits, reserved, reply.as_ref())
                {
                    self.record(arrived, &kept);
                }
            }
            CallKind::Share { ttl_us, reply, .. } => {
                if let Some(grant) = reply {
                    self.replicas[r].on_granted(sent, now, &self.s.quotas[0], ttl_us, &grant);
                }
            }
        }
    }
}
