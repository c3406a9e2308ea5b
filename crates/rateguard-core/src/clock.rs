//! Time sources. The bucket math takes "now" as an argument; a [`Clock`] is
//! how the in-process store obtains it.

#[cfg(any(test, feature = "test-util"))]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(any(test, feature = "test-util"))]
use std::sync::Arc;
use std::time::Instant;

/// A monotonic source of "now" in whole microseconds.
///
/// Contract: successive calls never go backwards. The epoch is arbitrary, but
/// one clock must keep one epoch for as long as buckets computed with it live.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since this clock's epoch.
    fn now_us(&self) -> u64;
}

/// The process's monotonic clock, counted from when the clock was created.
///
/// The epoch starts at one hour rather than zero so that a bucket's
/// theoretical arrival time never has to be clamped at the epoch.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

const EPOCH_OFFSET_US: u64 = 3_600_000_000;

impl SystemClock {
    /// A clock whose epoch is (about one hour before) now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        let elapsed = self.origin.elapsed().as_micros();
        EPOCH_OFFSET_US.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; clones share one time.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock reading `now_us`.
    pub fn new(now_us: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now_us)),
        }
    }

    /// Moves time forward by `us` microseconds.
    pub fn advance_us(&self, us: u64) {
        self.now.fetch_add(us, Ordering::SeqCst);
    }

    /// Sets the time; must not go backwards (see [`Clock`]).
    pub fn set_us(&self, now_us: u64) {
        self.now.store(now_us, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_offset() {
        let clock = SystemClock::new();
        let a = clock.now_us();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = clock.now_us();
        assert!(a >= EPOCH_OFFSET_US);
        assert!(
            a < EPOCH_OFFSET_US + 60_000_000,
            "{a}: an hour plus a few µs"
        );
        assert!(b >= a + 2_000, "{a} then {b}: the clock follows real time");
        assert!(SystemClock::default().now_us() >= EPOCH_OFFSET_US);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(10);
        let other = clock.clone();
        clock.advance_us(5);
        assert_eq!(other.now_us(), 15);
        other.set_us(100);
        assert_eq!(clock.now_us(), 100);
    }
}
