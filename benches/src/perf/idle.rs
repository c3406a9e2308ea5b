//! RSS under N idle keep-alive client connections (`--idle N`): each
//! connection sends one request, reads the answer and then stays open
//! without a word, the way a pooled client or a forgotten browser tab does.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use rateguard_testkit::procstat::rss_kib;

use super::limits::PATH;
use super::PerfError;

/// Connections opened at once while building up the idle set.
const OPENING_AT_ONCE: usize = 256;

/// One target's memory with and without the idle connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleFigures {
    /// The case measured (`memory`, `nginx-proxy`).
    pub target: String,
    /// Idle connections held open.
    pub connections: usize,
    /// RSS before they were opened, KiB.
    pub rss_before_kib: u64,
    /// RSS as soon as the last one was answered, KiB.
    pub rss_after_kib: u64,
    /// RSS once all of them had idled for [`SETTLE`], KiB.
    pub rss_settled_kib: u64,
}

/// How long the connections idle before the settled reading.
pub const SETTLE: Duration = Duration::from_secs(2);

impl IdleFigures {
    /// What one idle connection costs once settled, KiB.
    pub fn kib_per_connection(&self) -> f64 {
        self.rss_settled_kib.saturating_sub(self.rss_before_kib) as f64
            / self.connections.max(1) as f64
    }
}

/// An open, idle client connection (closed on drop).
type Held = SendRequest<Empty<Bytes>>;

/// Opens `n` connections to `addr`, one answered request each, reads the
/// RSS of `pids` (and children) while they idle, then closes them.
pub async fn measure(
    target: &str,
    addr: SocketAddr,
    pids: &[u32],
    n: usize,
) -> Result<IdleFigures, PerfError> {
    let rss_before_kib = rss_kib(pids);
    let mut held: Vec<Held> = Vec::with_capacity(n);
    let mut opening = JoinSet::new();
    for i in 0..n {
        if opening.len() >= OPENING_AT_ONCE {
            held.push(joined(opening.join_next().await)?);
        }
        opening.spawn(open(addr, i));
    }
    while let Some(next) = opening.join_next().await {
        held.push(joined(Some(next))?);
    }
    let rss_after_kib = rss_kib(pids);
    tokio::time::sleep(SETTLE).await;
    let rss_settled_kib = rss_kib(pids);
    drop(held);
    Ok(IdleFigures {
        target: target.to_owned(),
        connections: n,
        rss_before_kib,
        rss_after_kib,
        rss_settled_kib,
    })
}

fn joined(
    next: Option<Result<Result<Held, PerfError>, tokio::task::JoinError>>,
) -> Result<Held, PerfError> {
    match next {
        Some(Ok(held)) => held,
        Some(Err(e)) => Err(PerfError::Io(std::io::Error::other(e))),
        None => Err(PerfError::Options("no connection left to join".into())),
    }
}

/// One connection to `addr` that has had one request answered.
async fn open(addr: SocketAddr, i: usize) -> Result<Held, PerfError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = http::Request::get(PATH)
        .header(http::header::HOST, addr.to_string())
        .header("x-api-key", format!("perf-idle-{i}"))
        .body(Empty::new())
        .map_err(std::io::Error::other)?;
    let res = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    if !res.status().is_success() {
        return Err(PerfError::Options(format!(
            "idle connection {i}: status {}",
            res.status()
        )));
    }
    res.into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?;
    Ok(sender)
}
