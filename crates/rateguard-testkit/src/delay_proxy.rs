//! [`DelayNet`]: loopback TCP proxies that make a server look a network
//! away. Every byte is held for half the round trip on the way in and half
//! on the way back, in order (one FIFO per direction, never reordered), so
//! a request/response exchange takes one extra RTT while a pipelined stream
//! keeps its throughput.
//!
//! Delays are slept on plain threads (`nanosleep`, tens of µs of slack):
//! Tokio's timer ticks in whole milliseconds, too coarse for a 0.5 ms half
//! round trip. Each proxied connection has a reader and a writer thread per
//! direction, all named [`DELAY_THREAD`] so a caller measuring its own CPU
//! can leave the emulated network out. Every proxy of one [`DelayNet`]
//! shares one RTT setting ([`DelayNet::set_rtt`], effective for bytes read
//! from then on); dropping the net closes every proxy and connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::TestkitError;

/// The name of every thread a [`DelayNet`] runs.
pub const DELAY_THREAD: &str = "delay-proxy";
/// Chunks queued per direction before the reader waits for the writer.
const QUEUE: usize = 4096;
/// Largest read per chunk.
const CHUNK: usize = 64 * 1024;

/// A set of delay proxies sharing one round-trip time.
#[derive(Debug)]
pub struct DelayNet {
    shared: Arc<Shared>,
    acceptors: Mutex<Vec<(SocketAddr, JoinHandle<()>)>>,
}

#[derive(Debug, Default)]
struct Shared {
    rtt_ns: AtomicU64,
    stopping: AtomicBool,
    /// Both sockets of every open connection, to shut down on drop.
    open: Mutex<HashMap<u64, [TcpStream; 2]>>,
    next_id: AtomicU64,
}

impl DelayNet {
    /// A net with round-trip time `rtt` and no proxies yet.
    pub fn new(rtt: Duration) -> Self {
        let shared = Shared::default();
        shared.rtt_ns.store(nanos(rtt), Ordering::Relaxed);
        Self {
            shared: Arc::new(shared),
            acceptors: Mutex::default(),
        }
    }

    /// A new proxy on a free 127.0.0.1 port forwarding to `upstream`; its
    /// address. `upstream` need not listen yet: each accepted connection
    /// connects to it then (and is closed if that fails).
    pub fn proxy(&self, upstream: SocketAddr) -> Result<SocketAddr, TestkitError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = self.shared.clone();
        let acceptor = spawn(move || {
            for down in listener.incoming() {
                if shared.stopping.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(down) = down {
                    let shared = shared.clone();
                    let _ = spawn(move || connection(down, upstream, &shared));
                }
            }
        })?;
        lock(&self.acceptors).push((addr, acceptor));
        Ok(addr)
    }

    /// Sets the round-trip time of every proxy, for bytes read from now on.
    pub fn set_rtt(&self, rtt: Duration) {
        self.shared.rtt_ns.store(nanos(rtt), Ordering::Relaxed);
    }

    /// The current round-trip time.
    pub fn rtt(&self) -> Duration {
        Duration::from_nanos(self.shared.rtt_ns.load(Ordering::Relaxed))
    }
}

impl Drop for DelayNet {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        for (addr, acceptor) in lock(&self.acceptors).drain(..) {
            // Wake the blocking accept; it sees `stopping` and returns.
            let _ = TcpStream::connect(addr);
            let _ = acceptor.join();
        }
        for [a, b] in lock(&self.shared.open).drain().map(|(_, s)| s) {
            let _ = (a.shutdown(Shutdown::Both), b.shutdown(Shutdown::Both));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn spawn(f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(DELAY_THREAD.into())
        .spawn(f)
}

/// One proxied connection: both directions delayed until both have ended.
fn connection(down: TcpStream, upstream: SocketAddr, shared: &Shared) {
    let Ok(up) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    let (Ok(down2), Ok(up2), Ok(down3), Ok(up3)) = (
        down.try_clone(),
        up.try_clone(),
        down.try_clone(),
        up.try_clone(),
    ) else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    lock(&shared.open).insert(id, [down3, up3]);
    if shared.stopping.load(Ordering::Relaxed) {
        let _ = (down.shutdown(Shutdown::Both), up.shutdown(Shutdown::Both));
    }
    let rtt = &shared.rtt_ns;
    std::thread::scope(|scope| {
        scope.spawn(|| pump(down, up2, rtt));
        pump(up, down2, rtt);
    });
    lock(&shared.open).remove(&id);
}

/// Copies `from` to `to`, each chunk written half an RTT after it was read,
/// in order; when `from` ends, flushes what is queued and closes `to`'s
/// write side (so the other end sees the EOF too).
fn pump(mut from: TcpStream, mut to: TcpStream, rtt_ns: &AtomicU64) {
    let (queue, queued) = sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name(DELAY_THREAD.into())
            .spawn_scoped(scope, move || {
                for (due, chunk) in queued {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if to.write_all(&chunk).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
            });
        if writer.is_err() {
            return;
        }
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let half = Duration::from_nanos(rtt_ns.load(Ordering::Relaxed) / 2);
                    if queue
                        .send((Instant::now() + half, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        drop(queue);
    });
}

#[cfg(test)]
mod tests;
