//! [`Unit`]: the time unit of a limit, as envoyproxy/ratelimit spells it.

use std::fmt;
use std::time::Duration;

use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit as ProtoUnit;

/// A limit's unit: `requests_per_unit` requests per one of these.
///
/// Month and year have fixed lengths (30 and 365 days), as in
/// envoyproxy/ratelimit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// One second.
    Second,
    /// 60 seconds.
    Minute,
    /// 3,600 seconds.
    Hour,
    /// 86,400 seconds.
    Day,
    /// 7 days.
    Week,
    /// 30 days.
    Month,
    /// 365 days.
    Year,
}

impl Unit {
    /// Every unit, in the order the limits file documentation lists them.
    pub const ALL: [Unit; 7] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The unit named `name`, case-insensitively (`second`, `MINUTE`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|u| u.name().eq_ignore_ascii_case(name))
    }

    /// The lower-case name used in limits files.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }

    /// The unit's length.
    pub fn duration(self) -> Duration {
        let secs = match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        };
        Duration::from_secs(secs)
    }

    /// The unit in `RateLimitResponse.RateLimit.Unit`.
    pub fn to_proto(self) -> ProtoUnit {
        match self {
            Unit::Second => ProtoUnit::Second,
            Unit::Minute => ProtoUnit::Minute,
            Unit::Hour => ProtoUnit::Hour,
            Unit::Day => ProtoUnit::Day,
            Unit::Week => ProtoUnit::Week,
            Unit::Month => ProtoUnit::Month,
            Unit::Year => ProtoUnit::Year,
        }
    }

    /// The unit of a request's `descriptor.limit` override (`None` for
    /// `UNKNOWN` or a value this build does not know).
    pub fn from_override(unit: i32) -> Option<Self> {
        match RateLimitUnit::try_from(unit).ok()? {
            RateLimitUnit::Unknown => None,
            RateLimitUnit::Second => Some(Unit::Second),
            RateLimitUnit::Minute => Some(Unit::Minute),
            RateLimitUnit::Hour => Some(Unit::Hour),
            RateLimitUnit::Day => Some(Unit::Day),
            RateLimitUnit::Month => Some(Unit::Month),
            RateLimitUnit::Year => Some(Unit::Year),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for unit in Unit::ALL {
            assert_eq!(Unit::parse(unit.name()), Some(unit));
            assert_eq!(Unit::parse(&unit.name().to_uppercase()), Some(unit));
            assert_eq!(unit.to_proto().as_str_name(), unit.name().to_uppercase());
        }
        assert_eq!(Unit::parse("fortnight"), None);
    }

    #[test]
    fn override_units_map_and_unknown_is_none() {
        assert_eq!(
            Unit::from_override(RateLimitUnit::Minute as i32),
            Some(Unit::Minute)
        );
        assert_eq!(Unit::from_override(0), None);
        assert_eq!(Unit::from_override(99), None);
    }
}
