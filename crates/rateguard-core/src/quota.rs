//! [`Quota`]: how many tokens a bucket holds and how fast it refills.

use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

/// Microseconds per second: the unit of every time value in this crate.
pub const MICROS_PER_SEC: u64 = 1_000_000;

/// The longest time a bucket may take to refill from empty (366 days).
///
/// Bounding it keeps every intermediate value below 2^53, so the Lua script
/// (whose numbers are IEEE doubles) computes exactly what Rust computes.
pub const MAX_FILL_TIME_US: u64 = 366 * 24 * 3600 * MICROS_PER_SEC;

/// Why a quota was rejected. Messages name the value that was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// Capacity was zero.
    #[error("capacity must be > 0, got {0}")]
    ZeroCapacity(u64),
    /// Capacity does not fit in `u32`.
    #[error("capacity must be <= {max}, got {got}", max = u32::MAX)]
    CapacityTooLarge {
        /// The rejected capacity.
        got: u64,
    },
    /// The refill rate was zero, negative, NaN or infinite.
    #[error("refill_per_sec must be a finite number > 0, got {0}")]
    BadRate(f64),
    /// The refill rate is faster than one token per microsecond.
    #[error("refill_per_sec must be <= 1000000 (one token per microsecond), got {0}")]
    RateTooHigh(f64),
    /// Refilling from empty would take longer than [`MAX_FILL_TIME_US`].
    #[error("capacity / refill_per_sec must be at most 366 days, got {capacity} / {rate}")]
    FillTimeTooLong {
        /// The capacity.
        capacity: u32,
        /// The refill rate.
        rate: f64,
    },
}

/// A token bucket's shape: `capacity` tokens, one token every `interval`.
///
/// The refill rate is stored as a whole number of microseconds per token
/// (the GCRA "emission interval"), so rates are exact in integer arithmetic;
/// a rate like 3/s is rounded to 333,333 µs per token.
///
/// ```
/// use rateguard_core::Quota;
/// let q = Quota::new(20, 0.5).unwrap();
/// assert_eq!(q.capacity(), 20);
/// assert_eq!(q.interval_us(), 2_000_000);
/// assert_eq!(q.fill_time_us(), 40_000_000);
/// assert!(Quota::new(0, 1.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    capacity: NonZeroU32,
    interval_us: NonZeroU64,
}

impl Quota {
    /// A quota of `capacity` tokens refilled at `refill_per_sec` tokens per second.
    pub fn new(capacity: u64, refill_per_sec: f64) -> Result<Self, QuotaError> {
        let capacity =
            u32::try_from(capacity).map_err(|_| QuotaError::CapacityTooLarge { got: capacity })?;
        let capacity = NonZeroU32::new(capacity).ok_or(QuotaError::ZeroCapacity(0))?;
        if !refill_per_sec.is_finite() || refill_per_sec <= 0.0 {
            return Err(QuotaError::BadRate(refill_per_sec));
        }
        if refill_per_sec > MICROS_PER_SEC as f64 {
            return Err(QuotaError::RateTooHigh(refill_per_sec));
        }
        let interval = (MICROS_PER_SEC as f64 / refill_per_sec).round();
        let too_long = QuotaError::FillTimeTooLong {
            capacity: capacity.get(),
            rate: refill_per_sec,
        };
        if interval > MAX_FILL_TIME_US as f64 {
            return Err(too_long);
        }
        let interval_us = NonZeroU64::new(interval as u64).unwrap_or(NonZeroU64::MIN);
        Self::from_interval(capacity, interval_us).ok_or(too_long)
    }

    /// A quota of `capacity` tokens, one more every `interval_us` microseconds.
    /// `None` if refilling from empty would exceed [`MAX_FILL_TIME_US`].
    pub fn from_interval(capacity: NonZeroU32, interval_us: NonZeroU64) -> Option<Self> {
        let fill = u64::from(capacity.get()).checked_mul(interval_us.get())?;
        (fill <= MAX_FILL_TIME_US).then_some(Self {
            capacity,
            interval_us,
        })
    }

    /// Maximum tokens in the bucket (the burst).
    pub fn capacity(&self) -> u32 {
        self.capacity.get()
    }

    /// Microseconds to refill one token.
    pub fn interval_us(&self) -> u64 {
        self.interval_us.get()
    }

    /// Microseconds to refill from empty to full (`capacity × interval`).
    pub fn fill_time_us(&self) -> u64 {
        u64::from(self.capacity.get()) * self.interval_us.get()
    }

    /// Time to refill from empty to full, as a [`Duration`].
    pub fn fill_time(&self) -> Duration {
        Duration::from_micros(self.fill_time_us())
    }

    /// The effective refill rate in tokens per second (after rounding the interval).
    pub fn refill_per_sec(&self) -> f64 {
        MICROS_PER_SEC as f64 / self.interval_us.get() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_each_kind_of_bad_quota_with_its_message() {
        let cases: &[(u64, f64, &str)] = &[
            (0, 1.0, "capacity must be > 0, got 0"),
            (
                1 << 33,
                1.0,
                "capacity must be <= 4294967295, got 8589934592",
            ),
            (1, 0.0, "refill_per_sec must be a finite number > 0, got 0"),
            (
                1,
                -5.0,
                "refill_per_sec must be a finite number > 0, got -5",
            ),
            (
                1,
                f64::NAN,
                "refill_per_sec must be a finite number > 0, got NaN",
            ),
            (
                1,
                2e6,
                "refill_per_sec must be <= 1000000 (one token per microsecond), got 2000000",
            ),
            (
                1_000_000,
                0.001,
                "capacity / refill_per_sec must be at most 366 days, got 1000000 / 0.001",
            ),
        ];
        for (capacity, rate, message) in cases {
            let err = Quota::new(*capacity, *rate).unwrap_err();
            assert_eq!(err.to_string(), *message, "capacity={capacity} rate={rate}");
        }
    }

    #[test]
    fn fractional_and_slow_rates_round_to_whole_microseconds() {
        let q = Quota::new(10, 3.0).unwrap();
        assert_eq!(q.interval_us(), 333_333);
        let q = Quota::new(1, 0.001).unwrap();
        assert_eq!(q.interval_us(), 1_000_000_000);
        assert_eq!(q.fill_time(), Duration::from_secs(1000));
        let q = Quota::new(5, 1_000_000.0).unwrap();
        assert_eq!(q.interval_us(), 1);
        assert!((q.refill_per_sec() - 1e6).abs() < 1e-9);
        assert!((Quota::new(20, 0.5).unwrap().refill_per_sec() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_longest_fill_time_is_allowed_and_one_more_microsecond_is_not() {
        let one = NonZeroU32::new(1).unwrap();
        let longest = NonZeroU64::new(MAX_FILL_TIME_US).unwrap();
        let q = Quota::from_interval(one, longest).unwrap();
        assert_eq!(q.fill_time_us(), MAX_FILL_TIME_US);
        assert_eq!(q.fill_time(), Duration::from_micros(MAX_FILL_TIME_US));
        assert_eq!(Quota::from_interval(one, longest.saturating_add(1)), None);
        let two = NonZeroU32::new(2).unwrap();
        assert_eq!(Quota::from_interval(two, longest), None);
        // The same bound through a rate: 1 token per 366 days is fine.
        let rate = MICROS_PER_SEC as f64 / MAX_FILL_TIME_US as f64;
        assert_eq!(Quota::new(1, rate).unwrap().interval_us(), MAX_FILL_TIME_US);
        let err = Quota::new(1, rate * 0.999).unwrap_err();
        assert!(
            matches!(err, QuotaError::FillTimeTooLong { capacity: 1, .. }),
            "{err}"
        );
        assert_eq!(Quota::new(3, 1.0).unwrap().capacity(), 3);
    }
}
