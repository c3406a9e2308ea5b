//! The bridge from the synchronous half of the API to the async I/O.

use std::future::Future;

use crate::TestkitError;

/// Runs `future` to completion on a current-thread runtime of its own, on a
/// scoped thread of its own, and returns its output.
///
/// Every query is written once, async (redis-rs, hyper-util); the
/// synchronous methods (`blocking_*`, and the readiness waits inside
/// `start`/`restart`) run it through here. A separate thread makes this safe
/// from sync code and from inside a runtime alike (a nested
/// `Runtime::block_on` would panic); from async code it still blocks the
/// calling thread for the call's duration, like any synchronous I/O.
pub(crate) fn block_on<T: Send>(
    future: impl Future<Output = Result<T, TestkitError>> + Send,
) -> Result<T, TestkitError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
