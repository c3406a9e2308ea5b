//! The open model's workers: one keep-alive HTTP/1.1 connection each
//! (hyper's client connection, no pool), taking due requests in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Shared;
use crate::keys::KeyPlan;
use crate::record::{micros, Outcome, Sample, API_KEY_HEADER};
use crate::LoadError;
use rateguard_contract::headers;

/// One worker's HTTP/1.1 connection.
pub(super) type Sender = SendRequest<Empty<Bytes>>;

/// Where every request goes, parsed once.
#[derive(Debug)]
pub(super) struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    path: Uri,
}

impl Target {
    /// `http://127.0.0.1:port/path` (a literal address: the lab talks only
    /// to loopback).
    pub(super) fn parse(url: &str) -> Result<Self, LoadError> {
        let bad = |why: &str| LoadError::Config(format!("bad URL {url}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URI"))?;
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let addr: SocketAddr = authority
            .as_str()
            .parse()
            .map_err(|_| bad("the host must be an IP address and port"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| bad("bad path"))?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?;
        Ok(Self { addr, host, path })
    }
}

/// Opens `n` connections to `target` at once.
pub(super) async fn connect_all(target: &Target, n: usize) -> Result<Vec<Sender>, LoadError> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let addr = target.addr;
        set.spawn(async move { connect(addr).await });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        let sender = r
            .map_err(|e| LoadError::Config(format!("connect task failed: {e}")))?
            .map_err(|e| LoadError::Config(format!("cannot connect to {}: {e}", target.addr)))?;
        out.push(sender);
    }
    Ok(out)
}

async fn connect(addr: SocketAddr) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One worker's share of the run.
pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) target: Arc<Target>,
    pub(super) keys: Arc<KeyPlan>,
    pub(super) timeout: Duration,
    /// The recorder's start (sample times are relative to it).
    pub(super) started: Instant,
}

/// What one worker measured.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) samples: Vec<Sample>,
    pub(super) per_replica: Vec<(String, u64)>,
    pub(super) per_backend: Vec<(String, u64)>,
    pub(super) late_sends: u64,
    pub(super) last_done: Option<Instant>,
}

impl Tally {
    /// Records the answer to a request that was due at `due` and left at
    /// `sent` (latency from `due`, so a late send is not hidden) and tells
    /// `shared` for its SLO. `replica` indexes this worker's `per_replica`.
    pub(super) fn record(
        &mut self,
        shared: &Shared,
        started: Instant,
        (due, sent): (Instant, Instant),
        outcome: Outcome,
        (client, replica): (u32, Option<u16>),
    ) {
        let done = Instant::now();
        let latency = done.saturating_duration_since(due);
        self.samples.push(Sample {
            at_us: micros(due.saturating_duration_since(started)),
            latency_us: micros(latency),
            outcome,
            client,
            sent_us: micros(sent.saturating_duration_since(started)),
            replica,
        });
        self.last_done = Some(done);
        shared.account(latency, outcome == Outcome::Allowed);
    }
}

impl Worker {
    /// Takes due requests until the run ends.
    pub(super) async fn run(self, sender: Sender) -> Tally {
        let key_header = HeaderName::from_static(API_KEY_HEADER);
        let mut sender = Some(sender);
        let mut replicas = Answerers::default();
        let mut backends = Answerers::default();
        let mut tally = Tally::default();
        let shared = &*self.shared;
        loop {
            let Some((i, due)) = shared.next_due(&mut tally).await else {
                break;
            };
            let sent = Instant::now();
            let (client, key) = self.keys.key(i);
            let mut request = Request::new(Empty::<Bytes>::new());
            *request.uri_mut() = self.target.path.clone();
            let headers = request.headers_mut();
            headers.insert(HOST, self.target.host.clone());
            headers.insert(key_header.clone(), key.clone());
            let answer = tokio::time::timeout(
                self.timeout,
                exchange(&mut sender, self.target.addr, request),
            )
            .await;
            let (outcome, replica) = match answer {
                Ok(Some(answer)) => {
                    let replica = replicas.count(answer.replica);
                    backends.count(answer.backend);
                    (Outcome::from_status(answer.status), replica)
                }
                Ok(None) => (Outcome::Error, None),
                Err(_) => {
                    // A timed-out exchange leaves the connection unusable.
                    sender = None;
                    (Outcome::Error, None)
                }
            };
            tally.record(
                shared,
                self.started,
                (due, sent),
                outcome,
                (client, replica),
            );
        }
        tally.per_replica = replicas.into_strings();
        tally.per_backend = backends.into_strings();
        tally
    }
}

/// Status and answerer headers of one response.
struct Answer {
    status: u16,
    replica: Option<HeaderValue>,
    backend: Option<HeaderValue>,
}

/// Sends `request` on the worker's connection (reconnecting if it is gone)
/// and reads the whole response; `None` on a transport error.
async fn exchange(
    sender: &mut Option<Sender>,
    addr: SocketAddr,
    request: Request<Empty<Bytes>>,
) -> Option<Answer> {
    if sender.as_ref().is_none_or(Sender::is_closed) {
        *sender = connect(addr).await.ok();
    }
    let conn = sender.as_mut()?;
    if conn.ready().await.is_err() {
        *sender = None;
        return None;
    }
    let Ok(response) = conn.send_request(request).await else {
        *sender = None;
        return None;
    };
    let answer = Answer {
        status: response.status().as_u16(),
        replica: response
            .headers()
            .get(headers::X_RATEGUARD_REPLICA)
            .cloned(),
        backend: response.headers().get(headers::X_BACKEND).cloned(),
    };
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            *sender = None;
            return None;
        }
    }
    Some(answer)
}

/// Responses per answerer header value, without a string per request.
#[derive(Debug, Default)]
struct Answerers(Vec<(HeaderValue, u64)>);

impl Answerers {
    /// Counts one response from `value`; its index in the list.
    fn count(&mut self, value: Option<HeaderValue>) -> Option<u16> {
        let value = value?;
        let i = match self.0.iter_mut().position(|(v, _)| *v == value) {
            Some(i) => i,
            None => {
                self.0.push((value, 0));
                self.0.len() - 1
            }
        };
        self.0[i].1 += 1;
        u16::try_from(i).ok()
    }

    /// The counts by name, in index order (a value that is not text keeps
    /// its place, lossily).
    fn into_strings(self) -> Vec<(String, u64)> {
        self.0
            .into_iter()
            .map(|(v, n)| (String::from_utf8_lossy(v.as_bytes()).into_owned(), n))
            .collect()
    }
}
