//! `rateguard-refproxy`: the floors of `just perf`, a reverse proxy with
//! nothing but what a proxy must do, so a gateway figure can be read as
//! "this much of the cost is RateGuard's own".
//!
//! - **minimal proxy** (no `--redis`): hyper 1.x, one current-thread
//!   runtime per core, each with its own `SO_REUSEPORT` listener on the same
//!   port and its own upstream connection pool (the layout of `rateguard
//!   serve`'s per-core runtimes), the URI rewritten to the upstream and the
//!   peer appended to `X-Forwarded-For` (as nginx `proxy_pass` is configured
//!   to), the response streamed back.
//! - **minimal proxy + EVALSHA** (`--redis URL`): the same, plus one
//!   `EVALSHA` of a small GCRA script ([`bucket`]) per request over a redis-rs
//!   multiplexed connection owned by the request's runtime; a denied
//!   request gets a bare 429.
//!
//! No config file, no metrics, no logging, no graceful drain: it runs until
//! killed (the perf harness stops it by pid).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use http::uri::Authority;

mod bucket;
mod proxy;

use bucket::{Bucket, Quota};
use proxy::Proxy;

/// A minimal reverse proxy (optionally with one EVALSHA per request), the reference of `just perf`.
#[derive(Debug, Clone, Parser)]
#[command(name = "rateguard-refproxy")]
struct Args {
    /// Address every runtime listens on (SO_REUSEPORT).
    #[arg(long)]
    listen: SocketAddr,
    /// The upstream, `host:port` (plain HTTP/1.1).
    #[arg(long)]
    upstream: Authority,
    /// Runtimes (threads); 0: one per available core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Redis URL: decide each request with one EVALSHA before forwarding.
    #[arg(long)]
    redis: Option<String>,
    /// Bucket key prefix in Redis (the API key follows it).
    #[arg(long, default_value = "ref")]
    key_prefix: String,
    /// Bucket capacity (tokens).
    #[arg(long, default_value_t = 1_000_000_000)]
    capacity: u64,
    /// Microseconds to refill one token.
    #[arg(long, default_value_t = 1)]
    interval_us: u64,
    /// Header carrying the API key (the bucket's identity).
    #[arg(long, default_value = "x-api-key")]
    api_key_header: http::HeaderName,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis = args
        .redis
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .context("--redis")?;
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let runtimes: Vec<_> = (1..threads)
        .map(|i| {
            let (args, redis) = (args.clone(), redis.clone());
            std::thread::Builder::new()
                .name(format!("refproxy-rt-{i}"))
                .spawn(move || run_runtime(&args, redis))
        })
        .collect::<Result<_, _>>()?;
    run_runtime(&args, redis)?;
    for runtime in runtimes {
        runtime.join().expect("runtime thread panicked")?;
    }
    Ok(())
}

/// One current-thread runtime: its listener, its upstream pool, its Redis
/// connection; serves until the process is killed.
fn run_runtime(args: &Args, redis: Option<redis::Client>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bucket = match redis {
            Some(client) => Some(
                Bucket::connect(&client, args.key_prefix.clone(), quota(args))
                    .await
                    .context("connecting to Redis")?,
            ),
            None => None,
        };
        let listener = bind_shared(args.listen).context("binding --listen")?;
        let proxy = Arc::new(Proxy::new(
            args.upstream.clone(),
            args.api_key_header.clone(),
            bucket,
        ));
        proxy::serve(listener, proxy).await;
        Ok(())
    })
}

fn quota(args: &Args) -> Quota {
    Quota {
        capacity: args.capacity,
        interval_us: args.interval_us,
    }
}

/// `addr` with `SO_REUSEPORT`, so every runtime has a listener of its own
/// and the kernel spreads connections over them.
fn bind_shared(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
