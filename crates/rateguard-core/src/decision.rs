//! [`Decision`]: the answer to "may this request spend its tokens?".

use std::time::Duration;

/// The outcome of one acquire. A denial is a value, not an error; a store
/// that could not decide returns its own error type instead.
///
/// The fields map one to one onto the response headers: `limit` and the
/// quota's window give `RateLimit-Policy`, `remaining` and `reset_after`
/// give `RateLimit`, and `retry_after` gives `Retry-After` on a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the tokens were granted (and consumed).
    pub allowed: bool,
    /// The bucket's capacity.
    pub limit: u32,
    /// Whole tokens left after this decision.
    pub remaining: u32,
    /// Zero when allowed; otherwise how long until the request's cost is
    /// available. [`Decision::NEVER`] when the cost exceeds the capacity.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset_after: Duration,
}

impl Decision {
    /// The `retry_after` of a request that can never succeed (cost > capacity).
    pub const NEVER: Duration = Duration::from_micros(u64::MAX);
}
