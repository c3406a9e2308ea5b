//! [`MockBody`]: a body of two frames with an optional gate between them.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

type Gate = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The mock backend's response body: `first`, then (once `gate` resolves)
/// `rest`. Its exact length is announced up front, so a proxy that buffers
/// would have to wait for the gate; one that streams delivers `first` at once.
pub struct MockBody {
    first: Option<Bytes>,
    gate: Option<Gate>,
    rest: Option<Bytes>,
}

impl MockBody {
    /// `first`, then `rest` once `gate` (if any) resolves.
    pub fn new(first: Bytes, gate: Option<Gate>, rest: Bytes) -> Self {
        let some = |b: Bytes| (!b.is_empty()).then_some(b);
        Self {
            first: some(first),
            gate,
            rest: some(rest),
        }
    }

    fn remaining(&self) -> u64 {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len) as u64;
        len(&self.first) + len(&self.rest)
    }

    /// One frame, no gate.
    pub fn full(data: Bytes) -> Self {
        Self::new(data, None, Bytes::new())
    }
}

impl fmt::Debug for MockBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBody")
            .field("remaining", &self.remaining())
            .field("gated", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if let Some(gate) = self.gate.as_mut() {
            if gate.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.gate = None;
        }
        Poll::Ready(self.rest.take().map(|rest| Ok(Frame::data(rest))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.gate.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}
