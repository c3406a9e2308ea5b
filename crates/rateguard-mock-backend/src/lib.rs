//! The demo backend (`rateguard mock-backend`): answers every request with
//! JSON saying which backend answered and what it received, so the
//! load-balancing demo and the tests can see the request as it arrived.
//! Measurement plumbing, not product: the `rateguard` binary's
//! `mock-backend` subcommand and the tests run it ([`run_blocking`],
//! [`serve`]).
//!
//! ```json
//! {"message":"Hello from b1","backend":"b1","path":"/x","method":"GET",
//!  "query":"a=1","body_bytes":0,"body_sha256":"e3b0…","headers":{"host":"…"}}
//! ```
//! plus the response header `X-Backend: <name>`. The body is hashed as it
//! streams in, never held whole.
//!
//! # Test hooks (query string, taken as written, no percent-decoding)
//! | hook | effect |
//! | --- | --- |
//! | `delay_ms=N` | waits N ms before answering |
//! | `status=N` | answers with status N |
//! | `header=Name:Value` (repeatable) | adds that response header, e.g. `header=Connection:X-Up-Hop&header=X-Up-Hop:1` |
//! | `hold=ID` | holds the request (in flight, counted as `held`) until `ID` is released |
//! | `stream_bytes=N` | the body is N bytes of [`pattern`] instead of JSON, in two frames; with `hold=ID` the second half waits for the release |
//!
//! A bad hook is answered `400` naming it.
//!
//! # Control endpoints (`/_mock/...`, not counted as requests)
//! - `GET /_mock/stats`: the [`Stats`] as JSON;
//! - `GET /_mock/wait?held=1&received=3&in_flight=1&body_bytes=N`: answers
//!   the [`Stats`] once every named counter is at least its value (`504`
//!   with the stats after [`WAIT_LIMIT`]), so tests wait on events, not sleeps;
//! - `GET /_mock/release?hold=ID`: releases `ID`, now and for later holds.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Notify;

mod body;
mod control;

pub use body::MockBody;

use rateguard_runtime::plain_http::{serve_plain, PlainOptions};
use rateguard_runtime::{bind_addr, multi_thread, thread_count, ServeError};

/// `X-Backend`.
pub const X_BACKEND: HeaderName = HeaderName::from_static(rateguard_contract::headers::X_BACKEND);

/// Longest wait of `/_mock/wait`.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

pub(crate) const CONTROL: &str = "/_mock/";

/// What the backend has seen so far (control requests excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Requests received.
    pub received: u64,
    /// Requests whose response has not started yet (held ones included).
    pub in_flight: u64,
    /// Requests (or response bodies) waiting for a `hold` release.
    pub held: u64,
    /// Request body bytes received, over every request, counted as they arrive.
    pub body_bytes: u64,
}

/// One mock backend: its name, counters and released holds.
#[derive(Debug)]
pub struct Backend {
    name: Arc<str>,
    received: AtomicU64,
    in_flight: AtomicU64,
    held: AtomicU64,
    body_bytes: AtomicU64,
    released: Mutex<HashSet<String>>,
    changed: Notify,
    /// Callers of `wait_until`: the hot path notifies only when there are any.
    waiters: AtomicUsize,
}

/// The hooks of one request.
#[derive(Debug, Default)]
struct Hooks {
    delay: Option<Duration>,
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, HeaderValue)>,
    hold: Option<String>,
    stream_bytes: Option<usize>,
}

impl Hooks {
    fn parse(query: &str) -> Result<Self, String> {
        let mut hooks = Self::default();
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let bad = || format!("bad hook {key}={value}");
            match key {
                "delay_ms" => {
                    hooks.delay = Some(Duration::from_millis(number(value).ok_or_else(bad)?))
                }
                "status" => {
                    let status = number(value).and_then(|s| u16::try_from(s).ok());
                    hooks.status = Some(
                        status
                            .and_then(|s| StatusCode::from_u16(s).ok())
                            .ok_or_else(bad)?,
                    );
                }
                "header" => {
                    let (name, v) = value.split_once(':').ok_or_else(bad)?;
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
                    let v = HeaderValue::from_str(v).map_err(|_| bad())?;
                    hooks.headers.push((name, v));
                }
                "hold" => hooks.hold = Some(value.to_owned()),
                "stream_bytes" => {
                    let n = number(value).and_then(|n| usize::try_from(n).ok());
                    hooks.stream_bytes = Some(n.ok_or_else(bad)?);
                }
                _ => {}
            }
        }
        Ok(hooks)
    }
}

pub(crate) fn number(text: &str) -> Option<u64> {
    text.parse().ok()
}

/// `len` bytes of `a..z` repeated: the body `stream_bytes=len` sends.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

impl Backend {
    /// A backend named `name` (the JSON's `backend` and `X-Backend`).
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            received: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            held: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            released: Mutex::new(HashSet::new()),
            changed: Notify::new(),
            waiters: AtomicUsize::new(0),
        })
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            received: self.received.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            held: self.held.load(Ordering::SeqCst),
            body_bytes: self.body_bytes.load(Ordering::SeqCst),
        }
    }

    /// Releases the hold `id`: requests held on it go on, later ones pass.
    pub fn release(&self, id: &str) {
        self.lock_released().insert(id.to_owned());
        self.changed.notify_waiters();
    }

    /// Waits until `ready(stats)` holds (no polling: woken on every change).
    pub async fn wait_until(&self, ready: impl Fn(&Stats) -> bool) -> Stats {
        self.wait_for(|| {
            let stats = self.stats();
            ready(&stats).then_some(stats)
        })
        .await
    }

    async fn wait_for<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let value = loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(value) = ready() {
                break value;
            }
            changed.await;
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        value
    }

    fn lock_released(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Plain set inserts: a panic cannot leave it inconsistent.
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self, counter: &AtomicU64, delta: i64) {
        if delta >= 0 {
            counter.fetch_add(delta.unsigned_abs(), Ordering::SeqCst);
        } else {
            counter.fetch_sub(delta.unsigned_abs(), Ordering::SeqCst);
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Waits (counted as `held`) until `id` is released.
    async fn hold(&self, id: &str) {
        self.bump(&self.held, 1);
        self.wait_for(|| self.lock_released().contains(id).then_some(()))
            .await;
        self.bump(&self.held, -1);
    }

    /// Answers one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<MockBody> {
        if let Some(control) = req.uri().path().strip_prefix(CONTROL) {
            return self.control(control, req.uri().query().unwrap_or("")).await;
        }
        self.bump(&self.received, 1);
        self.bump(&self.in_flight, 1);
        let res = self.answer(req).await;
        self.bump(&self.in_flight, -1);
        res
    }

    async fn answer(self: &Arc<Self>, req: Request<Incoming>) -> Response<MockBody> {
        let (parts, mut body) = req.into_parts();
        let query = parts.uri.query().unwrap_or("");
        let hooks = match Hooks::parse(query) {
            Ok(hooks) => hooks,
            Err(message) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": message }),
                )
            }
        };
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                bytes += data.len() as u64;
                hasher.update(&data);
                self.bump(&self.body_bytes, data.len() as i64);
            }
        }
        if let Some(delay) = hooks.delay {
            tokio::time::sleep(delay).await;
        }
        let mut res = match hooks.stream_bytes {
            Some(len) => {
                let mut data = Bytes::from(pattern(len));
                let first = data.split_to(len.div_ceil(2));
                let gate = hooks.hold.map(|id| {
                    let backend = self.clone();
                    Box::pin(async move { backend.hold(&id).await })
                        as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
                });
                let mut res = Response::new(MockBody::new(first, gate, data));
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                res
            }
            None => {
                if let Some(id) = &hooks.hold {
                    self.hold(id).await;
                }
                json(StatusCode::OK, &self.echo(&parts, query, bytes, hasher))
            }
        };
        if let Some(status) = hooks.status {
            *res.status_mut() = status;
        }
        let h = res.headers_mut();
        for (name, value) in hooks.headers {
            h.append(name, value);
        }
        if let Ok(v) = HeaderValue::try_from(&*self.name) {
            h.insert(X_BACKEND, v);
        }
        res
    }

    fn echo(&self, parts: &http::request::Parts, query: &str, bytes: u64, hasher: Sha256) -> Value {
        let mut headers = Map::new();
        for (k, v) in &parts.headers {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            match headers.get_mut(k.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                }
                _ => {
                    headers.insert(k.as_str().to_owned(), Value::String(v));
                }
            }
        }
        serde_json::json!({
            "message": format!("Hello from {}", self.name),
            "backend": &*self.name,
            "path": parts.uri.path(),
            "method": parts.method.as_str(),
            "query": query,
            "body_bytes": bytes,
            "body_sha256": hex::encode(hasher.finalize()),
            "headers": headers,
        })
    }
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(Bytes::from(value.to_string())));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Serves `backend` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<Backend>,
    shutdown: impl Future<Output = ()>,
) {
    serve_plain(
        listener,
        move |req| backend.clone().handle(req),
        shutdown,
        PlainOptions {
            max_connections: 100_000,
            grace: Duration::from_secs(10),
        },
    )
    .await;
}

/// Runs the backend `name` on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, name: &str, shutdown: impl Future<Output = ()> + Send) {
    serve(listener, Backend::new(name), shutdown).await;
}

/// Runs the backend `name` on `listen` on its own multi-thread runtime
/// until `shutdown` resolves. Blocks the calling thread.
pub fn run_blocking(
    listen: SocketAddr,
    name: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    multi_thread(thread_count(0))?.block_on(async {
        let listener = bind_addr(listen)?;
        tracing::info!(%listen, %name, "Mock backend started.");
        run(listener, name, shutdown).await;
        Ok(())
    })
}
