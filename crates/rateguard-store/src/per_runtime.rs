//! [`PerRuntime`]: one value (a Redis connection, a batching queue) per
//! Tokio runtime, opened on that runtime the first time it asks.
//!
//! A redis-rs connection runs a driver task on the runtime that opened it;
//! shared by the per-core runtimes, every request on another core would
//! wake that task across threads and be woken back (two cross-thread
//! wake-ups per decision, as a shared upstream pool cost before the
//! gateway gave each runtime its own). Here each runtime opens its own,
//! so a decision's I/O stays on the thread of the request. What must agree
//! across runtimes (the circuit breaker, the statistics) stays shared by
//! the store that holds this.

use std::sync::{PoisonError, RwLock};

use tokio::runtime::{Handle, Id};

use crate::StoreError;

/// Most runtimes given a value of their own; any further runtime shares
/// the first value (a process that keeps starting short-lived runtimes
/// does not keep opening connections).
pub(crate) const MAX_RUNTIMES: usize = 64;

type Open<T> = Box<dyn Fn() -> Result<T, StoreError> + Send + Sync>;

/// A `T` per runtime, from `open`.
pub(crate) struct PerRuntime<T> {
    open: Open<T>,
    /// `(runtime, value)`; `None`: asked outside any runtime.
    values: RwLock<Vec<(Option<Id>, T)>>,
}

impl<T> std::fmt::Debug for PerRuntime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("PerRuntime")
            .field("runtimes", &values.len())
            .finish_non_exhaustive()
    }
}

impl<T: Clone> PerRuntime<T> {
    /// Values from `open`, the first one opened now (for the current
    /// runtime): an `open` that fails fails here.
    pub(crate) fn new(
        open: impl Fn() -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> Result<Self, StoreError> {
        let first = open()?;
        Ok(Self {
            open: Box::new(open),
            values: RwLock::new(vec![(current(), first)]),
        })
    }

    /// The current runtime's value, opened now if it has none yet.
    pub(crate) fn get(&self) -> Result<T, StoreError> {
        let id = current();
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = find(&values, id) {
            return Ok(value);
        }
        drop(values);
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = find(&values, id) {
            return Ok(value);
        }
        if values.len() >= MAX_RUNTIMES {
            return Ok(values[0].1.clone());
        }
        let value = (self.open)()?;
        values.push((id, value.clone()));
        Ok(value)
    }

    /// How many runtimes have a value of their own.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn current() -> Option<Id> {
    Handle::try_current().ok().map(|handle| handle.id())
}

fn find<T: Clone>(values: &[(Option<Id>, T)], id: Option<Id>) -> Option<T> {
    values
        .iter()
        .find(|(runtime, _)| *runtime == id)
        .map(|(_, value)| value.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn counting() -> (Arc<AtomicUsize>, PerRuntime<usize>) {
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        let values = PerRuntime::new(move || Ok(counter.fetch_add(1, Ordering::Relaxed))).unwrap();
        (opened, values)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn each_runtime_opens_one_value_and_keeps_it() {
        let first = runtime();
        let (opened, values) = first.block_on(async { counting() });
        assert_eq!(first.block_on(async { values.get().unwrap() }), 0);
        let second = runtime();
        assert_eq!(second.block_on(async { values.get().unwrap() }), 1);
        assert_eq!(second.block_on(async { values.get().unwrap() }), 1);
        assert_eq!(first.block_on(async { values.get().unwrap() }), 0);
        assert_eq!(opened.load(Ordering::Relaxed), 2);
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn runtimes_past_the_cap_share_the_first_value() {
        let (opened, values) = counting();
        for _ in 0..(MAX_RUNTIMES + 3) {
            runtime().block_on(async { values.get().unwrap() });
        }
        assert_eq!(values.len(), MAX_RUNTIMES);
        assert_eq!(opened.load(Ordering::Relaxed), MAX_RUNTIMES);
        assert_eq!(runtime().block_on(async { values.get().unwrap() }), 0);
    }
}
