//! [`QuotaStream`]: one Envoy's `StreamRateLimitQuotas` stream, as a state
//! machine the service drives with reports and renewal ticks.
//!
//! Per bucket the stream keeps the Envoy's demand (requests offered per
//! second, from its usage reports) and what it last assigned. A bucket's
//! first report is answered at once; after that every bucket is renewed
//! every [`RENEW_EVERY`] whatever Envoy's reporting interval, so a share
//! freed elsewhere reaches this Envoy within a renewal of its expiry.
//!
//! Each renewal asks the share ledger ([`ShareStore`]) for this stream's
//! share at its demand (a [`Fill::Full`] holder: Envoy rebuilds its token
//! bucket full on every changed assignment) and sends the grant as a token
//! bucket with [`ASSIGNMENT_TTL`] less the time the call took, so Envoy's
//! use ends no later than the ledger's reservation plus the delivery delay,
//! which [`CLOCK_MARGIN`] covers. A ledger that answers "unchanged" is only
//! trusted while Envoy still holds that very bucket; otherwise the stream
//! moves to a new holder id, so a bucket Envoy rebuilds is always paid for.
//! A grant of nothing leaves Envoy's current bucket to lapse.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_response::BucketAction;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::{BucketId, RateLimitQuotaUsageReports};
use rateguard_contract::OnError;
use rateguard_core::share::{demand_parts, Fill, ShareGrant, ShareRequest, SHARE_PARTS};
use rateguard_core::{BucketKey, Quota};
use rateguard_runtime::decide::local_quota;
use rateguard_runtime::{DecideOptions, StoreMetrics};
use rateguard_store::StoreError;

use super::action::{self, Assignment};
use super::bucket::{entries, plan_bucket, BucketPlan};
use super::shares::{MemoryShares, ShareStore};
use crate::limits::Limits;

/// How often every bucket of a stream is renewed.
pub const RENEW_EVERY: Duration = Duration::from_millis(250);
/// How long the ledger reserves a share (from when its store call was
/// sent). Envoy applies whole seconds of a time-to-live, so what it is
/// sent is this less the call's time, rounded down: 1 s when the call took
/// under 500 ms (a grant that would arrive with less is not sent).
pub const ASSIGNMENT_TTL: Duration = Duration::from_millis(1500);
/// The longest a share call may take (off the request path, so not
/// `store.timeout_ms`): what leaves Envoy a whole second of its grant.
pub const SHARE_BUDGET: Duration = Duration::from_millis(400);
/// What a bucket asks for before its demand is known, in parts of 1000.
/// A quarter: growing later is cheap, while a share given up is reserved
/// until it expires, so a first Envoy taking everything would hold the
/// others off for a TTL.
pub const FIRST_DEMAND: u32 = SHARE_PARTS / 4;
/// How long after an assignment's expiry the ledger still reserves it:
/// covers the delivery of the assignment to Envoy.
pub const CLOCK_MARGIN: Duration = Duration::from_millis(250);
/// Usage reports are summed over at least this long before they set a
/// bucket's demand (Envoy also reports at once on every new assignment).
pub const DEMAND_WINDOW: Duration = Duration::from_millis(500);
/// Demand asked above what was offered, in percent, so growth shows.
pub const DEMAND_HEADROOM_PCT: u32 = 25;
/// Demands are rounded up to a multiple of this many parts (of 1000), so
/// noise in the reports does not change shares (each change costs Envoy a
/// new bucket paid out of the shared one).
pub const DEMAND_STEP: u32 = 25;
/// An assignment Envoy holds is only extended when it has at least this
/// long left: the extension must arrive before it lapses, or Envoy would
/// rebuild the bucket full (unpaid) instead of extending it.
const EXTEND_SLACK: Duration = Duration::from_millis(400);
/// A bucket not reported for this long (or three reporting intervals,
/// whichever is longer) is no longer renewed; its share lapses.
const STALE_MIN: Duration = Duration::from_secs(3);
/// The reporting interval assumed before two reports were seen.
const UNKNOWN_INTERVAL: Duration = Duration::from_secs(60);

/// What a stream needs from its service for one round.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The limits in force.
    pub limits: &'a Limits,
    /// Where shares live.
    pub shares: &'a ShareStore,
    /// This replica's ledgers for `on_error = "local"`.
    pub local: &'a MemoryShares,
    /// `store.timeout_ms`, `on_error`, `replicas_hint`.
    pub options: &'a DecideOptions,
    /// Store latency and errors.
    pub store_metrics: &'a StoreMetrics,
}

/// Why a report was refused (gRPC `INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The first report named no domain.
    #[error("the first usage report must name the domain")]
    NoDomain,
    /// A later report named another domain.
    #[error("domain {got:?} differs from the stream's {stream:?}; open a new stream")]
    OtherDomain {
        /// The stream's domain.
        stream: String,
        /// The report's.
        got: String,
    },
    /// A usage had no `bucket_id`.
    #[error("bucket_quota_usages[{0}] has no bucket_id")]
    NoBucketId(usize),
}

/// Who decided an assignment's token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The shared ledger.
    Shared,
    /// This replica's ledger at `1/replicas_hint` (the store failed).
    Local,
}

/// The token bucket Envoy holds, as last sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    source: Source,
    parts: u32,
    burst: u32,
    /// When it lapses at the earliest (our send time + its TTL).
    until: Instant,
}

/// One bucket of the stream.
#[derive(Debug)]
struct Tracked {
    id: BucketId,
    /// Offered requests and time since the last demand update.
    offered: u64,
    elapsed: Duration,
    /// The last complete demand window: (requests, time).
    window: Option<(u64, Duration)>,
    last_report: Instant,
    interval: Option<Duration>,
    /// Bumped when Envoy may have rebuilt its bucket: a new holder id.
    generation: u64,
    held: Option<Held>,
    /// The last assignment limited it (so a removed limit abandons it).
    limited: bool,
}

impl From<ReportError> for tonic::Status {
    fn from(e: ReportError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

impl Tracked {
    fn new(id: BucketId, now: Instant) -> Self {
        Self {
            id,
            offered: 0,
            elapsed: Duration::ZERO,
            window: None,
            last_report: now,
            interval: None,
            generation: 0,
            held: None,
            limited: false,
        }
    }

    /// The demand in parts of `quota`'s rate: [`FIRST_DEMAND`] before a
    /// window was seen, else what was offered plus headroom, rounded up to
    /// [`DEMAND_STEP`], at least 1 part.
    fn demand(&self, quota: &Quota) -> u32 {
        let Some((offered, elapsed)) = self.window else {
            return FIRST_DEMAND;
        };
        let parts = demand_parts(
            offered,
            elapsed.as_micros() as u64,
            quota,
            DEMAND_HEADROOM_PCT,
        );
        parts
            .div_ceil(DEMAND_STEP)
            .saturating_mul(DEMAND_STEP)
            .clamp(1, SHARE_PARTS)
    }

    fn stale_after(&self) -> Duration {
        (self.interval.unwrap_or(UNKNOWN_INTERVAL) * 3).max(STALE_MIN)
    }

    /// Whether Envoy still holds exactly this bucket from `source`, long
    /// enough for an extension to reach it.
    fn holds(&self, source: Source, grant: &ShareGrant, now: Instant) -> bool {
        self.held.is_some_and(|h| {
            h.source == source
                && h.parts == grant.parts
                && h.burst == grant.burst
                && now + EXTEND_SLACK < h.until
        })
    }
}

/// One stream's state.
#[derive(Debug)]
pub struct QuotaStream {
    holder: String,
    domain: Option<String>,
    buckets: HashMap<Vec<(String, String)>, Tracked>,
}

/// What a bucket's round produced.
enum Outcome {
    Send(BucketAction),
    Nothing,
    Forget(BucketAction),
}

impl QuotaStream {
    /// A stream whose shares are held under `holder` (unique per live
    /// stream: a restarted process or a new stream needs a new one).
    pub fn new(holder: String) -> Self {
        Self {
            holder,
            domain: None,
            buckets: HashMap::new(),
        }
    }

    /// The stream's domain, once reported.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Buckets tracked.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one usage report at `now`; returns the buckets seen for the
    /// first time (to be assigned at once).
    pub fn report(
        &mut self,
        reports: RateLimitQuotaUsageReports,
        now: Instant,
    ) -> Result<Vec<Vec<(String, String)>>, ReportError> {
        match (&self.domain, reports.domain.as_str()) {
            (None, "") => return Err(ReportError::NoDomain),
            (None, d) => self.domain = Some(d.to_owned()),
            (Some(_), "") => {}
            (Some(s), d) if s == d => {}
            (Some(s), d) => {
                return Err(ReportError::OtherDomain {
                    stream: s.clone(),
                    got: d.to_owned(),
                })
            }
        }
        let mut new = Vec::new();
        for (i, usage) in reports.bucket_quota_usages.into_iter().enumerate() {
            let id = usage.bucket_id.ok_or(ReportError::NoBucketId(i))?;
            let key = entries(&id);
            let tracked = self.buckets.entry(key.clone()).or_insert_with(|| {
                new.push(key);
                Tracked::new(id, now)
            });
            let elapsed = action::from_proto(usage.time_elapsed.as_ref());
            tracing::trace!(
                ?elapsed,
                allowed = usage.num_requests_allowed,
                denied = usage.num_requests_denied,
                "RLQS usage report."
            );
            tracked.last_report = now;
            if elapsed >= Duration::from_millis(100) {
                tracked.interval = Some(elapsed);
            }
            tracked.offered = tracked
                .offered
                .saturating_add(usage.num_requests_allowed)
                .saturating_add(usage.num_requests_denied);
            tracked.elapsed += elapsed;
            if tracked.elapsed >= DEMAND_WINDOW {
                tracked.window = Some((tracked.offered, tracked.elapsed));
                tracked.offered = 0;
                tracked.elapsed = Duration::ZERO;
            }
        }
        Ok(new)
    }

    /// Assigns `keys` (tracked buckets) now: the actions to send.
    pub async fn assign(
        &mut self,
        ctx: Context<'_>,
        keys: &[Vec<(String, String)>],
    ) -> Vec<BucketAction> {
        let mut actions = Vec::with_capacity(keys.len());
        for key in keys {
            match self.round(ctx, key).await {
                Outcome::Send(a) => actions.push(a),
                Outcome::Nothing => {}
                Outcome::Forget(a) => {
                    self.buckets.remove(key);
                    actions.push(a);
                }
            }
        }
        actions
    }

    /// Renews every bucket still reported; forgets those long silent.
    pub async fn renew(&mut self, ctx: Context<'_>) -> Vec<BucketAction> {
        let now = Instant::now();
        self.buckets.retain(|_, t| {
            now.duration_since(t.last_report) <= t.stale_after() + ASSIGNMENT_TTL + CLOCK_MARGIN
        });
        let mut keys: Vec<Vec<(String, String)>> = self
            .buckets
            .iter()
            .filter(|(_, t)| now.duration_since(t.last_report) <= t.stale_after())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        self.assign(ctx, &keys).await
    }

    async fn round(&mut self, ctx: Context<'_>, key: &[(String, String)]) -> Outcome {
        let Some(domain) = self.domain.clone() else {
            return Outcome::Nothing;
        };
        let holder = self.holder.clone();
        let Some(tracked) = self.buckets.get_mut(key) else {
            return Outcome::Nothing;
        };
        let blanket = |tracked: &mut Tracked, assignment, limited| {
            tracked.held = None;
            tracked.limited = limited;
            Outcome::Send(action::assign(&tracked.id, assignment, ASSIGNMENT_TTL))
        };
        match plan_bucket(ctx.limits, &domain, key) {
            BucketPlan::NoLimit if tracked.limited => Outcome::Forget(action::abandon(&tracked.id)),
            BucketPlan::NoLimit | BucketPlan::AllowAll(_) => {
                blanket(tracked, Assignment::AllowAll, false)
            }
            BucketPlan::DenyAll(_) => blanket(tracked, Assignment::DenyAll, true),
            BucketPlan::Share { quota, key, .. } => {
                tracked.limited = true;
                share_round(ctx, &holder, tracked, &key, &quota).await
            }
        }
    }
}

/// One renewal of a shared bucket.
async fn share_round(
    ctx: Context<'_>,
    holder: &str,
    tracked: &mut Tracked,
    key: &BucketKey,
    quota: &Quota,
) -> Outcome {
    let ttl = ASSIGNMENT_TTL;
    let demand = tracked.demand(quota);
    // At most two calls: a second under a new holder id when the ledger
    // says "unchanged" but Envoy no longer holds that bucket.
    for _ in 0..2 {
        let id = format!("{holder}.{}", tracked.generation);
        let req = ShareRequest {
            holder: &id,
            demand,
            ttl_us: ttl.as_micros() as u64,
            margin_us: CLOCK_MARGIN.as_micros() as u64,
            fill: Fill::Full,
        };
        let sent = Instant::now();
        let result = tokio::time::timeout(SHARE_BUDGET, ctx.shares.share(key, quota, &req))
            .await
            .unwrap_or(Err(StoreError::Timeout(SHARE_BUDGET)));
        ctx.store_metrics
            .observe_latency(sent.elapsed().as_secs_f64());
        let (source, quota, grant) = match result {
            Ok(grant) => {
                tracing::trace!(holder = %id, demand, ?grant, "RLQS share.");
                (Source::Shared, *quota, grant)
            }
            Err(err) => {
                ctx.store_metrics.error(&err);
                tracing::debug!(error = %err, "RLQS share renewal failed.");
                if tracked.held.is_some_and(|h| Instant::now() < h.until) {
                    // Envoy spends what it holds until it lapses; then
                    // `on_error` applies.
                    return Outcome::Nothing;
                }
                let assignment = match ctx.options.on_error {
                    OnError::Allow => Assignment::AllowAll,
                    OnError::Deny => Assignment::DenyAll,
                    OnError::Local => {
                        let local = local_quota(quota, ctx.options.replicas_hint);
                        let req = ShareRequest {
                            demand: tracked.demand(&local),
                            ..req
                        };
                        let grant = ctx.local.share(key, &local, &req);
                        match send(tracked, Source::Local, &local, &grant, sent, ttl) {
                            Some(out) => return out,
                            None => {
                                tracked.generation += 1;
                                continue;
                            }
                        }
                    }
                };
                tracked.held = None;
                return Outcome::Send(action::assign(&tracked.id, assignment, ttl));
            }
        };
        match send(tracked, source, &quota, &grant, sent, ttl) {
            Some(out) => return out,
            None => tracked.generation += 1,
        }
    }
    // Not reached in practice (a new holder id always gets a fresh
    // bucket or nothing); deny rather than extend what is not held.
    tracked.held = None;
    Outcome::Send(action::assign(&tracked.id, Assignment::DenyAll, ttl))
}

/// The action for `grant` from `source`, or `None` when the ledger kept a
/// bucket Envoy no longer holds (ask again under a new holder id).
fn send(
    tracked: &mut Tracked,
    source: Source,
    quota: &Quota,
    grant: &ShareGrant,
    sent: Instant,
    ttl: Duration,
) -> Option<Outcome> {
    let now = Instant::now();
    let bucket = (grant.parts > 0)
        .then(|| action::token_bucket(quota, grant.parts, grant.burst))
        .flatten();
    let Some(bucket) = bucket else {
        // No share now (or one below a token per second): what Envoy holds
        // lapses on its own; with nothing held, say so rather than leave
        // it at its no-assignment default.
        if tracked.held.is_some_and(|h| now < h.until) {
            return Some(Outcome::Nothing);
        }
        tracked.held = None;
        return Some(Outcome::Send(action::assign(
            &tracked.id,
            Assignment::DenyAll,
            ttl,
        )));
    };
    if !grant.fresh && !tracked.holds(source, grant, now) {
        return None;
    }
    let left = action::whole_seconds(ttl.saturating_sub(sent.elapsed()));
    if left.is_zero() {
        // Too slow to arrive in time: not sent. Envoy keeps what it holds
        // until it lapses; the ledger's copy is not what Envoy holds (so
        // not extended later).
        return Some(Outcome::Nothing);
    }
    if !grant.fresh && tracked.held.is_some_and(|h| h.until > now + left * 3 / 4) {
        // Extended in the ledger; Envoy's copy still has over 3/4 of its
        // time: tell it at a later renewal (it lapses earlier, never later,
        // than the reservation).
        return Some(Outcome::Nothing);
    }
    tracked.held = Some(Held {
        source,
        parts: grant.parts,
        burst: grant.burst,
        until: now + left,
    });
    Some(Outcome::Send(action::assign(
        &tracked.id,
        Assignment::Bucket(bucket),
        left,
    )))
}
