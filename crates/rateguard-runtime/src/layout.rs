//! Runtime layout: the Tokio runtimes a replica runs on, and the extra
//! per-core runtime threads.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::error::ServeError;
use crate::listen::bind_socket;
use crate::shutdown::Stop;

/// Where a replica's public listener is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// On the runtime that calls [`Replica::run`](crate::Replica::run)
    /// (multi-thread, or a test's runtime).
    OneRuntime,
    /// On the calling current-thread runtime plus `threads - 1` threads, each
    /// with its own current-thread runtime and `SO_REUSEPORT` listener.
    PerCore {
        /// Runtimes in all, the caller's included.
        threads: usize,
    },
}

impl Layout {
    /// Runtimes serving the public port.
    pub fn runtimes(self) -> usize {
        match self {
            Self::OneRuntime => 1,
            Self::PerCore { threads } => threads.max(1),
        }
    }
}

/// `threads`, or one per available core for 0.
pub fn thread_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// A single-threaded runtime.
pub fn current_thread() -> Result<tokio::runtime::Runtime, ServeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)
}

/// A work-stealing runtime with `threads` workers.
pub fn multi_thread(threads: usize) -> Result<tokio::runtime::Runtime, ServeError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)
}

/// One runtime thread's outcome.
pub type Finished = oneshot::Receiver<Result<(), ServeError>>;

/// Starts runtime threads `1..runtimes`, each on its own current-thread
/// runtime serving its own `SO_REUSEPORT` listener on `addr` with what
/// `serve()` returns (called here, once per thread) until `stop`.
pub fn spawn_runtimes<M, H, F>(
    runtimes: usize,
    addr: SocketAddr,
    serve: M,
    stop: &Stop,
) -> Result<Vec<Finished>, ServeError>
where
    M: Fn() -> H,
    H: FnOnce(TcpListener, Stop) -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let mut finished = Vec::new();
    for i in 1..runtimes {
        let (serve, stop) = (serve(), stop.clone());
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("rateguard-rt-{i}"))
            .spawn(move || {
                let result = current_thread().and_then(|rt| {
                    rt.block_on(async move {
                        let listener = bind_socket(addr, true)?;
                        serve(listener, stop).await;
                        Ok(())
                    })
                });
                let _ = done_tx.send(result);
            })
            .map_err(ServeError::Runtime)?;
        finished.push(done_rx);
    }
    Ok(finished)
}
