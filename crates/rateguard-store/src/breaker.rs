//! A small circuit breaker, so that a Redis that is down is not hammered.
//!
//! Closed: calls go through. After `threshold` consecutive connection
//! failures or timeouts it opens: calls fail at once with
//! [`StoreError::CircuitOpen`] for a cooldown. When the cooldown ends, the
//! next call goes through as a probe (and pushes the deadline out by one more
//! cooldown, so concurrent callers do not all probe). A success closes the
//! circuit; a failed probe doubles the cooldown, up to a maximum. A probe
//! whose caller gives up simply lets the next cooldown's probe try again, so
//! the breaker cannot get stuck. A client that knows it reconnected may end
//! the cooldown early ([`Breaker::probe_now`]).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::{RedisOptions, StoreError};

/// Shared by all clones of one store.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    min_cooldown: Duration,
    max_cooldown: Duration,
    // A std mutex: held for a few field updates, never across an `.await`.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
}

impl Breaker {
    pub(crate) fn new(opts: &RedisOptions) -> Self {
        Self {
            threshold: opts.breaker_threshold.max(1),
            min_cooldown: opts.breaker_cooldown,
            max_cooldown: opts.breaker_max_cooldown.max(opts.breaker_cooldown),
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                cooldown: opts.breaker_cooldown,
            }),
        }
    }

    /// Runs `call` within `timeout` unless the circuit is open, and records
    /// the outcome. Only connection failures and timeouts count as failures.
    pub(crate) async fn call<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.admit()?;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(timeout)),
        };
        match &result {
            Ok(_) => self.on_success(),
            Err(e @ (StoreError::Unavailable(_) | StoreError::Timeout(_))) => self.on_failure(e),
            Err(_) => {}
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent
        // (plain field writes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        let Some(until) = state.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until {
            return Err(StoreError::CircuitOpen(until - now));
        }
        // This call is the probe; others wait one more cooldown.
        state.open_until = Some(now + state.cooldown);
        Ok(())
    }

    /// Ends the cooldown now, if the circuit is open: the next call is the
    /// probe. For a client that reports getting its connection back (fred),
    /// so enforcement resumes at once instead of up to a cooldown later.
    pub(crate) fn probe_now(&self) {
        let mut state = self.lock();
        if state.open_until.is_some() {
            state.open_until = Some(Instant::now());
        }
    }

    fn on_success(&self) {
        let mut state = self.lock();
        if state.open_until.is_some() {
            tracing::info!("Store reachable again; circuit closed.");
        }
        state.failures = 0;
        state.open_until = None;
        state.cooldown = self.min_cooldown;
    }

    /// Records a failure; the log line when the circuit opens names its
    /// cause (`error`), e.g. a refused password or an untrusted certificate.
    fn on_failure(&self, error: &StoreError) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        if state.open_until.is_some() {
            // A failed probe: back off further.
            state.cooldown = (state.cooldown * 2).min(self.max_cooldown);
            state.open_until = Some(Instant::now() + state.cooldown);
        } else if state.failures >= self.threshold {
            tracing::warn!(
                failures = state.failures,
                cooldown = ?state.cooldown,
                %error,
                "Store failing; circuit opened."
            );
            state.open_until = Some(Instant::now() + state.cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(&RedisOptions {
            breaker_threshold: 2,
            breaker_cooldown: Duration::from_millis(100),
            breaker_max_cooldown: Duration::from_millis(300),
            ..RedisOptions::default()
        })
    }

    async fn fail(b: &Breaker) -> Result<(), StoreError> {
        b.call(Duration::from_secs(1), async {
            Err::<(), _>(StoreError::Unavailable("refused".into()))
        })
        .await
    }

    async fn succeed(b: &Breaker) -> Result<(), StoreError> {
        b.call(Duration::from_secs(1), async { Ok(()) }).await
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_probes_after_cooldown_and_closes_on_success() {
        let b = breaker();
        assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        // Open: refused locally without running the call.
        assert!(matches!(succeed(&b).await, Err(StoreError::CircuitOpen(_))));
        tokio::time::advance(Duration::from_millis(101)).await;
        // The probe fails: the cooldown doubles to 200 ms.
        assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(matches!(succeed(&b).await, Err(StoreError::CircuitOpen(_))));
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(succeed(&b).await.is_ok());
        assert!(succeed(&b).await.is_ok());
    }

    fn open_for(result: Result<(), StoreError>) -> Duration {
        match result {
            Err(StoreError::CircuitOpen(left)) => left,
            other => panic!("expected an open circuit, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_threshold_is_five_consecutive_failures() {
        let b = Breaker::new(&RedisOptions::default());
        for _ in 0..4 {
            assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        }
        // Four failures: still closed, the call runs.
        assert!(succeed(&b).await.is_ok(), "a success resets the count");
        for _ in 0..4 {
            fail(&b).await.unwrap_err();
        }
        assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        // The fifth opened it, for the default 100 ms cooldown.
        assert_eq!(open_for(succeed(&b).await), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_double_the_cooldown_up_to_the_cap() {
        let b = breaker(); // threshold 2, cooldown 100 ms, cap 300 ms
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        let mut cooldowns = vec![open_for(succeed(&b).await)];
        for _ in 0..4 {
            tokio::time::advance(*cooldowns.last().unwrap()).await;
            // The probe runs and fails; the next cooldown is longer, capped.
            assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
            cooldowns.push(open_for(succeed(&b).await));
        }
        let ms: Vec<u128> = cooldowns.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 300, 300, 300]);
        // A successful probe closes it and resets the cooldown.
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(succeed(&b).await.is_ok());
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        assert_eq!(open_for(succeed(&b).await), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn probe_now_ends_the_cooldown_of_an_open_circuit_only() {
        let b = breaker(); // threshold 2, cooldown 100 ms
        b.probe_now();
        assert!(succeed(&b).await.is_ok(), "closed: nothing to end");
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        assert_eq!(open_for(succeed(&b).await), Duration::from_millis(100));
        b.probe_now();
        // The next call is the probe, at once; it fails: a full cooldown again.
        assert!(matches!(fail(&b).await, Err(StoreError::Unavailable(_))));
        assert_eq!(open_for(succeed(&b).await), Duration::from_millis(200));
        b.probe_now();
        assert!(succeed(&b).await.is_ok());
        assert!(succeed(&b).await.is_ok(), "the probe closed it");
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_count_but_script_errors_do_not() {
        let b = breaker();
        let slow = b.call(
            Duration::from_millis(50),
            std::future::pending::<Result<(), _>>(),
        );
        assert!(matches!(slow.await, Err(StoreError::Timeout(_))));
        for _ in 0..5 {
            let bad = b.call(Duration::from_secs(1), async {
                Err::<(), _>(StoreError::Backend("ERR bad".into()))
            });
            assert!(matches!(bad.await, Err(StoreError::Backend(_))));
        }
        // One timeout and no connection failure yet: still closed.
        assert!(succeed(&b).await.is_ok());
    }
}
