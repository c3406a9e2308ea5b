//! The assignments sent to Envoy: a token bucket at a share of the rate,
//! a blanket rule, or an abandon, each as a `BucketAction`.

use std::time::Duration;

use envoy_types::pb::envoy::r#type::v3::rate_limit_strategy::{BlanketRule, Strategy};
use envoy_types::pb::envoy::r#type::v3::{RateLimitStrategy, TokenBucket};
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_response::bucket_action::{
    self, AbandonAction, QuotaAssignmentAction,
};
use envoy_types::pb::envoy::service::rate_limit_quota::v3::rate_limit_quota_response::BucketAction;
use envoy_types::pb::envoy::service::rate_limit_quota::v3::BucketId;
use envoy_types::pb::google::protobuf::{Duration as ProtoDuration, UInt32Value};
use rateguard_core::share::share_interval_us;
use rateguard_core::Quota;

/// The token bucket of a share of `parts` (of 1000) of `quota`'s rate with
/// capacity `burst`, as Envoy reads it: Envoy takes `fill_interval` in
/// whole seconds and refills `tokens_per_fill / seconds` continuously, so
/// the share is sent as whole tokens per second, rounded down (never
/// faster than the share). `None` for a share below one token per second
/// (Envoy compares fill intervals by their nanoseconds only, so intervals
/// of whole seconds could not be told apart): such a share is not used.
///
/// # Panics
/// If `parts` is 0.
pub fn token_bucket(quota: &Quota, parts: u32, burst: u32) -> Option<TokenBucket> {
    let per_second = 1_000_000 / share_interval_us(quota, parts);
    let per_second = u32::try_from(per_second).ok().filter(|&n| n > 0)?;
    Some(TokenBucket {
        max_tokens: burst,
        tokens_per_fill: Some(UInt32Value { value: per_second }),
        fill_interval: Some(proto_duration(Duration::from_secs(1))),
    })
}

/// A time-to-live as Envoy applies it: whole seconds (it drops the
/// nanoseconds), so `ttl` rounded down.
pub fn whole_seconds(ttl: Duration) -> Duration {
    Duration::from_secs(ttl.as_secs())
}

/// What one assignment tells Envoy to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// A token bucket.
    Bucket(TokenBucket),
    /// Allow every request.
    AllowAll,
    /// Deny every request (Envoy answers with its deny response).
    DenyAll,
}

/// Assigns `assignment` to `id` for `ttl`.
pub fn assign(id: &BucketId, assignment: Assignment, ttl: Duration) -> BucketAction {
    let strategy = match assignment {
        Assignment::Bucket(bucket) => Strategy::TokenBucket(bucket),
        Assignment::AllowAll => Strategy::BlanketRule(BlanketRule::AllowAll as i32),
        Assignment::DenyAll => Strategy::BlanketRule(BlanketRule::DenyAll as i32),
    };
    BucketAction {
        bucket_id: Some(id.clone()),
        bucket_action: Some(bucket_action::BucketAction::QuotaAssignmentAction(
            QuotaAssignmentAction {
                assignment_time_to_live: Some(proto_duration(ttl)),
                rate_limit_strategy: Some(RateLimitStrategy {
                    strategy: Some(strategy),
                }),
            },
        )),
    }
}

/// Tells Envoy to forget `id` (its limit was removed by a reload).
pub fn abandon(id: &BucketId) -> BucketAction {
    BucketAction {
        bucket_id: Some(id.clone()),
        bucket_action: Some(bucket_action::BucketAction::AbandonAction(AbandonAction {})),
    }
}

/// `d` as a protobuf `Duration`.
pub fn proto_duration(d: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// A protobuf `Duration` as a [`Duration`] (negative or missing: zero).
pub fn from_proto(d: Option<&ProtoDuration>) -> Duration {
    d.map_or(Duration::ZERO, |d| {
        let secs = u64::try_from(d.seconds).unwrap_or(0);
        let nanos = u32::try_from(d.nanos).unwrap_or(0);
        Duration::new(secs, 0).saturating_add(Duration::from_nanos(u64::from(nanos)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_of_a_thousand_per_second_in_whole_tokens_per_second() {
        let quota = Quota::new(1000, 1000.0).unwrap(); // T = 1 ms
        let bucket = token_bucket(&quota, 333, 333).unwrap();
        assert_eq!(bucket.max_tokens, 333);
        // 1 ms × 1000 / 333 = 3004 µs rounded up: 332.9/s, sent as 332/s.
        assert_eq!(bucket.tokens_per_fill, Some(UInt32Value { value: 332 }));
        assert_eq!(
            from_proto(bucket.fill_interval.as_ref()),
            Duration::from_secs(1)
        );
        // Below one token per second: not sent.
        let slow = Quota::new(10, 10.0).unwrap();
        assert_eq!(token_bucket(&slow, 50, 1), None);
        assert!(token_bucket(&slow, 100, 1).is_some());
        assert_eq!(
            whole_seconds(Duration::from_millis(1999)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn durations_round_trip() {
        let d = Duration::from_micros(2_500_123);
        assert_eq!(from_proto(Some(&proto_duration(d))), d);
        let negative = ProtoDuration {
            seconds: -1,
            nanos: 0,
        };
        assert_eq!(from_proto(Some(&negative)), Duration::ZERO);
        assert_eq!(from_proto(None), Duration::ZERO);
    }

    #[test]
    fn blanket_rules_and_abandon() {
        let id = BucketId::default();
        let action = assign(&id, Assignment::DenyAll, Duration::from_secs(3));
        let Some(bucket_action::BucketAction::QuotaAssignmentAction(a)) = action.bucket_action
        else {
            panic!("an assignment")
        };
        assert_eq!(
            a.rate_limit_strategy.unwrap().strategy,
            Some(Strategy::BlanketRule(BlanketRule::DenyAll as i32))
        );
        assert_eq!(a.assignment_time_to_live.unwrap().seconds, 3);
        assert!(matches!(
            abandon(&id).bucket_action,
            Some(bucket_action::BucketAction::AbandonAction(_))
        ));
    }
}
